"""A quick dev-split check of a trained checkpoint, through the evaluation harness.

The checkpoint is scored with sentence-transformers ``CrossEncoder.predict`` (the reference the
export stage reproduces), on the BM25 top-30 of the first dev queries in hash order, beside BM25
itself and, if asked, the all-MiniLM-L6-v2 bi-encoder. It is a sanity check while training; the
quality bar is measured on the test split with ``python -m evaluation`` after export.
"""

from __future__ import annotations

import logging
from pathlib import Path

from evaluation.bm25 import BM25Config
from evaluation.candidates import bm25_candidates
from evaluation.harness import evaluate
from evaluation.scorers import System, bi_encoder_system, bm25_system
from evaluation.tasks import debian_task

logger = logging.getLogger(__name__)


def cross_encoder_system(checkpoint: Path, batch_size: int = 32) -> System:
    """The checkpoint as sentence-transformers loads it: its own activation and max length."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), device="cpu", local_files_only=True)

    def score(query: str, passages: list[str]) -> list[float]:
        scores = model.predict([(query, p) for p in passages], batch_size=batch_size, show_progress_bar=False)
        return [float(s) for s in scores]

    return System(name=f"cross-encoder {checkpoint.name}", scorer=score)


def dev_check(checkpoint: Path, queries: int, cache_dir: Path | None, bi_encoder: bool = False,
              k: int = 30) -> dict[str, dict[str, float]]:
    """MRR@10, NDCG@10 and Recall@k per system on the first ``queries`` English dev queries."""
    task = debian_task("en", "dev", queries)
    cands = bm25_candidates(task, BM25Config(k=k), cache_dir)
    systems = [bm25_system(), cross_encoder_system(checkpoint)]
    if bi_encoder:
        systems.append(bi_encoder_system())
    out: dict[str, dict[str, float]] = {}
    for system in systems:
        result = evaluate(system, task, cands, recall_k=k)
        out[result.system] = {**result.metrics, "queries": result.queries,
                              "pairs_per_s": round(result.pairs_per_s, 1) if result.pairs_per_s else None}
        logger.info("dev %s: %s", result.system, out[result.system])
    return out
