"""Rerank each query's BM25 candidates with a system and measure ranking quality and throughput."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from evaluation.candidates import Candidates
from evaluation.metrics import mean, ndcg, pairs_per_second, recall, reciprocal_rank
from evaluation.scorers import System
from evaluation.tasks import Task

logger = logging.getLogger(__name__)

CUTOFF = 10  # MRR@10 and NDCG@10
PROGRESS_EVERY = 100  # queries between progress lines: a slow reranker takes minutes per language


class ScorerError(ValueError):
    """A scorer that broke the contract: wrong number of scores, or a score that is not finite."""


@dataclass(frozen=True)
class Result:
    system: str
    task: str
    lang: str
    queries: int
    metrics: dict[str, float]  # "MRR@10", "NDCG@10", "Recall@<k>"
    pairs: int
    seconds: float  # wall time inside the scorer (excluding the warm-up call)
    cpu_seconds: float  # CPU time of this process (all threads) in the same calls: steadier on a busy host
    pairs_per_s: float | None  # None for systems that are not timed (BM25)
    ranks: tuple[int | None, ...]  # per query: 1-based rank of the relevant passage, None if not a candidate


def order(scores: Sequence[float]) -> list[int]:
    """Positions by descending score; ties keep the incoming (BM25) order, so results are deterministic."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def checked_scores(system: System, query: str, passages: list[str]) -> list[float]:
    """The system's scores for ``passages``; a ScorerError if it returns the wrong number or a non-finite one."""
    scores = [float(s) for s in system.scorer(query, passages)]
    if len(scores) != len(passages):
        raise ScorerError(f"{system.name} returned {len(scores)} scores for {len(passages)} passages")
    if not all(math.isfinite(s) for s in scores):
        raise ScorerError(f"{system.name} returned a non-finite score for query {query!r}")
    return scores


def evaluate(system: System, task: Task, candidates: Candidates, recall_k: int = 30) -> Result:
    """Score every query's candidates, reorder them, and average the per-query metrics.

    One untimed warm-up call comes first, so one-off costs (thread pools, first allocations) do
    not count against pairs/s.
    """
    if len(candidates.doc_ids) != len(task.queries):
        raise ValueError(f"{len(candidates.doc_ids)} candidate lists for {len(task.queries)} queries")
    if not task.queries:
        raise ValueError(f"{task.name} has no queries to evaluate")
    first = task.queries[0]
    checked_scores(system, first.text, [task.corpus[i] for i in candidates.doc_ids[0]])

    rr: list[float] = []
    nd: list[float] = []
    rc: list[float] = []
    ranks: list[int | None] = []
    pairs, seconds, cpu_seconds = 0, 0.0, 0.0
    for n, (q, ids) in enumerate(zip(task.queries, candidates.doc_ids, strict=True), start=1):
        if n % PROGRESS_EVERY == 0:
            logger.info("%s on %s: %d/%d queries, %.0f s", system.name, task.name, n, len(task.queries), seconds)
        passages = [task.corpus[i] for i in ids]
        start, cpu_start = time.perf_counter(), time.process_time()
        scores = checked_scores(system, q.text, passages)
        seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        pairs += len(passages)
        ranking = [ids[j] for j in order(scores)]
        relevant = {q.relevant}
        rr.append(reciprocal_rank(ranking, relevant, CUTOFF))
        nd.append(ndcg(ranking, relevant, CUTOFF))
        rc.append(recall(ranking, relevant, recall_k))
        ranks.append(ranking.index(q.relevant) + 1 if q.relevant in ranking else None)
    metrics = {f"MRR@{CUTOFF}": mean(rr), f"NDCG@{CUTOFF}": mean(nd), f"Recall@{recall_k}": mean(rc)}
    throughput = pairs_per_second(pairs, seconds) if system.timed and seconds > 0 else None
    logger.info("%s on %s: %s, %s pairs/s", system.name, task.name, metrics, throughput)
    return Result(
        system=system.name,
        task=task.name,
        lang=task.lang,
        queries=len(task.queries),
        metrics=metrics,
        pairs=pairs,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        pairs_per_s=throughput,
        ranks=tuple(ranks),
    )


def run(tasks: Sequence[tuple[Task, Candidates]], systems: Sequence[System], recall_k: int = 30) -> list[Result]:
    """Every system on every task, tasks outermost (so a report can be read language by language)."""
    return [evaluate(system, task, cands, recall_k) for task, cands in tasks for system in systems]
