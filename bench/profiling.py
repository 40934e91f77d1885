"""Where a reranker-onnx call of one query × 100 passages spends its time.

Two views, in a fresh worker process after a warm-up call:

* a stage split with plain clocks, walking the same steps ``Reranker._score_pairs`` takes (input
  checks, tokenization, batch building, ``session.run``, activation), median over repeats, next to the
  time of the real ``score()`` call, so the split's sum can be checked against it;
* cProfile over the real call: the functions with the most own time.

The split reaches into the runtime's private steps on purpose: it measures, it does not change them.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

from . import stats


def _stages(reranker: Any, query: str, passages: list[str]) -> dict[str, float]:
    import numpy as np

    from reranker_onnx.batching import make_batches
    from reranker_onnx.reranker import _check_passages, _check_text

    t = {}
    start = time.perf_counter()
    _check_text(query, "query")
    texts = _check_passages(passages)
    reranker.encoder.query_tokens(query)
    pairs = [(query, p) for p in texts]
    t["input checks"] = time.perf_counter() - start

    start = time.perf_counter()
    encoded = reranker.encoder.encode(pairs)
    t["tokenization"] = time.perf_counter() - start

    start = time.perf_counter()
    batches = list(make_batches(encoded, reranker.encoder.pad_id, reranker.token_budget, reranker.max_rows))
    t["batch building (sort, pad, int64 arrays)"] = time.perf_counter() - start

    logits = np.empty(len(pairs), dtype=np.float32)
    start = time.perf_counter()
    for batch in batches:
        feed = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                "token_type_ids": batch.token_type_ids}
        (out,) = reranker.session.run([reranker.manifest.output], {k: feed[k] for k in reranker.input_names})
        logits[batch.rows] = out.reshape(len(batch.rows), -1)[:, 0]
    t["inference (session.run)"] = time.perf_counter() - start

    start = time.perf_counter()
    logits.tolist()
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
            "cprofile_top_tottime": top[-14:], "variant": reranker.variant, "threads": reranker.threads,
            "token_budget": reranker.token_budget}
