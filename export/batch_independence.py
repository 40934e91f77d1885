"""Does a pair's score depend on what else is in its batch? Measured, not assumed.

A caller may score passages all at once, one at a time, page by page, or (a server) merged with
another user's request. Each way forms different batches: different batch-mates, sizes and padded
lengths. The pairs are scored under several such splits, each against the one-pair-at-a-time scores,
and the largest |Δ| any pair saw is the graph's batch spread. Dynamically quantized graphs compute one
activation scale per batch tensor and move by tenths of a logit; fp32 and statically quantized
graphs move only by float rounding.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

Pairs = Sequence[tuple[str, str]]
ScoreFn = Callable[[list[tuple[str, str]]], Sequence[float]]


def splits(n: int, seed: int = 0) -> dict[str, list[list[int]]]:
    """Ways of cutting pair indices ``0..n-1`` into calls, each a list of calls (lists of indices)."""
    rng = random.Random(seed)
    shuffled = list(range(n))
    rng.shuffle(shuffled)
    ragged, start = [], 0
    while start < n:  # calls of mixed sizes, mixed batch-mates
        size = rng.choice((2, 3, 5, 8, 13, 32))
        ragged.append(shuffled[start : start + size])
        start += size
    return {
        "together": [list(range(n))],
        "reversed": [list(range(n))[::-1]],
        "shuffled": [shuffled],
        "ragged": ragged,
        "pairs_of_two": [list(range(i, min(i + 2, n))) for i in range(0, n, 2)],
    }


def score_by_split(score: ScoreFn, pairs: Pairs, calls: list[list[int]]) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float64)
    for call in calls:
        out[call] = np.asarray(score([pairs[i] for i in call]), dtype=np.float64)
    return out


def batch_spread(score: ScoreFn, pairs: Pairs, groups: list[list[int]] | None = None, seed: int = 0) -> dict:
    """Largest and median |Δ score| of each split against one-pair-at-a-time scoring, and (given query
    ``groups``) how many queries' top hit changed between them."""
    pairs = list(pairs)
    alone = score_by_split(score, pairs, [[i] for i in range(len(pairs))])
    per_split, worst, top1_changed = {}, np.zeros(len(pairs)), 0
    for name, calls in splits(len(pairs), seed).items():
        got = score_by_split(score, pairs, calls)
        delta = np.abs(got - alone)
        worst = np.maximum(worst, delta)
        per_split[name] = float(delta.max())
        if groups:
            top1_changed = max(top1_changed, sum(int(np.argmax(alone[g]) != np.argmax(got[g])) for g in groups))
    return {
        "max_abs_delta": float(worst.max()),
        "median_abs_delta": float(np.median(worst)),
        "per_split": per_split,
        "top1_changed": top1_changed,
        "queries": len(groups or ()),
        "pairs": len(pairs),
    }


def spread_on_queries(score: ScoreFn, pairs: Pairs, groups: list[list[int]], queries: int = 3) -> dict:
    """``batch_spread`` on the first ``queries`` query groups of a validation set."""
    chosen = groups[:queries]
    subset = [pairs[i] for g in chosen for i in g]
    local, start = [], 0
    for g in chosen:
        local.append(list(range(start, start + len(g))))
        start += len(g)
    return batch_spread(score, subset, local)
