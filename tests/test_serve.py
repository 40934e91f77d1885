"""The HTTP service in-process (the ASGI app under TestClient): shapes, scores, errors, limits, metrics."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import threading
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from export.debian import read_descriptions  # noqa: E402
from reranker_onnx import Reranker  # noqa: E402
from reranker_onnx.serve import Limits, create_app  # noqa: E402

QUERY = "tool to compress and archive files"


@pytest.fixture(scope="module")
def reranker():
    return Reranker()  # the bundled default model


@pytest.fixture(scope="module")
def docs():
    return [d.body for d in read_descriptions("en")[:12]]


@pytest.fixture()
def client(reranker):
    with TestClient(create_app([reranker], limits=Limits(max_documents=50, max_body_bytes=100_000))) as c:
        yield c


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_cohere_shape_equals_the_in_process_ranking(client, reranker, docs):
    expected = reranker.rank(QUERY, docs, top_k=5)
    for route, version in (("/v1/rerank", "1"), ("/v2/rerank", "2")):
        body = client.post(route, json={"query": QUERY, "documents": docs, "top_n": 5, "return_documents": True,
                                        "model": "default-en"}).json()
        assert [r["index"] for r in body["results"]] == [e["corpus_id"] for e in expected]
        for r, e in zip(body["results"], expected):
            assert r["relevance_score"] == pytest.approx(_sigmoid(e["score"]), abs=1e-12)
            assert r["document"] == {"text": docs[e["corpus_id"]]}
        assert body["meta"]["api_version"]["version"] == version and body["id"] and body["model"] == "default-en"


def test_jina_shape_documents_as_objects_and_no_text_unless_asked(client, reranker, docs):
    body = client.post("/v1/rerank", json={"query": QUERY, "documents": [{"text": d, "id": i} for i, d in enumerate(docs)]}).json()
    assert len(body["results"]) == len(docs) and "document" not in body["results"][0]
    assert body["object"] == "rerank" and body["model"] == "default-en"
    assert [r["index"] for r in body["results"]] == [e["corpus_id"] for e in reranker.rank(QUERY, docs)]


def _as_sigmoid_model(tmp_path):
    """The bundled model's files under a manifest that says "sigmoid": the same logits, activated."""
    target = tmp_path / "sigmoid-model"
    shutil.copytree(Reranker().info.model_dir, target)
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    (target / "manifest.json").write_text(json.dumps({**manifest, "activation": "sigmoid"}), encoding="utf-8")
    return Reranker(target)


@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
def test_tei_raw_scores_are_the_scorer_s_logits_exactly(activation, reranker, docs, tmp_path):
    model = reranker if activation == "identity" else _as_sigmoid_model(tmp_path)
    assert model.info.activation == activation
    logits = model.scorer.logits([(QUERY, d) for d in docs]).tolist()
    scores = model.score(QUERY, docs)
    assert model.score(QUERY, docs, raw=True) == logits and model.predict([(QUERY, d) for d in docs], raw=True) == logits
    with TestClient(create_app([model])) as c:
        raw = c.post("/rerank", json={"query": QUERY, "texts": docs, "raw_scores": True, "return_text": True}).json()
        activated = c.post("/rerank", json={"query": QUERY, "texts": docs, "truncate": True}).json()
        cohere = c.post("/v1/rerank", json={"query": QUERY, "documents": docs}).json()["results"]
    order = [e["corpus_id"] for e in model.rank(QUERY, docs)]
    assert [r["index"] for r in raw] == [r["index"] for r in activated] == [r["index"] for r in cohere] == order
    assert [r["score"] for r in raw] == [logits[i] for i in order]  # exact: no round trip through the sigmoid
    assert all(r["text"] == docs[r["index"]] for r in raw) and all("text" not in r for r in activated)
    relevance = [scores[i] if activation == "sigmoid" else _sigmoid(logits[i]) for i in order]
    assert [r["score"] for r in activated] == [r["relevance_score"] for r in cohere] == pytest.approx(relevance, abs=1e-12)
    if activation == "sigmoid":  # the in-process score itself, bit for bit
        assert [r["relevance_score"] for r in cohere] == [scores[i] for i in order]


def test_health_models_openapi_metrics(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and isinstance(health["models"][0]["batch_independent"], bool)
    assert client.get("/v1/models").json()["data"][0]["id"] == "default-en"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/health", "/v1/models", "/metrics"} <= set(paths)
    client.post("/v1/rerank", json={"query": QUERY, "documents": ["a", "b", "c"]})
    text = client.get("/metrics").text
    for name in ("reranker_requests_total", "reranker_pairs_total", "reranker_batch_pairs_bucket",
                 "reranker_queue_depth", "reranker_request_seconds_bucket", "reranker_queue_wait_seconds_bucket"):
        assert name in text
    assert 'reranker_pairs_total{model="default-en"} 3.0' in text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[]", 422, "valid dictionary"),
        (b'{"documents": ["a"]}', 422, "query: Field required"),
        (b'{"query": 3, "documents": ["a"]}', 422, "query: Input should be a valid string"),
        (b'{"query": "  ", "documents": ["a"]}', 422, "the query is empty"),
        (b'{"query": "q", "documents": []}', 422, "no documents given"),
        (b'{"query": "q", "documents": [{"title": "no text"}]}', 422, "text: Field required"),
        (b'{"query": "q", "documents": ["a"], "top_n": 0}', 422, "top_n"),
        (b'{"query": "q", "documents": ["a"], "model": "rerank-english-v3.0"}', 404, "served: default-en"),
        (b'{"query": "q", "documents": ["\\ud800"]}', 422, "lone surrogate"),
        (b'{"query": "' + b"q" * 5000 + b'", "documents": ["a"]}', 422, "at most 4096"),
        (b'{"query": "q", "documents": [' + b",".join([b'"d"'] * 51) + b"]}", 413, "at most 50"),
        (b'{"query": "q", "documents": ["' + b"x" * 200_000 + b'"]}', 413, "larger than 100000 bytes"),
    ],
)
def test_bad_input_is_one_line_4xx_and_the_server_stays_up(client, body, status, message):
    response = client.post("/v1/rerank", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()
    assert message in error["message"] and "\n" not in error["message"] and "Traceback" not in response.text
    assert error["error"] == error["message"]  # TEI's clients read "error"
    assert client.post("/v1/rerank", json={"query": "q", "documents": ["a"]}).status_code == 200


def test_tei_refuses_left_truncation(client):
    response = client.post("/rerank", json={"query": "q", "texts": ["a"], "truncation_direction": "Left"})
    assert response.status_code == 422 and "truncation_direction" in response.json()["error"]


def test_api_key_is_required_except_for_health(reranker):
    with TestClient(create_app([reranker], api_key="s3cret")) as c:
        body = {"query": "q", "documents": ["a"]}
        assert c.post("/v1/rerank", json=body).status_code == 401
        wrong = c.post("/v1/rerank", json=body, headers={"Authorization": "Bearer s3cre"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert "API key" in wrong.json()["message"]
        assert c.get("/metrics").status_code == 401 and c.get("/health").status_code == 200
        assert c.post("/v1/rerank", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200


class _Slow:
    """A stand-in Reranker whose calls block until released: fills the queue deterministically."""

    def __init__(self, real: Reranker) -> None:
        self.real, self.release, self.entered, self.info = real, threading.Event(), threading.Event(), real.info
        self.scorer = real.scorer

    def score(self, query, documents, raw=False):
        self.entered.set()
        self.release.wait(10)
        return self.real.score(query, documents, raw=raw)

    predict = None


def test_full_queue_is_503_with_retry_after_and_timeouts_too(reranker):
    slow = _Slow(reranker)
    app = create_app([slow], limits=Limits(max_queue=1, timeout_s=5.0))
    body = {"query": "q", "documents": ["a"]}
    with TestClient(app) as c:
        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(c.post("/v1/rerank", json=body).status_code))
                   for _ in range(2)]
        workers[0].start()  # this one is being scored (blocked) ...
        assert slow.entered.wait(10)
        workers[1].start()  # ... and this one waits in the queue
        served, deadline = app.state.served["default-en"], time.monotonic() + 4
        while served.batcher.depth < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert served.batcher.depth == 1, results
        full = c.post("/v1/rerank", json=body)
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "queue is full" in full.json()["message"]
        for w in workers:
            w.join()
        assert results == [503, 503]  # both waited past timeout_s behind the blocked call
        slow.release.set()
        after = c.post("/v1/rerank", json=body)
        assert after.status_code == 200, after.text
        assert 'reranker_rejected_total{reason="timeout"} 2.0' in c.get("/metrics").text


def test_a_stalled_body_is_408_not_a_hang():
    from reranker_onnx.serve.guard import Guard
    from reranker_onnx.serve.metrics import Metrics

    async def never_called(scope, receive, send):
        raise AssertionError("the app must not see a request whose body never arrived")

    async def stalled():
        await asyncio.sleep(3600)

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    guard = Guard(never_called, max_body_bytes=1000, body_timeout_s=0.05, metrics=Metrics())
    asyncio.run(guard({"type": "http", "path": "/v1/rerank", "headers": []}, stalled, send))
    assert sent[0]["status"] == 408 and "did not arrive within 0.05 s" in json.loads(sent[1]["body"])["message"]


def test_the_issue_s_bad_inputs_under_the_default_limits(reranker):
    """10,000 documents and a 5 MB document are refused by the defaults, one line each; the server stays up."""
    with TestClient(create_app([reranker])) as c:
        many = c.post("/v1/rerank", json={"query": "q", "documents": ["d"] * 10_000})
        assert many.status_code == 413 and many.json()["message"] == (
            "10000 documents in one request; at most 1000 are accepted")
        huge = c.post("/v1/rerank", json={"query": "q", "documents": ["x" * 5_000_000]})
        assert huge.status_code == 413 and "larger than 4194304 bytes" in huge.json()["message"]
        assert c.post("/rerank", json={"query": "q", "texts": ["a", "b"]}).status_code == 200


def test_windows_are_a_server_option_equal_to_plain_scoring_when_passages_fit(reranker, docs):
    """``serve --windows``: every route scores as ``Reranker(windows=True)``; a passage that fits scores as
    without windows, a long one as its best window."""
    windowed = Reranker(windows=True, stride=64)
    short = ["GNU tar saves many files together into a single archive.", "Vim is a highly configurable text editor."]
    long_doc = " ".join(docs) * 2  # several windows of the default model's 256 tokens
    texts = [*short, long_doc]
    expected = windowed.score(QUERY, texts)
    assert expected[:2] == reranker.score(QUERY, short)
    assert len(windowed.scorer.windower.expand([(QUERY, long_doc)])[0]) > 2
    with TestClient(create_app([windowed])) as c:
        assert c.get("/v1/models").json()["data"][0]["windows"] is True
        cohere = c.post("/v2/rerank", json={"query": QUERY, "documents": texts}).json()["results"]
        assert {r["index"]: r["relevance_score"] for r in cohere} == pytest.approx(
            {i: _sigmoid(s) for i, s in enumerate(expected)}, abs=1e-12)
        tei = c.post("/rerank", json={"query": QUERY, "texts": texts, "raw_scores": True}).json()
        assert {r["index"]: r["score"] for r in tei} == pytest.approx(dict(enumerate(expected)), abs=1e-12)
    with TestClient(create_app([reranker])) as c:
        assert c.get("/health").json()["models"][0]["windows"] is False
