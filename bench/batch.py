"""``python -m bench.batch``: ``rerank-onnx batch`` in one process and on Ray (1 and 2 actors).

The workload is real: Debian package synopses as queries, each with its own long description and
others drawn at random as candidates (nested rows), scored by the bundled default model with the
variant this CPU picks. Every configuration runs in a fresh process, round-robin, ``--repeats`` times;
the table gives medians. Ray's start (``ray.init``) is timed apart; actor start-up and model shipping
are inside the job's time, as a user pays them. Peak memory is each worker's own peak RSS (the
process for the local engine, each actor on Ray). Writes ``results/bench/batch.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {  # name: (engine, actors, threads per worker)
    "local, 1 thread": ("local", None, 1),
    "local, 2 threads": ("local", None, 2),
    "ray, 1 actor × 1 thread": ("ray", 1, 1),
    "ray, 1 actor × 2 threads": ("ray", 1, 2),
    "ray, 2 actors × 1 thread": ("ray", 2, 1),
}
SHARD_BYTES = 24 << 10  # about 3 rows of 10 Debian descriptions: 10 shards for the default workload


def write_workload(path: Path, queries: int, candidates: int, seed: int = 0) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from export.debian import read_descriptions

    docs = [d for d in read_descriptions("en") if d.body.strip()]
    rng = random.Random(seed)
    picked = rng.sample(docs, queries)
    with path.open("w", encoding="utf-8") as f:
        for i, doc in enumerate(picked):
            others = rng.sample(docs, candidates - 1)
            texts = [doc.body, *(o.body for o in others)]
            rng.shuffle(texts)
            row = {"id": i, "query": doc.synopsis, "candidates": [{"id": j, "text": t} for j, t in enumerate(texts)]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return queries * candidates


def run_one(name: str, source: str, output: str) -> dict:
    """One configuration, in this (fresh) process."""
    from reranker_onnx.batch import BatchJob, Limits, run_batch
    from reranker_onnx.batch.work import peak_rss

    engine, actors, threads = CONFIGS[name]
    ray_init = 0.0
    if engine == "ray":
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_init = time.perf_counter() - started
    # Small shards, so that 2 actors share a small workload (the default is sized for long jobs).
    job = BatchJob(source, output, threads=threads, limits=Limits(shard_bytes=SHARD_BYTES))
    report = run_batch(job, engine=engine, actors=actors, progress=False)
    return {
        "pairs": report.pairs, "seconds": report.seconds, "ray_init_s": ray_init, "variant": report.variant,
        "first_shard_s": report.first_shard_s, "first_shard_pairs": report.first_shard_pairs,
        "worker_peak_rss_mib": sorted(round(v / 2**20) for pid, v in report.peak_rss.items() if pid != os.getpid()),
        "driver_peak_rss_mib": round(peak_rss() / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(args.one, args.source, str(Path(tmp) / "out.jsonl"))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.jsonl"
        pairs = write_workload(source, args.queries, args.candidates)
        runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for repeat in range(args.repeats):
            for name in CONFIGS:
                out = subprocess.run([sys.executable, "-m", "bench.batch", "--one", name, "--source", str(source)],
                                     check=True, capture_output=True, text=True).stdout
                runs[name].append(json.loads(out.strip().splitlines()[-1]))
                print(f"[{repeat + 1}/{args.repeats}] {name}: {pairs / runs[name][-1]['seconds']:.0f} pairs/s", file=sys.stderr)
    write_report(Path(args.out), runs, pairs, args)


def write_report(out: Path, runs: dict[str, list[dict]], pairs: int, args: argparse.Namespace) -> None:
    rate = {name: statistics.median(pairs / r["seconds"] for r in rs) for name, rs in runs.items()}
    # After the first shard is written: the rate once the model is loaded and the actors are up.
    steady = {name: statistics.median((pairs - r["first_shard_pairs"]) / (r["seconds"] - r["first_shard_s"]) for r in rs)
              for name, rs in runs.items()}
    rows = []
    for name, rs in runs.items():
        workers = max(max(r["worker_peak_rss_mib"] or [r["driver_peak_rss_mib"]]) for r in rs)
        rows.append(f"| {name} | {rate[name]:.1f} | {rate[name] / rate['local, 2 threads']:.2f} | "
                    f"{steady[name]:.1f} | {steady[name] / steady['local, 2 threads']:.2f} | "
                    f"{statistics.median(r['first_shard_s'] for r in rs):.1f} | "
                    f"{statistics.median(r['ray_init_s'] for r in rs):.1f} | {workers} | "
                    f"{max(r['driver_peak_rss_mib'] for r in rs)} |")
    overhead = 1 - rate["ray, 2 actors × 1 thread"] / rate["local, 2 threads"]
    overhead_steady = 1 - steady["ray, 2 actors × 1 thread"] / steady["local, 2 threads"]
    md = "\n".join([
        "# rerank-onnx batch: one process against Ray",
        "",
        f"{pairs:,} pairs ({args.queries} Debian synopses × {args.candidates} descriptions), the bundled default model "
        f"({runs['local, 2 threads'][0]['variant']}), 2 CPUs, medians of {args.repeats} fresh-process runs, "
        f"host shared with other jobs (contended). Times include actor start-up and model shipping, not `ray.init`.",
        "",
        "| configuration | pairs/s, whole job | vs local, 2 threads | pairs/s after the first shard | vs local, 2 threads "
        "| first shard s | ray.init s | peak RSS per worker MiB | driver peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Ray's overhead at equal cores (2 actors × 1 thread against one process with 2 threads): {overhead:.0%} of "
        f"the whole job's rate, {overhead_steady:.0%} once the actors are up.",
        "",
    ])
    out.mkdir(parents=True, exist_ok=True)
    (out / "batch.md").write_text(md, encoding="utf-8")
    (out / "batch.json").write_text(json.dumps({"pairs": pairs, "runs": runs, "pairs_per_s": rate, "steady_pairs_per_s": steady}, indent=1), encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
