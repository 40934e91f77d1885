"""What one server accepts and how long it waits: a frozen record whose comments say why.

Every limit answers a client with a 4xx or 503 and a one-line message instead of letting one caller
take the memory or the cores from everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # Cohere's and Jina's hosted APIs cap a request at 1,000 documents; clients already chunk to it.
    max_documents: int = 1000
    # The whole JSON body. 1,000 documents of 4 KB fit; a 5 MB document does not (413). Cross-encoders
    # read at most a few hundred tokens of a passage, so more bytes would only cost parsing.
    max_body_bytes: int = 4 * 1024 * 1024
    # A query is cut to share max_length with each passage; 4,096 characters is far past any model's
    # share, so a longer one is a client bug, answered 422 rather than silently cut.
    max_query_chars: int = 4096
    # Requests waiting for the scorer, per model. Beyond it a client gets 503 + Retry-After at once,
    # instead of a latency that grows without bound (64 concurrent clients fit with room to spare).
    max_queue: int = 256
    # How long the batcher waits for other requests to join a merged batch (batch-independent graphs
    # only). Short: a lone client pays at most this once per request.
    batch_wait_ms: float = 2.0
    # Pairs merged into one runtime call at most; the runtime still cuts them into token-budget batches.
    max_batch_pairs: int = 1024
    # A request that has not been answered after this long gets 503 and is dropped if still queued;
    # a body that has not fully arrived after this long gets 408 (a stalled client frees its slot).
    timeout_s: float = 30.0
    # Seconds a client is told to wait (Retry-After) when the queue is full or a request timed out.
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name in ("max_documents", "max_body_bytes", "max_query_chars", "max_queue", "max_batch_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("batch_wait_ms must be ≥ 0 and timeout_s > 0")
