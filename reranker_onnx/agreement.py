"""How well int8 scores keep the fp32 ranking, and the real pairs that ship for measuring it on the device.

The export stage and ``rerank-onnx pull`` judge an int8 graph the same way: Spearman over all pairs, and per
query NDCG@10 (graded by the fp32 order) and top-1 agreement; the gate is NDCG@10 ≥ ``INT8_MIN_NDCG``.
numpy only, so a Raspberry Pi can run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INT8_MIN_NDCG = 0.99  # real weights: int8 NDCG@10 must keep this share of fp32's (which is 1.0)
PAIRS_DIR = Path(__file__).resolve().parent / "data"


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n; ties share the mean of their positions (as Spearman's rho expects)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator else float("nan")


def ndcg_at_10(truth: np.ndarray, candidate: np.ndarray) -> float:
    """NDCG@10 of ``candidate``'s order, with graded gains from ``truth``'s order (10 for its best, ...)."""
    gains = np.zeros(len(truth))
    gains[np.argsort(-truth, kind="stable")[:10]] = np.arange(10, 10 - min(10, len(truth)), -1)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    got = gains[np.argsort(-candidate, kind="stable")[:10]]
    ideal = np.sort(gains)[::-1][:10]
    return float((got * discounts[: len(got)]).sum() / (ideal * discounts[: len(ideal)]).sum())


def ranking_agreement(reference: np.ndarray, candidate: np.ndarray, groups: list[list[int]]) -> dict[str, float]:
    """How well ``candidate`` scores keep the ``reference`` ranking."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    ndcg = [ndcg_at_10(reference[g], candidate[g]) for g in groups]
    top1 = [int(np.argmax(reference[g]) == np.argmax(candidate[g])) for g in groups]
    return {
        "spearman": round(spearman(reference, candidate), 6),
        "ndcg_at_10": round(float(np.mean(ndcg)), 6),
        "top1_agreement": round(float(np.mean(top1)), 6),
        "max_abs_diff": round(float(np.max(np.abs(reference - candidate))), 6),
    }


@dataclass(frozen=True)
class PairSet:
    """Query groups of real pairs: ``groups`` index into ``pairs``, one list per query."""

    pairs: list[tuple[str, str]]
    groups: list[list[int]]
    languages: tuple[str, ...]


def shipped_pairs(languages: tuple[str, ...] = ("en",)) -> PairSet:
    """The real Debian pairs shipped in the package (``data/pairs-LANG.json``, see its ``source``)."""
    pairs: list[tuple[str, str]] = []
    groups: list[list[int]] = []
    for lang in languages:
        data = json.loads((PAIRS_DIR / f"pairs-{lang}.json").read_text(encoding="utf-8"))
        for group in data["groups"]:
            start = len(pairs)
            pairs.extend((group["query"], passage) for passage in group["passages"])
            groups.append(list(range(start, len(pairs))))
    return PairSet(pairs, groups, tuple(languages))
