"""BM25 candidates per query, cached on disk so that a rerun only pays for the rerankers.

The cache key covers everything the candidates depend on: the task's content hash (corpus and
sampled queries), the BM25 parameters, the tokenizer version and the bm25s and PyStemmer versions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from evaluation.bm25 import TOKENIZER_VERSION, BM25Config, top_k
from evaluation.tasks import Task
from export.versions import tool_versions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidates:
    doc_ids: tuple[tuple[int, ...], ...]  # [n_queries][k] corpus indices, best first
    scores: tuple[tuple[float, ...], ...]  # [n_queries][k] BM25 scores
    seconds: float  # wall time of indexing + retrieval when they were computed
    cached: bool  # True when read from the cache


def cache_key(task: Task, config: BM25Config) -> str:
    """sha256 of everything the candidates depend on."""
    parts = {
        "task": task.fingerprint(),
        "lang": task.lang,
        "bm25": asdict(config),
        "tokenizer": TOKENIZER_VERSION,
        "versions": tool_versions(("bm25s", "PyStemmer")),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is meant to be shared
    os.replace(tmp, path)


def _frozen(ids: list[list[int]], scores: list[list[float]], seconds: float, cached: bool) -> Candidates:
    return Candidates(tuple(map(tuple, ids)), tuple(map(tuple, scores)), seconds, cached)


def bm25_candidates(task: Task, config: BM25Config, cache_dir: Path | None = None) -> Candidates:
    """The top ``config.k`` passages per query, from ``cache_dir`` when a matching entry exists."""
    path = cache_dir / f"bm25-{task.name}-{cache_key(task, config)[:20]}.json" if cache_dir else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["qids"] == [q.qid for q in task.queries]:
            logger.info("%s: BM25 candidates from cache %s", task.name, path)
            return _frozen(data["doc_ids"], data["scores"], data["seconds"], cached=True)
        logger.warning("%s: cache entry %s does not match the task's queries; recomputing", task.name, path)
    start = time.perf_counter()
    ids, scores = top_k(task.corpus, [q.text for q in task.queries], task.lang, config)
    seconds = time.perf_counter() - start
    logger.info("%s: BM25 over %d passages for %d queries in %.1f s", task.name, len(task.corpus), len(ids), seconds)
    if path is not None:
        payload = {"qids": [q.qid for q in task.queries], "doc_ids": ids, "scores": scores, "seconds": seconds}
        _write_atomic(path, json.dumps(payload))
    return _frozen(ids, scores, seconds, cached=False)
