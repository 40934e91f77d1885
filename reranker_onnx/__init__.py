"""reranker-onnx: cross-encoder rerankers on CPUs and edge devices, with onnxruntime only.

>>> from reranker_onnx import Reranker
>>> Reranker("path/to/model").rank("query", ["passage one", "passage two"])
"""

from .errors import (
    DownloadError,
    InputError,
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    RerankerError,
    VariantError,
)
from .reranker import Reranker

__version__ = "0.1.0"

__all__ = [
    "DownloadError",
    "InputError",
    "IntegrityError",
    "ManifestError",
    "ModelNotFoundError",
    "Reranker",
    "RerankerError",
    "VariantError",
    "__version__",
]
