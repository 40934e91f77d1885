"""In-process integrations of ``Reranker`` with RAG frameworks, each behind its own extra.

``RerankerCompressor`` is a LangChain document compressor (``[langchain]``), ``RerankerPostprocessor``
a LlamaIndex node postprocessor (``[llama-index]``). Names are resolved on first use, so importing this
package pulls neither framework; a missing one is an ImportError naming the extra.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["RerankerCompressor", "RerankerPostprocessor"]

_HOME = {"RerankerCompressor": "langchain", "RerankerPostprocessor": "llama_index"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
