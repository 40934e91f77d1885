"""A LangChain document compressor over ``Reranker``: keeps the best ``top_n`` documents, best first.

Use it in a ``ContextualCompressionRetriever`` like LangChain's own Cohere or Jina rerankers, without
a service. Returned documents are new objects carrying ``relevance_score`` in their metadata; the
caller's documents are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from pydantic import ConfigDict, Field
except ImportError:  # pragma: no cover - exercised by the missing-extra test
    raise ImportError("RerankerCompressor needs the langchain extra: pip install 'reranker-onnx[langchain]'") from None

from reranker_onnx import Reranker


class RerankerCompressor(BaseDocumentCompressor):
    """Rerank retrieved documents with a local cross-encoder (``reranker``: a Reranker; default model if None)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = Field(default=None, description="A reranker_onnx.Reranker (default: the bundled model).")
    top_n: Optional[int] = Field(default=3, ge=1, description="Documents to keep (None: all, reordered).")

    def model_post_init(self, __context: Any) -> None:
        if self.reranker is None:
            self.reranker = Reranker()

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Optional[Callbacks] = None
    ) -> Sequence[Document]:
        documents = list(documents)
        if not documents:
            return []
        ranked = self.reranker.rank(query, [d.page_content for d in documents], top_k=self.top_n)
        return [
            Document(
                page_content=documents[r["corpus_id"]].page_content,
                metadata={**documents[r["corpus_id"]].metadata, "relevance_score": r["score"]},
                id=documents[r["corpus_id"]].id,
            )
            for r in ranked
        ]
