"""Prometheus metrics of one app, in their own registry (two apps in one process never mix counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Latencies from 1 ms to 30 s (the default timeout); batch sizes from one pair to max_batch_pairs.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PAIR_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("reranker_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.latency = Histogram(
            "reranker_request_seconds", "Time from request to response", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.pairs = Counter("reranker_pairs", "Query-document pairs scored", ["model"], registry=r)
        self.batch_pairs = Histogram(
            "reranker_batch_pairs", "Pairs per runtime call", ["model"], buckets=PAIR_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "reranker_batch_requests", "Requests merged into one runtime call", ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r,
        )
        self.queue_wait = Histogram(
            "reranker_queue_wait_seconds", "Time a request waited for the scorer", ["model"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge("reranker_queue_depth", "Requests waiting for the scorer", ["model"], registry=r)
        self.rejected = Counter(
            "reranker_rejected", "Requests refused: queue full, timeout, limits", ["reason"], registry=r
        )

    def observer(self, model: str):
        """A callback for one model's batcher: (requests, pairs, oldest queue wait in seconds)."""
        def observe(requests: int, pairs: int, wait: float) -> None:
            self.pairs.labels(model).inc(pairs)
            self.batch_pairs.labels(model).observe(pairs)
            self.batch_requests.labels(model).observe(requests)
            self.queue_wait.labels(model).observe(wait)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)
