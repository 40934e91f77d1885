"""``rerank-onnx serve``: a local reranking HTTP service (the ``[serve]`` extra).

Modules, one job each: ``limits`` what a request may carry and how long it may wait, ``models`` what
the server reads about each model (and the one batch-independence rule), ``batcher`` the queue and
scoring thread per model, ``schemas`` the Cohere/Jina/TEI bodies, ``guard`` the ASGI layer (body limit,
metrics, no tracebacks), ``metrics`` Prometheus, ``app`` the routes, ``command`` the CLI verb.

The runtime never imports this package; it uses only ``reranker_onnx``'s public API. Names are
resolved on first use, so the CLI can register ``serve`` without importing FastAPI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Limits", "ModelCard", "batch_independent", "create_app"]

_HOME = {"Limits": "limits", "ModelCard": "models", "batch_independent": "models", "create_app": "app"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
