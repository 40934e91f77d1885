"""The FastAPI app: rerank routes in Cohere's, Jina's and TEI's shapes over one batcher per model.

Routes only translate shapes; scoring is ``Batcher.score``, whose logits equal ``Reranker.score(raw=True)``;
the model's own activation of them is then exactly ``Reranker.score``.
Every error a client can cause is a 4xx with one line; overload is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import uuid
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from reranker_onnx import Reranker, RerankerError, __version__
from reranker_onnx.errors import CALLER_ERRORS  # the caller's fault: 422; any other RerankerError is ours

from .batcher import Batcher, QueueFull, ShuttingDown
from .guard import Guard
from .limits import Limits
from .metrics import Metrics
from .models import ModelCard
from .schemas import (
    ApiVersion,
    BilledUnits,
    ErrorBody,
    Health,
    Meta,
    ModelEntry,
    ModelList,
    RerankRequest,
    RerankResponse,
    RerankResult,
    ResultDocument,
    TeiRequest,
    TeiResult,
)

class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "Validation", retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.retry_after = status, kind, retry_after


@dataclass(frozen=True)
class Served:
    card: ModelCard
    batcher: Batcher

    def activate(self, logits: list[float]) -> list[float]:
        """``Reranker.score`` from the logits ``Batcher.score`` gave (float32 values: the round trip is exact)."""
        return self.batcher.reranker.scorer.activate(np.asarray(logits, dtype=np.float32))


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 408, 413, 422, 503)}


def create_app(
    rerankers: Sequence[Reranker], *, limits: Limits = Limits(), api_key: str | None = None, merge: bool = True
) -> FastAPI:
    """An app serving ``rerankers`` (the first is the default model). ``merge=False`` never merges requests."""
    if not rerankers:
        raise ValueError("create_app needs at least one Reranker")
    metrics = Metrics()
    served: dict[str, Served] = {}
    for reranker in rerankers:
        card = ModelCard.of(reranker)
        if card.id in served:
            raise ValueError(f"two models are named {card.id!r}; serve each name once")
        batcher = Batcher(reranker, merge=merge and card.batch_independent, limits=limits,
                          observe=metrics.observer(card.id))
        metrics.queue_depth.labels(card.id).set_function(lambda b=batcher: b.depth)
        served[card.id] = Served(card, batcher)
    default = next(iter(served.values()))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        for s in served.values():
            s.batcher.start()
        yield
        # uvicorn calls this after in-flight requests finished (graceful SIGTERM); drain what is left.
        for s in served.values():
            await asyncio.to_thread(s.batcher.close, limits.timeout_s)

    app = FastAPI(
        title="reranker-onnx", version=__version__, lifespan=lifespan,
        description="Local cross-encoder reranking in the shapes of Cohere's, Jina's and TEI's rerank APIs.",
    )
    bearer = HTTPBearer(auto_error=False)
    expected = api_key.encode() if api_key else None

    def authorize(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", "Unauthorized")

    def pick(model: str | None) -> Served:
        if model is None:
            return default
        if model not in served:
            raise ApiError(404, f"model {model!r} is not served here; served: {', '.join(served)}", "NotFound")
        return served[model]

    def check(query: str, texts: list[str]) -> None:
        if not query.strip():
            raise ApiError(422, "the query is empty: give a non-empty query")
        if len(query) > limits.max_query_chars:
            raise ApiError(422, f"the query has {len(query)} characters; at most {limits.max_query_chars} are accepted")
        if not texts:
            raise ApiError(422, "no documents given: send at least one")
        if len(texts) > limits.max_documents:
            metrics.rejected.labels("too_many_documents").inc()
            raise ApiError(413, f"{len(texts)} documents in one request; at most {limits.max_documents} are accepted")

    async def logits(target: Served, query: str, texts: list[str], request: Request) -> list[float]:
        check(query, texts)
        try:
            return await _unless_client_leaves(target.batcher.score(query, texts), request)
        except ClientGone:
            metrics.rejected.labels("client_gone").inc()
            raise ApiError(499, "the client closed the connection before the answer") from None
        except QueueFull as exc:
            metrics.rejected.labels("queue_full").inc()
            raise ApiError(503, f"{exc}; retry later", "Overloaded", limits.retry_after_s) from None
        except asyncio.TimeoutError:
            metrics.rejected.labels("timeout").inc()
            raise ApiError(503, f"not answered within {limits.timeout_s:g} s; retry later", "Overloaded",
                           limits.retry_after_s) from None
        except ShuttingDown as exc:
            raise ApiError(503, str(exc), "Unhealthy", limits.retry_after_s) from None
        except CALLER_ERRORS as exc:
            raise ApiError(422, str(exc)) from None

    async def rerank(body: RerankRequest, version: str, request: Request) -> RerankResponse:
        target = pick(body.model)
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        scores = target.activate(await logits(target, body.query, texts, request))
        order = _best_first(scores)[: body.top_n]
        return RerankResponse(
            id=str(uuid.uuid4()),
            results=[
                RerankResult(
                    index=i, relevance_score=target.card.relevance(scores[i]),
                    document=ResultDocument(text=texts[i]) if body.return_documents else None,
                )
                for i in order
            ],
            meta=Meta(api_version=ApiVersion(version=version),
                      billed_units=BilledUnits(search_units=math.ceil(len(texts) / 100))),
            model=target.card.id,
        )

    guarded = {"dependencies": [Depends(authorize)], "responses": ERRORS}

    @app.post("/v1/rerank", response_model=RerankResponse, response_model_exclude_none=True, **guarded)
    async def rerank_v1(body: RerankRequest, request: Request) -> RerankResponse:
        """Cohere v1 rerank; also the Jina and infinity shape."""
        return await rerank(body, "1", request)

    @app.post("/v2/rerank", response_model=RerankResponse, response_model_exclude_none=True, **guarded)
    async def rerank_v2(body: RerankRequest, request: Request) -> RerankResponse:
        """Cohere v2 rerank."""
        return await rerank(body, "2", request)

    @app.post("/rerank", response_model=list[TeiResult], response_model_exclude_none=True, **guarded)
    async def rerank_tei(body: TeiRequest, request: Request) -> list[TeiResult]:
        """Text Embeddings Inference rerank: scores are sigmoids, or with raw_scores the model's logits."""
        target = default
        raw = await logits(target, body.query, body.texts, request)
        scores = target.activate(raw)
        shown = raw if body.raw_scores else [target.card.relevance(s) for s in scores]
        return [TeiResult(index=i, score=shown[i], text=body.texts[i] if body.return_text else None)
                for i in _best_first(scores)]

    def entries() -> list[ModelEntry]:
        return [ModelEntry(id=s.card.id, variant=s.card.variant, variant_reason=s.card.variant_reason,
                           max_length=s.card.max_length, batch_independent=s.card.batch_independent,
                           windows=s.card.windows)
                for s in served.values()]

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Up and serving these models (no API key needed)."""
        return Health(models=entries())

    @app.get("/v1/models", response_model=ModelList, **guarded)
    async def models() -> ModelList:
        return ModelList(data=entries())

    @app.get("/metrics", response_class=Response, **guarded)
    async def prometheus() -> Response:
        """Prometheus text: requests, pairs, batch sizes, queue depth, latency histograms."""
        return Response(metrics.render(), media_type=metrics.content_type)

    _install_error_handlers(app)
    app.add_middleware(Guard, max_body_bytes=limits.max_body_bytes, body_timeout_s=limits.timeout_s, metrics=metrics)
    app.state.served = served
    return app


class ClientGone(Exception):
    """The client disconnected while its request waited."""


async def _unless_client_leaves(work: Any, request: Request) -> Any:
    """Await ``work``, but drop it as soon as the client disconnects: a client that gave up (its own
    timeout, a closed app) frees its place in the queue instead of being scored for nobody."""
    job = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    gone = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()  # Batcher.score marks the job abandoned: skipped if not started
    if job.cancelled():
        raise ClientGone
    return job.result()


def _best_first(scores: list[float]) -> list[int]:
    """Indices, highest score first, ties in input order: the order of ``Reranker.rank``."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def _reply(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    line = " ".join(message.split())
    return JSONResponse({"message": line, "error": line, "error_type": kind}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return _reply(exc.status, str(exc), exc.kind, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _reply(400, "malformed JSON: send a JSON object as the body", "Validation")
        parts = []
        for e in errors[:3]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return _reply(422, "; ".join(parts) + more, "Validation")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "NotFound" if exc.status_code == 404 else "Validation"
        return _reply(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(RerankerError)
    async def runtime_error(_: Request, exc: RerankerError) -> JSONResponse:
        return _reply(500, "the model failed to score this request", "Backend")

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        return _reply(500, "internal server error", "Backend")
