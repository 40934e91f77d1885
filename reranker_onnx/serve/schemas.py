"""Request and response bodies of the rerank shapes clients already speak (they become the OpenAPI schema).

Cohere v1/v2 and Jina/infinity share one request shape (``query``, ``documents``, ``top_n``,
``return_documents``, ``model``) and one answer that carries every field their clients read. TEI has
its own (``texts`` in, a bare list of ``{index, score, text}`` out).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class TextDocument(BaseModel):
    """A document as an object: Cohere v1 and Jina accept ``{"text": ...}`` (other fields are ignored)."""

    model_config = ConfigDict(extra="allow")
    text: StrictStr


class RerankRequest(BaseModel):
    model: Optional[StrictStr] = Field(None, description="A served model id (GET /v1/models); default: the first.")
    query: StrictStr = Field(..., description="The search query.")
    documents: list[Union[StrictStr, TextDocument]] = Field(..., description="Texts, or objects with a text field.")
    top_n: Optional[int] = Field(None, ge=1, description="Return only the best N results.")
    return_documents: StrictBool = Field(False, description="Include each document's text in the results.")
    # Accepted for compatibility with Cohere clients; they do not change scoring here: a long document is
    # cut to the model's max length, or scored as windows (best window wins) if the server runs --windows.
    rank_fields: Optional[list[StrictStr]] = None
    max_chunks_per_doc: Optional[int] = None
    max_tokens_per_doc: Optional[int] = None


class ResultDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int
    relevance_score: float = Field(..., description="Sigmoid of the model's logit, in 0..1.")
    document: Optional[ResultDocument] = None


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    search_units: int


class Meta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    meta: Meta  # Cohere's clients read it
    model: str  # Jina's and infinity's clients read these two
    object: Literal["rerank"] = "rerank"


class TeiRequest(BaseModel):
    query: StrictStr
    texts: list[StrictStr]
    raw_scores: StrictBool = Field(False, description="The model's logits instead of their sigmoid.")
    return_text: StrictBool = False
    truncate: Optional[StrictBool] = Field(
        None, description="Accepted; long passages are cut to the model's max_length like the reference, "
        "or scored as windows (best window wins) if the server runs with --windows."
    )
    truncation_direction: Literal["Right", "right"] = Field("Right", description="Only Right (the reference's).")


class TeiResult(BaseModel):
    index: int
    score: float
    text: Optional[str] = None


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "reranker-onnx"
    variant: str
    variant_reason: str
    max_length: int
    batch_independent: bool
    windows: bool = Field(False, description="Long passages are scored as windows; the best window's score wins.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelEntry]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: list[ModelEntry]


class ErrorBody(BaseModel):
    """One line; ``message`` is what Cohere's clients show, ``error``/``error_type`` what TEI's read."""

    message: str
    error: str
    error_type: str
