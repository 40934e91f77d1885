"""Property-based tests of the HTTP service's bodies, under test_fuzz's profiles (``make test`` a few
examples each, ``make fuzz`` many).

Two generators, two jobs. Schemathesis builds bodies from the served OpenAPI schema (valid and
invalid) on the bundled default model: no answer is a 5xx, every answer matches the schema.
Hypothesis sends hostile bodies (any JSON, any Unicode, raw bytes, odd content types) to a tiny model:
a 200 ranks exactly the documents sent (each index once, best first, the top ``top_n``) with finite
scores equal to the in-process ``Reranker``'s; anything else is a 4xx whose message is one line.
"""

from __future__ import annotations

import json
import math

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, event, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from reranker_onnx import Reranker  # noqa: E402
from reranker_onnx.serve import Limits, create_app  # noqa: E402
from reranker_onnx.serve.models import ModelCard  # noqa: E402
from test_fuzz import DEEP, SPECIAL, json_values, one_line, same_every_run, short_texts, surrogates, words  # noqa: E402

APP = create_app([Reranker()], limits=Limits(max_documents=16, max_query_chars=512, timeout_s=120))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=settings.default.max_examples if DEEP else 30, deadline=None, derandomize=not DEEP,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_answers_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], timeout=120)


# -- hostile bodies ---------------------------------------------------------------------------------

LIMITS = Limits(max_documents=8, max_query_chars=3000, max_body_bytes=200_000, timeout_s=120)
text = st.one_of(short_texts, st.sampled_from(SPECIAL))  # any valid Unicode, controls and huge tokens included
anything = st.one_of(json_values, text, surrogates)
# Well-typed bodies whose texts are hostile (most are scored), and bodies with any value anywhere.
cohere = st.fixed_dictionaries(
    {"query": st.one_of(words, text), "documents": st.lists(st.one_of(text, st.fixed_dictionaries(
        {"text": text}, optional={"title": anything})), min_size=1, max_size=8)},
    optional={"top_n": st.integers(1, 10), "return_documents": st.booleans(), "model": st.just("tiny-bert"),
              "rank_fields": st.lists(st.text(max_size=5), max_size=2), "max_tokens_per_doc": st.integers(1, 600)},
)
tei = st.fixed_dictionaries(
    {"query": st.one_of(words, text), "texts": st.lists(text, min_size=1, max_size=8)},
    optional={"raw_scores": st.booleans(), "return_text": st.booleans(), "truncate": st.booleans(),
              "truncation_direction": st.sampled_from(["Right", "right"])},
)
hostile = st.fixed_dictionaries({}, optional={
    "query": anything, "documents": st.one_of(st.lists(st.one_of(anything, st.fixed_dictionaries({"text": anything})), max_size=10), anything),
    "texts": st.one_of(st.lists(anything, max_size=10), anything), "top_n": st.one_of(st.integers(-1, 12), anything),
    "return_documents": anything, "model": anything, "raw_scores": anything, "truncation_direction": anything,
})
RAW = [b"", b"{broken", b"\xff\xfe{}", b"null", b"NaN", b"[" * 100_000, b'{"query": "q", "documents": ["a"], "top_n": NaN}',
       b'{"query": "q", "documents": ["a"], "top_n": ' + b"9" * 5000 + b"}", b'{"query": "q", "texts": ["a"], "raw_scores": 1e999}',
       b'\xef\xbb\xbf{"query": "q", "documents": ["a"]}', b'{"query": "q", "documents": ["a"], "query": 1}']
COHERE, TEI = ["/v1/rerank", "/v2/rerank"], ["/rerank"]
requests = st.one_of(
    st.tuples(st.sampled_from(COHERE), cohere), st.tuples(st.sampled_from(TEI), tei),
    st.tuples(st.sampled_from(COHERE + TEI), st.one_of(hostile, cohere, tei, json_values)),
).flatmap(lambda r: st.tuples(st.just(r[0]), st.booleans().map(
    lambda ascii: json.dumps(r[1], ensure_ascii=ascii).encode("utf-8", "surrogatepass"))))
requests = st.one_of(requests, st.tuples(st.sampled_from(COHERE + TEI), st.sampled_from(RAW)))


@pytest.fixture(scope="module")
def served(exported):
    reranker = Reranker(exported("bert"), variant="fp32", threads=1)
    with TestClient(create_app([reranker], limits=LIMITS)) as client:
        yield client, reranker


def _expected(reranker: Reranker, request: dict, texts: list[str], raw: bool) -> list[float]:
    if raw:
        return reranker.score(request["query"], texts, raw=True)
    card = ModelCard.of(reranker)
    return [card.relevance(s) for s in reranker.score(request["query"], texts)]


@same_every_run
@given(sent=requests, content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None]))
@example(sent=("/v1/rerank", b'{"query": "q", "documents": ["a"], "top_n": ' + b"9" * 5000 + b"}"),
         content_type="application/json")
def test_any_body_is_ranked_exactly_or_refused_in_one_line(served, sent, content_type):
    client, reranker = served
    route, content = sent
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(route, content=content, headers=headers)
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: how many bodies were scored
    assert response.status_code in (200, 400, 404, 413, 415, 422), (response.status_code, response.text[:300])
    if response.status_code != 200:
        error = response.json()
        assert one_line(error["message"]) and error["error"] == error["message"], error
        return
    request = json.loads(content)  # it was accepted: a JSON object
    tei_route = route == "/rerank"
    texts = request["texts"] if tei_route else [d if isinstance(d, str) else d["text"] for d in request["documents"]]
    answer = response.json() if tei_route else response.json()["results"]
    scores = [r["score"] if tei_route else r["relevance_score"] for r in answer]
    expected = _expected(reranker, request, texts, raw=tei_route and request.get("raw_scores") is True)
    indices = [r["index"] for r in answer]
    assert len(set(indices)) == len(indices) and set(indices) <= set(range(len(texts)))
    if tei_route or request.get("top_n") is None:
        assert sorted(indices) == list(range(len(texts)))  # every document, once
    assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)  # best first
    for i, s in zip(indices, scores):
        assert s == pytest.approx(expected[i], abs=1e-5)
    left = set(range(len(texts))) - set(indices)
    assert all(expected[j] <= min(scores) + 1e-5 for j in left)  # the best ones are shown
    shown = request.get("return_text" if tei_route else "return_documents") is True
    for r in answer:
        text_back = r.get("text") if tei_route else (r.get("document") or {}).get("text")
        assert text_back == (texts[r["index"]] if shown else None)
