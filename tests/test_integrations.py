"""Our in-process integrations in the real frameworks: a LangChain compressor, a LlamaIndex postprocessor.

Each needs only its own extra (no server, no cohere SDK); a missing framework is one ImportError naming it.
"""

from __future__ import annotations

import importlib
import re
import sys

import pytest

from export.debian import read_descriptions
from reranker_onnx import Reranker

QUERY = "tool to compress and archive files"


@pytest.fixture(scope="module")
def reranker():
    return Reranker()


@pytest.fixture(scope="module")
def docs():
    return [d.body for d in read_descriptions("en")[:10]]


@pytest.fixture(scope="module")
def expected(reranker, docs):
    return [r["corpus_id"] for r in reranker.rank(QUERY, docs, top_k=3)]


def test_our_langchain_compressor_ranks_like_the_reranker(reranker, docs, expected):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import BaseDocumentCompressor, Document

    from reranker_onnx.integrations import RerankerCompressor

    compressor = RerankerCompressor(reranker=reranker, top_n=3)
    assert isinstance(compressor, BaseDocumentCompressor)
    given = [Document(page_content=d, metadata={"i": i}) for i, d in enumerate(docs)]
    kept = compressor.compress_documents(given, QUERY)
    assert [d.metadata["i"] for d in kept] == expected
    assert kept[0].metadata["relevance_score"] == reranker.score(QUERY, docs)[expected[0]]
    assert all("relevance_score" not in d.metadata for d in given)  # the caller's documents are untouched
    assert compressor.compress_documents([], QUERY) == []


def test_our_llama_index_postprocessor_ranks_like_the_reranker(reranker, docs, expected):
    pytest.importorskip("llama_index.core")
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import NodeWithScore, TextNode

    from reranker_onnx import InputError
    from reranker_onnx.integrations import RerankerPostprocessor

    post = RerankerPostprocessor(reranker=reranker, top_n=3)
    assert isinstance(post, BaseNodePostprocessor)
    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(i)), score=0.0) for i, d in enumerate(docs)]
    kept = post.postprocess_nodes(nodes, query_str=QUERY)
    assert [int(n.node.node_id) for n in kept] == expected and all(n.score == 0.0 for n in nodes)
    with pytest.raises(InputError, match="needs the query"):
        post.postprocess_nodes(nodes)


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("langchain", "langchain_core", "pip install 'reranker-onnx[langchain]'"),
    ("llama_index", "llama_index", "pip install 'reranker-onnx[llama-index]'"),
])
def test_a_missing_framework_is_an_import_error_naming_the_extra(monkeypatch, module, blocked, extra):
    for name in [m for m in sys.modules if m == blocked or m.startswith(blocked + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, blocked, None)  # importing it now raises ImportError
    monkeypatch.delitem(sys.modules, f"reranker_onnx.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=re.escape(extra)):
        importlib.import_module(f"reranker_onnx.integrations.{module}")
