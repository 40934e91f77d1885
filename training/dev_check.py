"""A quick dev-split check of a trained checkpoint, through the evaluation harness.

The checkpoint is scored with sentence-transformers ``CrossEncoder.predict`` (the reference the
export stage reproduces), on the BM25 top-30 of the first dev queries in hash order, beside BM25
itself and, if asked, the all-MiniLM-L6-v2 bi-encoder. It is a sanity check while training; the
quality bar is measured on the test split with ``python -m evaluation`` after export.

BM25's candidates all share words with the query, so MRR on them cannot show a model that scores some
passages high whatever the query. The open-set check can: dev synopses against the ``make demo``
passages, none of them relevant, and how many queries the most frequent top hit tops. A model with a
favourite passage (one trained run put the same one-line Node.js helper first for 33 of 40) is
broken for anyone who reranks their own text, whatever its MRR.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from evaluation.bm25 import BM25Config
from evaluation.candidates import bm25_candidates
from evaluation.harness import checked_scores, evaluate, order
from evaluation.scorers import System, bi_encoder_system, bm25_system
from evaluation.tasks import debian_task

logger = logging.getLogger(__name__)

OPEN_SET_QUERIES = 40


def cross_encoder_system(checkpoint: Path, batch_size: int = 32) -> System:
    """The checkpoint as sentence-transformers loads it: its own activation and max length."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), device="cpu", local_files_only=True)

    def score(query: str, passages: list[str]) -> list[float]:
        scores = model.predict([(query, p) for p in passages], batch_size=batch_size, show_progress_bar=False)
        return [float(s) for s in scores]

    return System(name=f"cross-encoder {checkpoint.name}", scorer=score)


def dev_check(checkpoint: Path, queries: int, cache_dir: Path | None, bi_encoder: bool = False,
              k: int = 30) -> dict[str, dict[str, object]]:
    """MRR@10, NDCG@10 and Recall@k per system on the first ``queries`` English dev queries, and the
    checkpoint's open-set check under ``"open_set"``."""
    task = debian_task("en", "dev", queries)
    cands = bm25_candidates(task, BM25Config(k=k), cache_dir)
    model = cross_encoder_system(checkpoint)
    systems = [bm25_system(), model]
    if bi_encoder:
        systems.append(bi_encoder_system())
    out: dict[str, dict[str, object]] = {}
    for system in systems:
        result = evaluate(system, task, cands, recall_k=k)
        out[result.system] = {**result.metrics, "queries": result.queries,
                              "pairs_per_s": round(result.pairs_per_s, 1) if result.pairs_per_s else None}
        logger.info("dev %s: %s", result.system, out[result.system])
    out["open_set"] = open_set_check(model)
    return out


def most_frequent_top_hit(system: System, queries: Sequence[str], passages: Sequence[str]) -> tuple[str, int]:
    """The passage ranked first for the most queries, and for how many."""
    tops = Counter(order(checked_scores(system, query, list(passages)))[0] for query in queries)
    best, count = tops.most_common(1)[0]
    return passages[best], count


def open_set_check(system: System, queries: int = OPEN_SET_QUERIES) -> dict[str, object]:
    """The first ``queries`` dev synopses whose package is not among the demo passages, against them."""
    from export.demo_passages import demo_line, demo_sample

    sample = demo_sample()
    passages = [demo_line(d) for d in sample]
    shown = {d.package for d in sample}
    picked = [q.text for q in debian_task("en", "dev").queries if q.package not in shown][:queries]
    passage, count = most_frequent_top_hit(system, picked, passages)
    out = {"queries": len(picked), "passages": len(passages), "most_frequent_top_hit": passage[:100],
           "queries_it_tops": count}
    logger.info("open set %s: %s", system.name, out)
    return out
