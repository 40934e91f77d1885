"""``python -m bench.long_context``: JinaBERT at 512-8,192 tokens, full attention graph against blocked.

Takes the full-size jina-reranker-v1-tiny-en replica (testing/replicas.py: upstream's config, 4 layers, 384
hidden, 12 heads, vocab 61,056, seeded random weights: no claim about the real model's scores; ``--size
small`` for a smoke run), exports the old graph (full attention, ``attention_block=None``) and the new one
(query blocks), quantizes each for this CPU, and measures one pair per length in ``--points`` fresh,
nice'd processes: latency (median over every process's timed runs, after one untimed warm-up run up to
2,048 tokens) and the peak RSS of the whole process (the child's VmHWM; median over the processes, with
the spread). One process per point is noise on a shared host: the 512-token rows of single runs were off
by 3-4x. Each old-graph run is capped by RLIMIT_AS so a graph that needs more than the cap fails in its
process instead of swapping the host. The logits show the fp32 agreement of the two graphs.

Writes results/bench/long_context.{json,md} after every point, merging with the rows already there
(keyed by graph, length, block and size) of the same replica code, so an interrupted or partial run
(``--lengths 4096``) adds to the table instead of replacing it; rows of older graphs are dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import statistics
import time
from pathlib import Path
from typing import Any

LENGTHS = (512, 2048, 4096, 8192)
GRAPHS = ("full fp32", "blocked fp32", "full int8", "blocked int8")
JINA = "jina-reranker-v1-tiny-en"
VOCAB = 61056
CAP_BYTES = 8 << 30  # address-space cap per measuring process


def build_graphs(cache: Path, block: int, size: str = "full") -> dict[str, Path]:
    """The jina replica (testing/replicas.py, seeded random weights) as full and blocked graphs."""
    from export import quantize as q
    from export.jinabert import export_onnx
    from testing import replicas

    root = cache / f"{replicas.key()}-{size}-b{block}"
    graphs = {
        "full fp32": root / "full.onnx",
        "blocked fp32": root / "blocked.onnx",
        "full int8": root / "full_int8.onnx",
        "blocked int8": root / "blocked_int8.onnx",
    }
    if all(p.is_file() for p in graphs.values()):
        return graphs
    model = replicas._model(JINA, size, seed=0).eval()
    export_onnx(model, graphs["full fp32"], attention_block=None)
    export_onnx(model, graphs["blocked fp32"], attention_block=block)
    for kind in ("full", "blocked"):
        q.quantize(graphs[f"{kind} fp32"], graphs[f"{kind} int8"], q.AVX512_VNNI, quantize_embeddings=False)
    return graphs


# ---------------------------------------------------------------- the measuring child


def _child(graph: str, length: int, repeats: int, threads: int, vocab: int, warmup: int = 0) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from .worker import status_kb  # VmHWM, not ru_maxrss, which Linux carries across exec (procs.py)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    loaded = status_kb("VmHWM") * 1024
    rng = np.random.default_rng(length)
    arrays = {
        "input_ids": rng.integers(5, vocab, (1, length), dtype=np.int64),
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "token_type_ids": np.zeros((1, length), dtype=np.int64),
    }
    feed = {i.name: arrays[i.name] for i in session.get_inputs()}  # an export may drop token_type_ids
    for _ in range(warmup):  # the first run grows the arena and wakes the threads
        session.run(None, feed)
    times, logit = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        logit = session.run(None, feed)[0]
        times.append(time.perf_counter() - start)
    return {
        "times": times,
        "loaded_rss": loaded,
        "peak_rss": status_kb("VmHWM") * 1024,
        "logit": float(logit.ravel()[0]),
    }


def measure(graph: Path, length: int, repeats: int, threads: int, vocab: int, cap: int | None,
            warmup: int = 0) -> dict[str, Any]:
    """One child process: its timed runs, loaded and peak RSS (bytes), or the error it died with."""
    code = (
        "import json,sys,resource\n"
        f"cap={cap!r}\n"
        "if cap: resource.setrlimit(resource.RLIMIT_AS,(cap,cap))\n"
        "from bench.long_context import _child\n"
        f"print(json.dumps(_child({str(graph)!r},{length},{repeats},{threads},{vocab},{warmup})))\n"
    )
    proc = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-c", code], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": last[:200], "cap": cap}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def point(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from the processes of a point: medians, with the spread of peak RSS.
    A point whose every process failed is a failure; one that failed only sometimes says how often."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {**runs[0], "points": len(runs)}
    peaks = [r["peak_rss"] for r in ok]
    return {
        "seconds": statistics.median(t for r in ok for t in r["times"]),
        "peak_rss": statistics.median(peaks),
        "peak_rss_spread": [min(peaks), max(peaks)],
        "loaded_rss": statistics.median(r["loaded_rss"] for r in ok),
        "logit": ok[0]["logit"],
        "points": len(ok),
        **({"failed_points": len(runs) - len(ok)} if len(ok) < len(runs) else {}),
    }


def merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by size, length and graph (the new replacing the old of the same graph, length, block, size)."""
    key = lambda r: (r.get("size", "full"), r["block"] or 0, r["length"], r["graph"])  # noqa: E731
    rows = {key(r): r for r in old}
    rows.update({key(r): r for r in new})
    order = {g: i for i, g in enumerate(GRAPHS)}
    return sorted(rows.values(), key=lambda r: (key(r)[0], r["length"], order.get(r["graph"], len(order)), key(r)[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.long_context", description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    p.add_argument("--graphs", default=",".join(GRAPHS))
    p.add_argument("--block", type=int, default=None, help="queries per attention block (default: the export's)")
    p.add_argument("--size", choices=("full", "small"), default="full", help="replica size (small: a smoke run)")
    p.add_argument("--points", type=int, default=3, help="fresh processes per (graph, length)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per process (one past 2,048 tokens)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cap", type=float, default=CAP_BYTES / (1 << 30), help="GB of address space per run")
    p.add_argument("--cache", type=Path, default=Path(".cache/bench/long-context"))
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    args = p.parse_args(argv)
    from export.jinabert import DEFAULT_ATTENTION_BLOCK

    block = args.block or DEFAULT_ATTENTION_BLOCK
    from testing.replicas import key as replica_key

    graphs, replica = build_graphs(args.cache, block, args.size), replica_key()
    out = args.out / "long_context.json"
    rows = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else []
    rows = [r for r in rows if r.get("replica") == replica]
    args.out.mkdir(parents=True, exist_ok=True)
    for length in (int(x) for x in args.lengths.split(",")):
        for name in args.graphs.split(","):
            short = length <= 2048
            repeats = args.repeats if short else 1
            cap = int(args.cap * (1 << 30)) if name.startswith("full") else None
            runs = []
            for _ in range(args.points):
                runs.append(measure(graphs[name], length, repeats, args.threads, VOCAB, cap, warmup=int(short)))
                if "error" in runs[-1]:
                    break  # over the cap or broken: it would fail again
            row = {"graph": name, "length": length, "block": block if name.startswith("blocked") else None,
                   "size": args.size, "replica": replica, **point(runs)}
            print(json.dumps(row), flush=True)
            rows = merge(rows, [row])
            out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")  # after every point
            (args.out / "long_context.md").write_text(_table(rows), encoding="utf-8")
    print(_table(rows))
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| graph | block | tokens | latency (s) | peak RSS (MB) | (min–max) | RSS after load (MB) | processes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    mb = lambda b: f"{b / (1 << 20):,.0f}"  # noqa: E731
    for r in rows:
        graph = r["graph"] + (" (small)" if r.get("size") == "small" else "")
        if "error" in r:
            over = r.get("cap") and re.search(r"alloc|memory|killed", r["error"], re.I)
            cap = f"{r['cap'] / (1 << 30):.3g} GB cap" if over else r["error"][-80:].replace("|", "/")
            lines.append(f"| {graph} | {r['block'] or '—'} | {r['length']:,} | failed ({cap}) | — | — | — | {r.get('points', 1)} |")
            continue
        low, high = r.get("peak_rss_spread", [r["peak_rss"]] * 2)
        failed = f" ({r['failed_points']} failed)" if r.get("failed_points") else ""
        lines.append(f"| {graph} | {r['block'] or '—'} | {r['length']:,} | {r['seconds']:.2f} | {mb(r['peak_rss'])} | "
                     f"{mb(low)}–{mb(high)} | {mb(r['loaded_rss'])} | {r.get('points', 1)}{failed} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
