"""How high MRR@10 can go when the candidates hold near-copies of the relevant passage.

Debian descriptions come in families: ``libfoo1``, ``libfoo-dev`` and ``libfoo-doc`` often share all but
a sentence, and a one-line synopsis may not say which one it means. Per query, this counts the
candidates whose term sets (the BM25 tokenizer's: stemmed English words, Japanese character bigrams)
overlap the relevant passage's by at least a Jaccard threshold, and reports the MRR@10 of a reranker
that puts the relevant passage and those near-copies first but cannot order them: a ceiling for any
model that cannot tell near-copies apart, to read the project's quality bars against.

    python -m evaluation.ceiling [--lang en] [--split test] [--queries 500] [--threshold 0.95 0.9 0.8]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from evaluation.bm25 import TOKENIZERS, BM25Config
from evaluation.candidates import Candidates, bm25_candidates
from evaluation.tasks import Task, debian_task


def tied_reciprocal_rank(near_copies: int, k: int = 10) -> float:
    """Expected RR@k of the relevant passage placed uniformly at random among itself and
    ``near_copies`` others at the top of the ranking."""
    tied = near_copies + 1
    return sum(1.0 / rank for rank in range(1, min(tied, k) + 1)) / tied


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def ceiling(task: Task, candidates: Candidates, threshold: float, k: int = 10) -> dict[str, float | int]:
    """MRR@k of the best reranker that ties near-copies, and how many queries have any."""
    needed = sorted({q.relevant for q in task.queries} | {i for ids in candidates.doc_ids for i in ids})
    terms = dict(zip(needed, (frozenset(t) for t in TOKENIZERS[task.lang]([task.corpus[i] for i in needed])),
                     strict=True))
    total, with_copies = 0.0, 0
    for query, ids in zip(task.queries, candidates.doc_ids, strict=True):
        if query.relevant not in ids:
            continue  # the first stage missed it: no reranker recovers it
        relevant = terms[query.relevant]
        copies = sum(1 for i in ids if i != query.relevant and jaccard(relevant, terms[i]) >= threshold)
        with_copies += copies > 0
        total += tied_reciprocal_rank(copies, k)
    return {"threshold": threshold, "queries": len(task.queries), "queries_with_near_copies": with_copies,
            f"mrr_at_{k}_ceiling": total / len(task.queries)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--lang", choices=sorted(TOKENIZERS), default="en")
    p.add_argument("--split", choices=("train", "dev", "test"), default="test")
    p.add_argument("--queries", type=int, default=500, help="first N queries in hash order, as make eval")
    p.add_argument("--threshold", type=float, nargs="+", default=[0.95, 0.9, 0.8])
    p.add_argument("--cache-dir", type=Path, default=Path("results/cache"), help="BM25 candidate cache")
    args = p.parse_args(argv)
    task = debian_task(args.lang, args.split, args.queries)
    candidates = bm25_candidates(task, BM25Config(), args.cache_dir)
    print(f"{task.name} {args.split}, {len(task.queries)} queries, BM25 top {len(candidates.doc_ids[0])}")
    for threshold in args.threshold:
        row = ceiling(task, candidates, threshold)
        print(f"  near-copies at Jaccard >= {threshold}: {row['queries_with_near_copies']} queries have some; "
              f"MRR@10 ceiling if they tie: {row['mrr_at_10_ceiling']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
