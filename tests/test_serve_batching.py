"""Cross-request batching: merged only where a graph is batch-independent, and never changes a score."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")

from export.debian import read_descriptions  # noqa: E402
from reranker_onnx import InputError, Reranker  # noqa: E402
from reranker_onnx.serve import Limits, ModelCard, batch_independent, create_app  # noqa: E402
from reranker_onnx.serve.batcher import Batcher  # noqa: E402

QUERIES = ["text editor", "compress files", "network monitor", "python library"]


@pytest.fixture(scope="module")
def requests_():
    docs = [d.body for d in read_descriptions("en")[:24]]
    return [(q, docs[k::4]) for k, q in enumerate(QUERIES)]


class _Gated:
    """A Reranker whose first call waits for ``open``, so later requests pile up in the queue; logs calls."""

    def __init__(self, real: Reranker) -> None:
        self.real, self.open, self.calls, self.info, self.scorer = real, threading.Event(), [], real.info, real.scorer

    def score(self, query, documents, raw=False):
        self._enter("score", len(documents))
        return self.real.score(query, documents, raw=raw)

    def predict(self, pairs, raw=False):
        self._enter("predict", len(pairs))
        return self.real.predict(pairs, raw=raw)

    def _enter(self, how: str, pairs: int) -> None:
        self.calls.append((how, pairs))
        self.open.wait(10)


def _serve_concurrently(reranker: Reranker, requests, *, merge: bool):
    """Score ``requests`` through a Batcher while its first call is held, so the rest queue up together."""
    gated = _Gated(reranker)
    batcher = Batcher(gated, merge=merge, limits=Limits(batch_wait_ms=0))

    async def run():
        first = asyncio.ensure_future(batcher.score("warm up", ["held"]))
        while not gated.calls:
            await asyncio.sleep(0.005)
        rest = [asyncio.ensure_future(batcher.score(q, d)) for q, d in requests]
        while batcher.depth < len(requests):
            await asyncio.sleep(0.005)
        gated.open.set()
        await first
        return await asyncio.gather(*rest, return_exceptions=True)

    try:
        return asyncio.run(run()), gated.calls[1:]
    finally:
        batcher.close()


def test_the_rule():
    assert batch_independent("fp32", {})
    assert batch_independent("avx512_vnni", {"mode": "static", "batch_independent": True})
    assert not batch_independent("avx512_vnni", {"mode": "dynamic"})
    assert not batch_independent("avx2", {"batch_independent": "yes"})
    assert batch_independent("arm64", type("Quantization", (), {"batch_independent": True})())
    assert batch_independent("arm64", type("Quantization", (), {"extra": {"batch_independent": True}})())
    assert not batch_independent("arm64", None)


def test_fp32_requests_merge_into_one_call_with_the_scores_of_serving_alone(exported, requests_):
    reranker = Reranker(exported("bert"), variant="fp32")
    assert ModelCard.of(reranker).batch_independent
    results, calls = _serve_concurrently(reranker, requests_, merge=True)
    assert calls == [("predict", sum(len(d) for _, d in requests_))]  # one runtime call for all four
    for (query, docs), got in zip(requests_, results):
        assert np.allclose(got, reranker.score(query, docs, raw=True), atol=1e-5)


def test_unmerged_requests_are_scored_one_call_each_exactly_as_alone(requests_):
    reranker = Reranker()  # the bundled default, with merging off as for a dynamic int8 graph
    results, calls = _serve_concurrently(reranker, requests_, merge=False)
    assert calls == [("score", len(d)) for _, d in requests_]
    for (query, docs), got in zip(requests_, results):
        assert got == reranker.score(query, docs, raw=True)


def test_the_app_merges_exactly_where_the_rule_allows(exported):
    for reranker in (Reranker(), Reranker(exported("bert"), variant="fp32"), Reranker(exported("bert"), variant="avx2")):
        info = reranker.info
        quantization = info.manifest.variants[info.variant].quantization
        served = next(iter(create_app([reranker]).state.served.values()))
        assert served.batcher.merge == batch_independent(info.variant, quantization) == served.card.batch_independent
        if quantization is not None and quantization.mode == "dynamic":
            assert not served.batcher.merge  # activations quantized per batch: never shared between clients
        if info.variant == "fp32":
            assert served.batcher.merge
        served.batcher.close()


def test_a_bad_request_does_not_fail_its_batch_mates(exported, requests_):
    reranker = Reranker(exported("bert"), variant="fp32")
    bad = [("q", ["fine", "lone \ud800 surrogate"])]
    results, _ = _serve_concurrently(reranker, requests_[:2] + bad, merge=True)
    assert isinstance(results[2], InputError) and "surrogate" in str(results[2])
    for (query, docs), got in zip(requests_[:2], results[:2]):
        assert np.allclose(got, reranker.score(query, docs, raw=True), atol=1e-5)


def test_a_client_that_leaves_frees_its_place_in_the_queue():
    """A queued request whose client disconnects is dropped at once, not scored for nobody."""
    import http.client
    import json
    import socket
    import time

    uvicorn = pytest.importorskip("uvicorn")
    gated = _Gated(Reranker())
    app = create_app([gated], limits=Limits(max_queue=1))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    body = json.dumps({"query": "q", "documents": ["a"]})
    batcher = app.state.served["default-en"].batcher
    try:
        while not server.started:
            time.sleep(0.02)
        holder = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        holder.request("POST", "/v1/rerank", body=body, headers={"Content-Type": "application/json"})
        while not gated.calls:  # the first request holds the scorer
            time.sleep(0.01)
        leaver = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        leaver.request("POST", "/v1/rerank", body=body, headers={"Content-Type": "application/json"})
        while batcher.depth < 1:
            time.sleep(0.01)
        leaver.close()  # gives up while queued
        deadline = time.monotonic() + 10
        while batcher.depth and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher.depth == 0
        gated.open.set()
        assert holder.getresponse().status == 200
        assert gated.calls == [("score", 1)]  # the leaver was never scored
    finally:
        gated.open.set()
        server.should_exit = True
        thread.join(10)
