"""A LlamaIndex node postprocessor over ``Reranker``: rescores retrieved nodes, keeps the best ``top_n``.

Drop-in where LlamaIndex's ``CohereRerank`` or ``JinaRerank`` postprocessors go, without a service.
Each returned ``NodeWithScore`` is new and holds the cross-encoder's score; the caller's are unchanged.
"""

from __future__ import annotations

from typing import Any, Optional

try:
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("RerankerPostprocessor needs the llama-index extra: pip install 'reranker-onnx[llama-index]'") from None

from reranker_onnx import InputError, Reranker


class RerankerPostprocessor(BaseNodePostprocessor):
    """Rerank nodes with a local cross-encoder (``reranker``: a Reranker; default model if None)."""

    top_n: Optional[int] = Field(default=2, description="Nodes to keep (None: all, reordered).")
    _reranker: Any = PrivateAttr()

    def __init__(self, reranker: Optional[Reranker] = None, top_n: Optional[int] = 2, **kwargs: Any) -> None:
        super().__init__(top_n=top_n, **kwargs)
        self._reranker = reranker if reranker is not None else Reranker()

    @classmethod
    def class_name(cls) -> str:
        return "RerankerOnnxPostprocessor"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise InputError("RerankerPostprocessor needs the query: pass query_bundle or query_str")
        if not nodes:
            return []
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        ranked = self._reranker.rank(query_bundle.query_str, texts, top_k=self.top_n)
        return [NodeWithScore(node=nodes[r["corpus_id"]].node, score=r["score"]) for r in ranked]
