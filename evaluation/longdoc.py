"""``python -m evaluation.longdoc``: the long-document task, truncation against MaxP windows (issue 23).

Built from the pinned, sha256-checked man pages of ``evaluation/sources/manpages.py`` (the packages of
the "manpages" domain; apt fetches them once, everything after is offline): the query is a page's NAME
summary ("open and possibly create a file"), the passage the whole page without its NAME section, the
one relevant passage the page itself. A summary shared by several pages is dropped (no single answer);
queries come from the pages whose name hashes to the test split (evaluation/split.py), so a model
trained on the domain's train split never saw them. Candidates: BM25 top 30 over all pages. Each system
reranks the same candidates: "truncate" scores the first max_length tokens of each page, "windows"
every window and keeps the best (MaxP). Reports MRR@10, NDCG@10, pairs scored and seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from evaluation.bm25 import BM25Config, top_k
from evaluation.metrics import mean, ndcg, reciprocal_rank
from evaluation.sources.manpages import PACKAGES, ManPage, man_pages
from evaluation.split import assign

MIN_PAGE_CHARS = 200  # a page this short has nothing to rerank on


def load_task(pages: list[ManPage]) -> tuple[list[str], list[str], list[int]]:
    """Queries, passages (one per usable page) and the passage index of each test-split query."""
    usable = [p for p in pages if p.summary and p.names and len(p.text) >= MIN_PAGE_CHARS]
    counts: dict[str, int] = {}
    for p in usable:
        counts[p.summary.lower()] = counts.get(p.summary.lower(), 0) + 1
    picked = [i for i, p in enumerate(usable) if counts[p.summary.lower()] == 1 and assign(p.names[0]) == "test"]
    return [usable[i].summary for i in picked], [p.text for p in usable], picked


def run(model: str | None, n_queries: int, seed: int, window_options: dict[str, Any], threads: int | None,
        cache: Path | None = None) -> dict[str, Any]:
    from reranker_onnx import Reranker

    queries, passages, targets = load_task(man_pages(cache))
    sample = sorted(random.Random(seed).sample(range(len(queries)), min(n_queries, len(queries))))
    picked, order = [queries[i] for i in sample], [targets[i] for i in sample]
    ids, _ = top_k(passages, picked, "en", BM25Config(k=30))
    systems = {
        "truncate": Reranker(model, threads=threads),
        "windows": Reranker(model, threads=threads, windows=True, **window_options),
    }
    windower = systems["windows"].scorer.windower
    lengths = sorted(len(windower.tokenizer.encode(p, add_special_tokens=False).ids) for p in passages)  # untruncated
    result: dict[str, Any] = {
        "packages": [{"package": d.package, "version": d.version, "sha256": d.sha256} for d in PACKAGES],
        "pages": len(passages), "test_queries": len(queries), "queries": len(picked), "seed": seed,
        "median_page_tokens": lengths[len(lengths) // 2],
        "max_length": systems["truncate"].info.max_length,
        "recall_at_30": mean([float(t in c) for t, c in zip(order, ids, strict=True)]),
        "bm25": {"mrr_at_10": mean([reciprocal_rank(c, {t}) for t, c in zip(order, ids, strict=True)]),
                 "ndcg_at_10": mean([ndcg(c, {t}) for t, c in zip(order, ids, strict=True)])},
    }
    for name, reranker in systems.items():
        rr, nd, pairs, seconds = [], [], 0, 0.0
        for target, query, cand in zip(order, picked, ids, strict=True):
            texts = [passages[i] for i in cand]
            start = time.perf_counter()
            scores = reranker.score(query, texts)
            seconds += time.perf_counter() - start
            pairs += len(windower.expand([(query, t) for t in texts])[0]) if name == "windows" else len(texts)
            ranking = [c for _, c in sorted(zip(scores, cand, strict=True), key=lambda x: -x[0])]
            rr.append(reciprocal_rank(ranking, {target}))
            nd.append(ndcg(ranking, {target}))
        result[name] = {"mrr_at_10": mean(rr), "ndcg_at_10": mean(nd), "pairs_scored": pairs,
                        "seconds": round(seconds, 1)}
    result["windows_options"] = {"window": windower.window, "stride": window_options.get("stride") or "half a window",
                                 "max_windows": windower.max_windows}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.longdoc", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=None, help="tokens per window (default: max length)")
    p.add_argument("--stride", type=int, default=None, help="passage tokens between windows (default: half a window)")
    p.add_argument("--max-windows", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("results/eval/longdoc.json"))
    args = p.parse_args(argv)
    options = {"window": args.window, "stride": args.stride, "max_windows": args.max_windows}
    result = run(args.model, args.queries, args.seed, options, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
