"""Training examples: a train-split synopsis, its own description, and BM25 hard negatives.

Only train-split text is ever seen. The split (``evaluation.split``) puts every package group, and
with it every passage, in exactly one split; the BM25 index used to mine negatives is built over the
train split's passages alone, so no dev or test description enters training, not even as a negative.

Most negatives are the ones the model will have to beat at evaluation time: the BM25 top-30 of the
same first stage, minus the relevant passage. The best-ranked few are always taken (they decide
MRR@10, and they are the near-duplicates such as ``libfoo1`` against ``libfoo-dev``), the rest are
drawn from the remaining candidates. Optionally (``random_negatives``) a few are random train-split
passages from outside the candidates, so that the model also sees unrelated text; measured, it cost
dev MRR@10 and is off by default (see ``TrainConfig``). Every draw uses a generator seeded by
(seed, qid), so the set for one query does not depend on which other queries are in the run.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.bm25 import BM25Config
from evaluation.candidates import bm25_candidates
from evaluation.tasks import Query, Splits, Task, build_splits, fingerprint
from export.debian import Description

logger = logging.getLogger(__name__)

TOP_NEGATIVES = 2  # default number of always-kept best-ranked non-relevant candidates; the rest are sampled


@dataclass(frozen=True)
class Example:
    qid: str
    package: str
    query: str
    positive: str
    negatives: tuple[str, ...]  # BM25 negatives best-ranked first, then random ones


@dataclass(frozen=True)
class TrainingData:
    examples: tuple[Example, ...]
    record: dict[str, object]  # counts and hashes for training.json


def train_only_task(splits: Splits, lang: str, max_queries: int | None = None) -> Task:
    """The train split as a task of its own: its passages only, and its queries re-indexed into them."""
    train = splits.queries["train"]
    kept = sorted({q.relevant for q in train})  # corpus order
    new_index = {old: new for new, old in enumerate(kept)}
    corpus = tuple(splits.corpus[i] for i in kept)
    queries = tuple(Query(q.qid, q.package, q.text, new_index[q.relevant]) for q in train[:max_queries])
    return Task(name=f"debian-{lang}-train-only", lang=lang, corpus=corpus, queries=queries,
                record={"corpus_passages": len(corpus), "queries": len(queries)})


def pick_negatives(candidates: Sequence[int], relevant: int, n: int, rng: random.Random,
                   top_n: int = TOP_NEGATIVES) -> list[int]:
    """``n`` non-relevant candidate ids: the ``top_n`` best-ranked, then a seeded sample of the rest."""
    pool = [c for c in candidates if c != relevant]
    top, rest = pool[:top_n], pool[top_n:]
    picked = top[:n] + rng.sample(rest, min(len(rest), max(0, n - len(top))))
    order = {c: i for i, c in enumerate(pool)}
    return sorted(picked, key=order.__getitem__)


def pick_random(n_passages: int, exclude: set[int], n: int, rng: random.Random) -> list[int]:
    """``n`` distinct passage ids drawn uniformly from ``range(n_passages)`` minus ``exclude``."""
    picked: list[int] = []
    while len(picked) < min(n, n_passages - len(exclude)):
        i = rng.randrange(n_passages)
        if i not in exclude and i not in picked:
            picked.append(i)
    return picked


def build_examples(
    descriptions: Sequence[Description],
    lang: str,
    queries: int,
    negatives: int,
    seed: int,
    bm25: BM25Config,
    cache_dir: Path | None = None,
    random_negatives: int = 0,
    top_negatives: int = TOP_NEGATIVES,
) -> TrainingData:
    """The first ``queries`` train-split queries in hash order, each with ``negatives`` negatives:
    ``random_negatives`` of them random passages from outside the BM25 candidates, the rest BM25's
    (the ``top_negatives`` best-ranked, then a sample of the other candidates)."""
    if not 0 <= random_negatives <= negatives:
        raise ValueError(f"random_negatives must be in 0..negatives ({negatives}), got {random_negatives}")
    if top_negatives < 0:
        raise ValueError(f"top_negatives must be at least 0, got {top_negatives}")
    splits = build_splits(descriptions)
    task = train_only_task(splits, lang, queries)
    cands = bm25_candidates(task, bm25, cache_dir)
    examples = []
    in_top_k = 0
    for q, ids in zip(task.queries, cands.doc_ids, strict=True):
        in_top_k += q.relevant in ids
        rng = random.Random(f"{seed}:{q.qid}")
        neg = pick_negatives(ids, q.relevant, negatives - random_negatives, rng, top_negatives)
        neg += pick_random(len(task.corpus), {q.relevant, *ids}, random_negatives, rng)
        examples.append(Example(q.qid, q.package, q.text, task.corpus[q.relevant],
                                tuple(task.corpus[i] for i in neg)))
    pairs = sum(1 + len(e.negatives) for e in examples)
    record = {
        "split_counts": {s: len(qs) for s, qs in splits.queries.items()},
        "ambiguous_queries_dropped": splits.ambiguous_dropped,
        "train_corpus_passages": len(task.corpus),
        "queries": len(examples),
        "pairs": pairs,
        "negatives_per_query": negatives,
        "random_negatives_per_query": random_negatives,
        "top_negatives_per_query": top_negatives,
        "negative_rule": f"BM25 top-{bm25.k} over train-split passages minus the relevant one: the "
                         f"{top_negatives} best-ranked, then a sample; then {random_negatives} random "
                         f"train-split passage(s) outside the top {bm25.k}; all seeded by (seed, qid)",
        "relevant_in_bm25_top_k": in_top_k / max(1, len(examples)),
        "bm25": {"k": bm25.k, "k1": bm25.k1, "b": bm25.b, "method": bm25.method,
                 "seconds": round(cands.seconds, 1), "cached": cands.cached},
        "task_sha256": fingerprint(task.corpus, task.queries),
    }
    logger.info("%d training queries, %d pairs, %d train passages", len(examples), pairs, len(task.corpus))
    return TrainingData(tuple(examples), record)
