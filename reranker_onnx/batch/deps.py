"""The batch room's optional dependencies, imported only where used; a missing one names its extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import RerankerError

EXTRAS = {"batch": "tqdm, pyarrow", "ray": "ray[data]"}


def need(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail with one line that says which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RerankerError(
            f"{module.split('.')[0]} is not installed: pip install 'reranker-onnx[{extra}]' ({EXTRAS[extra]})"
        ) from None
