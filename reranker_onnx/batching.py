"""Length-sorted batches under a token budget, padded per batch.

Sorting by length means a short passage is never padded to a long one, and the budget (rows × padded
length) bounds the activations a batch needs, whatever the input size. A batch also closes when the
next pair is much shorter than its longest (``pad_slack``, ``PAD_SLACK`` by default): on mixed real passages a budget-only cut
spent 30-40 % of a batch's tokens on padding, and attention cost grows with the padded length squared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .encoding import EncodedPairs

PAD_SLACK = 0.2  # a batch takes no row shorter than (1 - PAD_SLACK) × its longest


@dataclass(frozen=True)
class Batch:
    rows: np.ndarray  # (n,) indices into the encoded pairs
    input_ids: np.ndarray  # (n, L) int64
    attention_mask: np.ndarray  # (n, L) int64
    token_type_ids: np.ndarray  # (n, L) int64


def plan_batches(lengths: np.ndarray, token_budget: int, max_rows: int, pad_slack: float = PAD_SLACK,
                 rows_for: Callable[[int], int] | None = None) -> list[np.ndarray]:
    """Group row indices, longest first: rows × longest ≤ token_budget (at least one row), and no row
    shorter than (1 - pad_slack) × the batch's longest. ``rows_for(length)`` caps the rows further
    (the memory budget, reranker_onnx/memory.py)."""
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        rows = min(max_rows, token_budget // max(longest, 1))
        if rows_for is not None:
            rows = min(rows, rows_for(longest))
        limit = min(len(order), start + max(1, rows))
        floor = longest * (1.0 - pad_slack)
        end = start + 1
        while end < limit and lengths[order[end]] >= floor:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def make_batches(
    encoded: EncodedPairs, pad_id: int, token_budget: int, max_rows: int, pad_slack: float = PAD_SLACK,
    rows_for: Callable[[int], int] | None = None,
) -> Iterator[Batch]:
    lengths = encoded.lengths()
    for rows in plan_batches(lengths, token_budget, max_rows, pad_slack, rows_for):
        width = int(lengths[rows].max())
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            n = int(lengths[row])
            ids[r, :n] = encoded.ids[row]
            mask[r, :n] = 1
            types[r, :n] = encoded.type_ids[row]
        yield Batch(rows=rows, input_ids=ids, attention_mask=mask, token_type_ids=types)
