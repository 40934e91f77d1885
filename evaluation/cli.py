"""``python -m evaluation``: BM25, the bi-encoder baseline and any exported model on the Debian tasks."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# Sample sizes: 15,000 and 9,000 pairs at k=30; the standard error of MRR@10 is then about 0.02 (measured).
DEFAULT_QUERIES = {"en": 500, "ja": 300, "domain": 500}
DOMAIN_NAMES = ("manpages", "foldoc", "wordnet", "faq")  # evaluation.sources.domains.DOMAINS, without importing it


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Rerank BM25 candidates of the Debian description tasks and the other English domains "
        "(man pages, FOLDOC, WordNet, FAQs); write report.md/.json/.png.",
    )
    p.add_argument("--model", nargs="+", default=[], metavar="DIR_OR_NAME", help="exported model directories")
    p.add_argument("--variant", nargs="+", default=[], help="variants to run per model (default: the runtime's choice)")
    p.add_argument("--lang", nargs="+", choices=["en", "ja"], default=["en", "ja"])
    p.add_argument("--domain", nargs="*", choices=DOMAIN_NAMES, default=list(DOMAIN_NAMES),
                   help="English domains beyond Debian, from pinned Debian packages (needs apt-get)")
    p.add_argument("--queries-domain", type=int, default=DEFAULT_QUERIES["domain"],
                   help="first N queries of each domain's split, in hash order")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test")
    p.add_argument("--queries-en", type=int, default=DEFAULT_QUERIES["en"], help="first N queries in hash order")
    p.add_argument("--queries-ja", type=int, default=DEFAULT_QUERIES["ja"], help="first N queries in hash order")
    p.add_argument("--k", type=int, default=30, help="BM25 candidates per query")
    p.add_argument("--no-bi-encoder", action="store_true", help="skip the all-MiniLM-L6-v2 baseline")
    p.add_argument("--no-default", action="store_true", help="skip the default model bundled in the package")
    p.add_argument("--out", type=Path, default=Path("results/eval"))
    p.add_argument("--cache-dir", type=Path, default=Path("results/cache"), help="BM25 candidate cache")
    p.add_argument("--no-cache", action="store_true")
    return p


def _run(args: argparse.Namespace) -> str:
    from evaluation.bm25 import BM25Config
    from evaluation.candidates import bm25_candidates
    from evaluation.harness import run
    from evaluation.report import write
    from evaluation.scorers import bi_encoder_system, bm25_system, reranker_system
    from evaluation.sources.domains import domain_task
    from evaluation.tasks import debian_task
    from reranker_onnx.store import default_model

    config = BM25Config(k=args.k)
    systems = [bm25_system()]
    if not args.no_bi_encoder:
        systems.append(bi_encoder_system())
    models = list(args.model)
    if not args.no_default and default_model() is not None:
        models.insert(0, str(default_model()))  # the row every other model is read against
    systems += [reranker_system(m, v) for m in models for v in (args.variant or [None])]
    sizes = {"en": args.queries_en, "ja": args.queries_ja}
    cache = None if args.no_cache else args.cache_dir
    tasks = []
    for lang in args.lang:
        task = debian_task(lang, args.split, sizes[lang])
        tasks.append((task, bm25_candidates(task, config, cache)))
    for name in args.domain:
        task = domain_task(name, args.split, args.queries_domain)
        tasks.append((task, bm25_candidates(task, config, cache)))
    results = run(tasks, systems, recall_k=config.k)
    paths = write(args.out, results, tasks, config)
    return paths["md"].read_text(encoding="utf-8") + "\n" + "\n".join(f"wrote {p}" for p in paths.values())


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 on a runtime error (one line on stderr), 2 on a usage error."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse has already printed the usage error
        return int(exc.code or 0)
    if min(args.queries_en, args.queries_ja, args.queries_domain, args.k) < 1:
        print("error: --queries-en, --queries-ja, --queries-domain and --k must be at least 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from reranker_onnx.errors import RerankerError

    start = time.perf_counter()
    try:
        text = _run(args)
    except (OSError, ImportError, ValueError, RuntimeError, RerankerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text)
    print(f"wall time {time.perf_counter() - start:.0f} s")
    return 0
