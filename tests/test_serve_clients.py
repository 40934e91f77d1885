"""Real clients against a real server on 127.0.0.1 (our in-process integrations: test_integrations.py).

The official ``cohere`` SDK (v1 and v2), LangChain's ``CohereRerank``, LlamaIndex's ``CohereRerank``
and ``JinaRerank`` all talk to ``create_app`` served by uvicorn; none of them leaves this machine.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

uvicorn = pytest.importorskip("uvicorn")
cohere = pytest.importorskip("cohere")

from test_integrations import QUERY, docs, expected, reranker  # noqa: E402,F401 - the same query, documents, fixtures

from reranker_onnx.serve import create_app  # noqa: E402

KEY = "local-test-key"


@pytest.fixture(scope="module")
def url(reranker):
    """A uvicorn server on a free loopback port, for this module's tests."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app([reranker], api_key=KEY), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_cohere_sdk_v1_and_v2(url, docs, expected):
    v1 = cohere.Client(api_key=KEY, base_url=url, timeout=30).rerank(
        model="default-en", query=QUERY, documents=docs, top_n=3, return_documents=True)
    assert [r.index for r in v1.results] == expected
    assert v1.results[0].document.text == docs[expected[0]] and 0 < v1.results[0].relevance_score < 1
    v2 = cohere.ClientV2(api_key=KEY, base_url=url, timeout=30).rerank(
        model="default-en", query=QUERY, documents=docs, top_n=3)
    assert [r.index for r in v2.results] == expected
    assert [r.relevance_score for r in v2.results] == [r.relevance_score for r in v1.results]


def test_cohere_sdk_sees_a_wrong_key_and_an_unknown_model_as_client_errors(url, docs):
    with pytest.raises(cohere.core.ApiError) as wrong:
        cohere.ClientV2(api_key="nope", base_url=url).rerank(model="default-en", query=QUERY, documents=docs)
    assert wrong.value.status_code == 401
    with pytest.raises(cohere.core.ApiError) as unknown:
        cohere.ClientV2(api_key=KEY, base_url=url).rerank(model="rerank-v3.5", query=QUERY, documents=docs)
    assert unknown.value.status_code == 404 and "default-en" in unknown.value.body["message"]


def test_langchain_cohere_rerank_against_the_server(url, docs, expected):
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    compressor = CohereRerank(model="default-en", base_url=url, cohere_api_key=KEY, top_n=3)
    kept = compressor.compress_documents([Document(page_content=d, metadata={"i": i}) for i, d in enumerate(docs)], QUERY)
    assert [d.metadata["i"] for d in kept] == expected and "relevance_score" in kept[0].metadata


def test_llama_index_cohere_and_jina_rerank_against_the_server(url, docs, expected):
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.cohere_rerank import CohereRerank
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(i)), score=0.0) for i, d in enumerate(docs)]
    for post in (CohereRerank(api_key=KEY, model="default-en", top_n=3, base_url=url),
                 JinaRerank(api_key=KEY, model="default-en", top_n=3, base_url=f"{url}/v1")):
        kept = post.postprocess_nodes(nodes, query_str=QUERY)
        assert [int(n.node.node_id) for n in kept] == expected, type(post).__name__
