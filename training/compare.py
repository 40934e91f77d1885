"""Which of several checkpoints ranks the dev split best, and by more than the noise?

    python -m training.compare BASE_CKPT OTHER_CKPT... [--queries 500] [--out compare.json]

Every checkpoint scores the same BM25 top-30 of the first dev queries (PyTorch fp32, at the length
the model is exported with), and each is reported against the first as a paired difference in MRR@10
with its standard error: on 500 queries two recipes a few thousandths apart are within noise, and
only the per-query pairing shows it. This is how recipe changes are judged; the test split is kept
for the one model that is chosen.

All of a checkpoint's pairs are scored in one pass, sorted by length and cut by a token budget as in
training (``training.loop.pair_logits``), so short pairs are not padded to long ones: about twice the
pairs/s of ``CrossEncoder.predict`` query by query on a 2-core CPU. The metrics come from the
evaluation harness, from those scores.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.bm25 import BM25Config
from evaluation.candidates import Candidates, bm25_candidates
from evaluation.harness import CUTOFF, Result, evaluate
from evaluation.scorers import System
from evaluation.tasks import Task, debian_task
from training.config import TrainConfig
from training.default_model import add_cache_dir, parse
from training.loop import pair_logits

logger = logging.getLogger(__name__)

SCORE_TOKEN_BUDGET = 4096  # padded tokens per forward pass when scoring; no backward, so twice training's


@dataclass(frozen=True)
class Checked:
    """One checkpoint's dev result and what its scoring pass cost."""

    checkpoint: Path
    result: Result
    pairs_per_s: float

    @property
    def reciprocal_ranks(self) -> list[float]:
        return [1.0 / r if r is not None and r <= CUTOFF else 0.0 for r in self.result.ranks]


def candidate_pairs(task: Task, candidates: Candidates) -> list[tuple[str, str]]:
    """Every (query, passage) the reranker sees, query by query in BM25 order."""
    return [(q.text, task.corpus[i]) for q, ids in zip(task.queries, candidates.doc_ids, strict=True) for i in ids]


def score_pairs(checkpoint: Path, pairs: Sequence[tuple[str, str]], max_length: int,
                token_budget: int = SCORE_TOKEN_BUDGET) -> tuple[list[float], float]:
    """The checkpoint's raw logits for ``pairs`` (in their order), and the pass's pairs/s."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        scores = pair_logits(model, tokenizer, [q for q, _ in pairs], [p for _, p in pairs], max_length,
                             token_budget).tolist()
    return scores, len(pairs) / (time.perf_counter() - start)


def precomputed_system(name: str, pairs: Sequence[tuple[str, str]], scores: Sequence[float]) -> System:
    """A scorer that looks the harness's (query, passage) pairs up in scores computed beforehand."""
    table = dict(zip(pairs, scores, strict=True))

    def score(query: str, passages: list[str]) -> list[float]:
        return [table[(query, p)] for p in passages]

    return System(name=name, scorer=score, timed=False)


def check(checkpoints: Sequence[Path], queries: int, cache_dir: Path | None,
          max_length: int = TrainConfig.max_length, k: int = TrainConfig.bm25_k) -> list[Checked]:
    """Each checkpoint's result on the first ``queries`` English dev queries' BM25 top ``k``."""
    task = debian_task("en", "dev", queries)
    candidates = bm25_candidates(task, BM25Config(k=k), cache_dir)
    pairs = candidate_pairs(task, candidates)
    out = []
    for checkpoint in checkpoints:
        scores, speed = score_pairs(checkpoint, pairs, max_length)
        result = evaluate(precomputed_system(checkpoint.name, pairs, scores), task, candidates, recall_k=k)
        logger.info("%s: %s, %.0f pairs/s", checkpoint, result.metrics, speed)
        out.append(Checked(checkpoint, result, speed))
    return out


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of ``a - b`` per query and its standard error."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two equal lists of at least 2 values, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    m = sum(diffs) / len(diffs)
    variance = sum((d - m) ** 2 for d in diffs) / (len(diffs) - 1)
    return m, math.sqrt(variance / len(diffs))


def report(checked: Sequence[Checked]) -> list[dict[str, object]]:
    """One row per checkpoint: its metrics, and MRR@10 against the first checkpoint."""
    base = checked[0].reciprocal_ranks
    rows = []
    for c in checked:
        diff, se = paired_difference(c.reciprocal_ranks, base)
        rows.append({"checkpoint": str(c.checkpoint), **c.result.metrics, "queries": c.result.queries,
                     f"MRR@{CUTOFF} vs first": round(diff, 4), "paired SE": round(se, 4),
                     "pairs_per_s": round(c.pairs_per_s, 1)})
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoint folders; the first is the base")
    p.add_argument("--queries", type=int, default=500, help="first N dev queries in hash order")
    p.add_argument("--max-length", type=int, default=TrainConfig.max_length, help="tokens per pair, as exported")
    p.add_argument("--out", type=Path, help="also write the rows as JSON here")
    add_cache_dir(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 on a runtime error (one line on stderr), 2 on a usage error."""
    args = parse(parser(), argv)
    if isinstance(args, int):
        return args
    if args.queries < 2 or args.max_length < 8:
        print("error: --queries must be at least 2 and --max-length at least 8", file=sys.stderr)
        return 2
    missing = [str(c) for c in args.checkpoints if not (c / "config.json").is_file()]
    if missing:
        print(f"error: not a checkpoint folder (no config.json): {', '.join(missing)}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see training.default_model
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        rows = report(check(args.checkpoints, args.queries, args.cache_dir, args.max_length))
    except (OSError, ImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for row in rows:
        print(f"{row['checkpoint']}: MRR@{CUTOFF} {row[f'MRR@{CUTOFF}']:.4f}, "
              f"{row[f'MRR@{CUTOFF} vs first']:+.4f} ± {row['paired SE']:.4f} against the first "
              f"({row['queries']} dev queries, {row['pairs_per_s']:.0f} pairs/s)")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
