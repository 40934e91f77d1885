"""Fixed real pairs and the measures that decide whether an exported graph is accepted.

Queries are Debian package synopses, English and Japanese; each has a group of passages (its own
long description among others), a quarter of them long enough to be truncated at the model's limit.
fp32 must match PyTorch within a tolerance; int8 is judged by how well it keeps the fp32 ranking:
Spearman over all pairs, NDCG@10 and top-1 agreement per query (the fp32 order is the truth).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .debian import Language, read_descriptions

FP32_TOLERANCE = 1e-4  # max |Δ logit| between the ONNX graph and the PyTorch reference
INT8_MIN_NDCG_RATIO = 0.99  # real weights: int8 NDCG@10 must keep this share of fp32's (which is 1.0)


@dataclass(frozen=True)
class ValidationSet:
    pairs: list[tuple[str, str]]
    groups: list[list[int]]  # indices into pairs, one list per query
    languages: tuple[str, ...]


def _stable_order(keys: list[str], salt: str) -> list[int]:
    return sorted(range(len(keys)), key=lambda i: hashlib.sha256(f"{salt}:{keys[i]}".encode()).digest())


def validation_set(
    languages: tuple[Language, ...] = ("en", "ja"), queries_per_language: int = 12, group_size: int = 16
) -> ValidationSet:
    """Deterministic query groups of mixed lengths: short bodies, typical ones, and long concatenations."""
    pairs: list[tuple[str, str]] = []
    groups: list[list[int]] = []
    for lang in languages:
        docs = read_descriptions(lang)
        order = _stable_order([d.md5 for d in docs], f"validation-{lang}")
        queries, pool = order[:queries_per_language], order[queries_per_language:]
        cursor = 0
        for q in queries:
            group = [docs[q].body]
            while len(group) < group_size:
                if len(group) % 4 == 3:  # long passage: several descriptions, truncated at max_length
                    group.append("\n\n".join(docs[i].body for i in pool[cursor : cursor + 12]))
                    cursor += 12
                else:
                    group.append(docs[pool[cursor]].body)
                    cursor += 1
            start = len(pairs)
            pairs.extend((docs[q].synopsis, p) for p in group)
            groups.append(list(range(start, len(pairs))))
    return ValidationSet(pairs=pairs, groups=groups, languages=tuple(languages))


def _ndcg_at_10(truth: np.ndarray, candidate: np.ndarray) -> float:
    """NDCG@10 of ``candidate``'s order, with graded gains from ``truth``'s order (10 for its best, ...)."""
    gains = np.zeros(len(truth))
    gains[np.argsort(-truth, kind="stable")[:10]] = np.arange(10, 10 - min(10, len(truth)), -1)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    got = gains[np.argsort(-candidate, kind="stable")[:10]]
    ideal = np.sort(gains)[::-1][:10]
    return float((got * discounts[: len(got)]).sum() / (ideal * discounts[: len(ideal)]).sum())


def ranking_agreement(reference: np.ndarray, candidate: np.ndarray, groups: list[list[int]]) -> dict[str, float]:
    """How well ``candidate`` scores keep the ``reference`` ranking."""
    from scipy.stats import spearmanr

    ndcg = [_ndcg_at_10(reference[g], candidate[g]) for g in groups]
    top1 = [int(np.argmax(reference[g]) == np.argmax(candidate[g])) for g in groups]
    return {
        "spearman": round(float(spearmanr(reference, candidate).statistic), 6),
        "ndcg_at_10": round(float(np.mean(ndcg)), 6),
        "top1_agreement": round(float(np.mean(top1)), 6),
        "max_abs_diff": round(float(np.max(np.abs(reference - candidate))), 6),
    }
