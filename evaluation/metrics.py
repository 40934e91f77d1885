"""Ranking metrics with binary relevance, as pure functions of one ranking.

A ranking is a sequence of document ids, best first; ``relevant`` is the set of ids that count.
The Debian tasks have exactly one relevant passage per query, but the functions do not assume it,
so they can be checked against textbook values on hand-made rankings.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Sequence


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cut-off k must be at least 1, got {k}")


def reciprocal_rank(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int = 10) -> float:
    """1/rank of the first relevant id within the top k, else 0 (MRR@k averages this)."""
    _check_k(k)
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int = 10) -> float:
    """Binary-gain NDCG@k: DCG with gain 1/log2(rank+1), over the DCG of the ideal ranking."""
    _check_k(k)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def recall(ranking: Sequence[Hashable], relevant: Collection[Hashable], k: int = 30) -> float:
    """Share of the relevant ids found in the top k."""
    _check_k(k)
    if not relevant:
        return 0.0
    return len(set(ranking[:k]) & set(relevant)) / len(relevant)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; an empty sample is an error, never a silent 0."""
    if not values:
        raise ValueError("cannot average an empty list of per-query values")
    return math.fsum(values) / len(values)


def pairs_per_second(pairs: int, seconds: float) -> float:
    """Scoring throughput: (query, passage) pairs per second of wall time."""
    if seconds <= 0:
        raise ValueError(f"wall time must be positive, got {seconds}")
    return pairs / seconds
