"""The PyTorch reference: what sentence-transformers ``CrossEncoder.predict`` returns for a checkpoint.

For the families transformers ships, the reference is sentence-transformers itself (same tokenizer
call, truncation and activation rules). For JinaBERT it is the project's own module with the
upstream tokenizer, truncated the same way, and sigmoid, as the upstream ``compute_score`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ExportError

if TYPE_CHECKING:
    from .families import Family


@dataclass
class Reference:
    logits: np.ndarray  # (n,) float32, before activation
    activation: str  # "identity" or "sigmoid"


def right_padded(tokenizer: object) -> None:
    """Pad batches on the right, whatever the checkpoint's tokenizer says.

    A pair's reference score is its score alone. Padding on the right masks the pad keys and leaves
    position 0 and every real position as they are alone; padding on the left (a Llama-style
    tokenizer's default, as ja-v2's ``tokenizer_class: LlamaTokenizer``) puts a pad token where
    ModernBERT's and JinaBERT's CLS pooling reads, so a padded pair scored its pad token (ja-v2's fp32
    check failed by ~1 on that, not on the graph).
    """
    tokenizer.padding_side = "right"  # type: ignore[attr-defined]


def _activation_name(fn: object) -> str:
    import torch

    if isinstance(fn, torch.nn.Sigmoid):
        return "sigmoid"
    if isinstance(fn, torch.nn.Identity):
        return "identity"
    raise ExportError(f"the checkpoint's activation {type(fn).__name__} is not supported (identity or sigmoid)")


def jinabert_reference(checkpoint: Path, pairs: list[tuple[str, str]], max_length: int, batch: int) -> Reference:
    """The project's port with the upstream tokenizer, truncated the same way, and sigmoid (upstream's compute_score)."""
    import torch
    from transformers import AutoTokenizer

    from .jinabert import JinaBertForSequenceClassification

    model = JinaBertForSequenceClassification.from_pretrained(checkpoint).eval()
    # The tokenizer is plain RoBERTa-style; trust_remote_code stays off, so no checkpoint code runs.
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True, trust_remote_code=False)
    right_padded(tokenizer)
    out = []
    with torch.inference_mode():
        for i in range(0, len(pairs), batch):
            chunk = pairs[i : i + batch]
            features = tokenizer(
                [q for q, _ in chunk], [p for _, p in chunk], padding=True, truncation="longest_first",
                max_length=max_length, return_tensors="pt",
            )
            out.append(model(features["input_ids"], features["attention_mask"]).float().numpy()[:, 0])
    return Reference(np.concatenate(out), "sigmoid")


def reference_scores(
    checkpoint: Path, family: Family, pairs: list[tuple[str, str]], max_length: int, batch: int = 16
) -> Reference:
    """Logits of the family's reference implementation for ``pairs`` and the activation it applies."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    return family.reference(checkpoint, pairs, max_length, batch)


def cross_encoder_reference(checkpoint: Path, pairs: list[tuple[str, str]], max_length: int, batch: int) -> Reference:
    """sentence-transformers' CrossEncoder itself: same tokenizer call, truncation and activation rules."""
    import torch
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), max_length=max_length, device="cpu", local_files_only=True)
    right_padded(model.tokenizer)
    logits = model.predict(pairs, batch_size=batch, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
    logits = np.asarray(logits, dtype=np.float32).reshape(len(pairs), -1)
    if logits.shape[1] != 1:
        raise ExportError(f"the checkpoint has {logits.shape[1]} labels; only single-score cross-encoders are supported")
    return Reference(logits[:, 0], _activation_name(model.activation_fn))
