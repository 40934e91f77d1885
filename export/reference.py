"""The PyTorch reference: what sentence-transformers ``CrossEncoder.predict`` returns for a checkpoint.

For the families transformers ships, the reference is sentence-transformers itself (same tokenizer
call, truncation and activation rules). For JinaBERT it is the project's own module with the
upstream tokenizer, truncated the same way, and sigmoid, as the upstream ``compute_score`` does, batched
by length and token budget with attention in query blocks where full attention would not fit (8k pairs).
Batches are padded on the right: a pair's reference score is its score alone.
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


# The reference's memory bound. A batch holds at most REFERENCE_TOKENS tokens (rows × padded length, pairs
# sorted by length, so short pairs are not padded to long ones), and JinaBERT's attention runs in query
# blocks whenever its (rows, heads, L, L) scores would pass ATTENTION_BYTES. Full attention at 8,192 tokens
# needs 3.2 GB per (heads, L, L) tensor and several at once: a 16-pair batch was OOM-killed at 8.7 GB.
REFERENCE_TOKENS = 8192
ATTENTION_BYTES = 256 * 2**20


def length_batches(lengths: list[int], rows: int, tokens: int) -> list[list[int]]:
    """Indices grouped shortest first: ≤ ``rows`` pairs and ≤ ``tokens`` rows × longest length per group."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and len(batches[-1]) < rows and (len(batches[-1]) + 1) * lengths[i] <= tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def query_block(rows: int, heads: int, length: int) -> int | None:
    """None (full attention) if the (rows, heads, L, L) scores fit ATTENTION_BYTES, else the query block
    that keeps (rows, heads, block, L) within it. Each query row's softmax still spans every key, so
    blocks change the arithmetic's grouping, not the result (``tests/test_jinabert.py``)."""
    per_query = rows * heads * length * 4
    return None if per_query * length <= ATTENTION_BYTES else max(1, ATTENTION_BYTES // per_query)


def jinabert_reference(checkpoint: Path, pairs: list[tuple[str, str]], max_length: int, batch: int) -> Reference:
    """The project's port with the upstream tokenizer, truncated the same way, and sigmoid (upstream's
    compute_score), in memory bounded by REFERENCE_TOKENS and ATTENTION_BYTES at any max_length."""
    import torch
    from transformers import AutoTokenizer

    from .jinabert import JinaBertForSequenceClassification

    model = JinaBertForSequenceClassification.from_pretrained(checkpoint).eval()
    # The tokenizer is plain RoBERTa-style; trust_remote_code stays off, so no checkpoint code runs.
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True, trust_remote_code=False)
    right_padded(tokenizer)

    def encode(chunk: list[tuple[str, str]], **kw: object) -> dict:
        return tokenizer([q for q, _ in chunk], [p for _, p in chunk], truncation="longest_first",
                         max_length=max_length, **kw)

    lengths = [len(x) for x in encode(pairs)["input_ids"]]
    logits = np.empty(len(pairs), dtype=np.float32)
    heads = model.config.num_attention_heads
    with torch.inference_mode():
        for rows in length_batches(lengths, batch, max(REFERENCE_TOKENS, max_length)):
            features = encode([pairs[i] for i in rows], padding=True, return_tensors="pt")
            model.bert.encoder.attention_block = query_block(len(rows), heads, features["input_ids"].shape[1])
            logits[rows] = model(features["input_ids"], features["attention_mask"]).float().numpy()[:, 0]
    return Reference(logits, "sigmoid")


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
