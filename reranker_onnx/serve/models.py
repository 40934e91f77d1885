"""What the server needs to know about each loaded model, read once through the runtime's public API.

``batch_independent`` is the one rule that decides whether requests from different clients may share
a runtime call: dynamic int8 graphs quantize activations per batch, so a pair's score moves with its
batch-mates; fp32 graphs, and int8 graphs whose manifest records ``"batch_independent": true``, do not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reranker_onnx import Reranker


def batch_independent(variant: str, quantization: Mapping[str, Any] | object | None) -> bool:
    """True when a pair's score cannot depend on the other pairs of its batch.

    ``quantization`` is the variant's record in the manifest (``manifest.Quantization``, None for fp32,
    or its dict on disk): the key is a field of it or one of its ``extra`` keys, as a newer export
    writes it. Anything but an explicit True counts as batch-dependent.
    """
    if variant == "fp32":
        return True
    if isinstance(quantization, Mapping):
        flag = quantization.get("batch_independent")
    else:
        flag = getattr(quantization, "batch_independent", None)
        if flag is None:
            flag = (getattr(quantization, "extra", None) or {}).get("batch_independent")
    return flag is True


@dataclass(frozen=True)
class ModelCard:
    id: str  # the name clients pass as ``model``
    variant: str
    variant_reason: str
    activation: str  # "identity" or "sigmoid": what Reranker.score returns
    max_length: int
    batch_independent: bool
    windows: bool  # long passages scored as windows, best window wins (serve --windows)

    @classmethod
    def of(cls, reranker: Reranker) -> ModelCard:
        info = reranker.info
        quantization = info.manifest.variants[info.variant].quantization
        return cls(
            id=info.name,
            variant=info.variant,
            variant_reason=info.variant_reason,
            activation=info.activation,
            max_length=info.max_length,
            batch_independent=batch_independent(info.variant, quantization),
            windows=info.windows,
        )

    def relevance(self, score: float) -> float:
        """A ``Reranker.score`` as a score in 0..1, as Cohere, Jina and TEI define relevance: the sigmoid of
        the logit (a sigmoid model's score already is)."""
        if self.activation == "sigmoid":
            return score
        return 0.5 * (1.0 + math.tanh(0.5 * score))  # sigmoid without overflow
