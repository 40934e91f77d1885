"""Long-document task from Debian man pages: truncation against MaxP windows.

``python -m evaluation.manpages TEXT_DIR [--model DIR] [--queries N]``

TEXT_DIR holds man pages rendered to plain text (one ``.txt`` per page; ``make eval-longdoc`` downloads
the packages with ``apt-get download``, extracts sections 1 and 8 and renders them with ``man -l``).
The query is the page's NAME line description ("tar - an archiving utility" → "an archiving utility");
the passage is the whole page with its NAME section removed, so the answer is not a copy of the query;
the one relevant passage is the page itself. Candidates: BM25 top 30 over all pages. Each system reranks
the same candidates: "truncate" scores the first max_length tokens of each page, "windows" scores
windows over the page and keeps the best (MaxP). Reports MRR@10, NDCG@10, pairs scored and seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from evaluation.bm25 import BM25Config, top_k
from evaluation.metrics import mean, ndcg, reciprocal_rank

NAME_RE = re.compile(r"^NAME\s*\n(.*?)\n\s*\n", re.M | re.S)


def parse_page(text: str) -> tuple[str, str] | None:
    """(query, passage) from a rendered page, or None if it has no usable NAME line."""
    match = NAME_RE.search(text)
    if not match:
        return None
    name = " ".join(match.group(1).split())
    if " - " not in name:
        return None
    query = name.split(" - ", 1)[1].strip()
    passage = (text[: match.start()] + text[match.end() :]).strip()
    passage = re.sub(r"[ \t]+", " ", passage)
    # help2man pages say "manual page for foo 1.2": not a description, no query.
    if len(query.split()) < 2 or len(passage) < 200 or query.lower().startswith("manual page for"):
        return None
    return query, passage


def load_task(directory: Path) -> tuple[list[str], list[str]]:
    """Queries and passages, one per page; a query shared by several pages is dropped (ambiguous)."""
    pages = [parse_page(p.read_text(encoding="utf-8", errors="replace")) for p in sorted(directory.glob("*.txt"))]
    parsed = [p for p in pages if p is not None]
    counts: dict[str, int] = {}
    for q, _ in parsed:
        counts[q.lower()] = counts.get(q.lower(), 0) + 1
    queries = [q for q, _ in parsed]
    passages = [p for _, p in parsed]
    keep = [i for i, q in enumerate(queries) if counts[q.lower()] == 1]
    return [queries[i] for i in keep], [passages[i] for i in keep]


def run(text_dir: Path, model: str | None, n_queries: int, seed: int, window_options: dict[str, Any],
        threads: int | None) -> dict[str, Any]:
    from reranker_onnx import Reranker

    queries, passages = load_task(text_dir)
    order = random.Random(seed).sample(range(len(queries)), min(n_queries, len(queries)))
    picked = [queries[i] for i in order]
    ids, _ = top_k(passages, picked, "en", BM25Config(k=30))
    systems = {
        "truncate": Reranker(model, threads=threads),
        "windows": Reranker(model, threads=threads, windows=True, **window_options),
    }
    untruncated = systems["windows"].scorer.windower.tokenizer  # truncation off: the pages' real lengths
    lengths = [len(untruncated.encode(p, add_special_tokens=False).ids) for p in passages]
    rows: dict[str, Any] = {
        "pages": len(passages), "queries": len(picked),
        "median_page_tokens": sorted(lengths)[len(lengths) // 2],
        "max_length": systems["truncate"].info.max_length,
        "recall_at_30": mean([float(i in cand) for i, cand in zip(order, ids, strict=True)]),
    }
    bm25_rr = [reciprocal_rank(c, {t}) for t, c in zip(order, ids, strict=True)]
    bm25_ndcg = [ndcg(c, {t}) for t, c in zip(order, ids, strict=True)]
    rows["bm25"] = {"mrr_at_10": mean(bm25_rr), "ndcg_at_10": mean(bm25_ndcg)}
    for name, reranker in systems.items():
        rr, nd, pairs, seconds = [], [], 0, 0.0
        for target, query, cand in zip(order, picked, ids, strict=True):
            start = time.perf_counter()
            scores = reranker.score(query, [passages[i] for i in cand])
            seconds += time.perf_counter() - start
            pairs += _pairs_scored(reranker, query, [passages[i] for i in cand])
            ranking = [c for _, c in sorted(zip(scores, cand, strict=True), key=lambda x: -x[0])]
            rr.append(reciprocal_rank(ranking, {target}))
            nd.append(ndcg(ranking, {target}))
        rows[name] = {"mrr_at_10": mean(rr), "ndcg_at_10": mean(nd), "pairs_scored": pairs, "seconds": round(seconds, 1)}
    return rows


def _pairs_scored(reranker: Any, query: str, passages: list[str]) -> int:
    if reranker.scorer.windower is None:
        return len(passages)
    return len(reranker.scorer.windower.expand([(query, p) for p in passages])[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.manpages", description=__doc__.splitlines()[0])
    p.add_argument("text_dir", type=Path)
    p.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    p.add_argument("--queries", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--max-windows", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("results/eval/manpages.json"))
    args = p.parse_args(argv)
    result = run(args.text_dir, args.model, args.queries, args.seed,
                 {"stride": args.stride, "max_windows": args.max_windows}, args.threads)
    result["windows_options"] = {"stride": args.stride or "half a window", "max_windows": args.max_windows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
