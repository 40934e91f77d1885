"""Where a reranker-onnx call of one query × 100 passages spends its time.

Two views, in a fresh worker process after a warm-up call:

* a stage split with plain clocks, walking the named steps of the Reranker's ``Scorer`` (input
  checks, tokenization, batch building, ``session.run``, activation), median over repeats, next to the
  time of the real ``score()`` call, so the split's sum can be checked against it;
* cProfile over the real call: the functions with the most own time.

Every stage is a public step: ``Reranker.pairs`` (the input checks), then the Scorer's.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

import numpy as np

from . import stats


def _stages(reranker: Any, query: str, passages: list[str]) -> dict[str, float]:
    scorer = reranker.scorer
    t = {}
    start = time.perf_counter()
    pairs = reranker.pairs(query, passages)
    t["input checks"] = time.perf_counter() - start

    start = time.perf_counter()
    encoded = scorer.encode(pairs)
    t["tokenization"] = time.perf_counter() - start

    start = time.perf_counter()
    batches = list(scorer.batches(encoded))
    t["batch building (sort, pad, int64 arrays)"] = time.perf_counter() - start

    start = time.perf_counter()
    outputs = [scorer.run(scorer.feed(batch)) for batch in batches]
    t["inference (session.run)"] = time.perf_counter() - start

    start = time.perf_counter()
    logits = np.empty(len(pairs), dtype=np.float32)
    for batch, out in zip(batches, outputs):
        logits[batch.rows] = out
    scorer.activate(logits)
    t["activation and list"] = time.perf_counter() - start
    t["batches"] = len(batches)
    t["padded_tokens"] = int(sum(b.input_ids.size for b in batches))
    t["real_tokens"] = int(sum(int(b.attention_mask.sum()) for b in batches))
    return t


def task_profile(spec: dict) -> dict:
    import json
    from pathlib import Path

    from reranker_onnx import Reranker

    workload = json.loads(Path(spec["workload"]).read_text(encoding="utf-8"))
    group = workload["groups"][0]
    query, passages = group["query"], group["passages"]
    reranker = Reranker(spec["model"]["runtime_dir"])
    reranker.score(query, passages)  # warm-up

    whole, splits = [], []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        reranker.score(query, passages)
        whole.append(time.perf_counter() - start)
        splits.append(_stages(reranker, query, passages))
    split = {k: stats.median([s[k] for s in splits]) for k in splits[0]}

    profiler = cProfile.Profile()
    profiler.enable()
    reranker.score(query, passages)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    top = [line for line in text.getvalue().splitlines() if line.strip()]
    return {"passages": len(passages), "score_call_s": stats.median(whole), "split_s": split,
            "cprofile_top_tottime": top[-14:], "variant": reranker.info.variant, "threads": reranker.info.threads,
            "token_budget": reranker.scorer.batching.token_budget}
