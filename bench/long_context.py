"""``python -m bench.long_context``: JinaBERT at 512-8,192 tokens, full attention graph against blocked.

Takes the full-size jina-reranker-v1-tiny-en replica (testing/replicas.py: upstream's config, 4 layers, 384
hidden, 12 heads, vocab 61,056, seeded random weights: no claim about the real model's scores), exports
the old graph (full attention, ``attention_block=None``) and the new one (query blocks), quantizes each
for this CPU, and runs one pair per length in a fresh, nice'd process: latency (median of repeats) and
the peak RSS of the whole process (the child's VmHWM). Each old-graph run is capped by
RLIMIT_AS so a graph that needs more than the cap fails in its process instead of swapping the host.
The logits printed per run show the fp32 agreement of the two graphs at each length both can run.

Writes results/bench/long_context.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LENGTHS = (512, 2048, 4096, 8192)
JINA = "jina-reranker-v1-tiny-en"
VOCAB = 61056
CAP_BYTES = 8 << 30  # address-space cap per measuring process


def build_graphs(cache: Path, block: int) -> dict[str, Path]:
    """The jina full-size replica (testing/replicas.py, seeded random weights) as full and blocked graphs."""
    from export import quantize as q
    from export.jinabert import export_onnx
    from testing import replicas

    root = cache / f"{replicas.key()}-b{block}"
    graphs = {
        "full fp32": root / "full.onnx",
        "blocked fp32": root / "blocked.onnx",
        "full int8": root / "full_int8.onnx",
        "blocked int8": root / "blocked_int8.onnx",
    }
    if all(p.is_file() for p in graphs.values()):
        return graphs
    model = replicas._model(JINA, "full", seed=0).eval()
    export_onnx(model, graphs["full fp32"], attention_block=None)
    export_onnx(model, graphs["blocked fp32"], attention_block=block)
    for kind in ("full", "blocked"):
        q.quantize(graphs[f"{kind} fp32"], graphs[f"{kind} int8"], q.AVX512_VNNI, quantize_embeddings=False)
    return graphs


# ---------------------------------------------------------------- the measuring child


def _child(graph: str, length: int, repeats: int, threads: int, vocab: int) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from .worker import status_kb  # VmHWM, not ru_maxrss, which Linux carries across exec (procs.py)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    loaded = status_kb("VmHWM") * 1024
    rng = np.random.default_rng(length)
    feed = {
        "input_ids": rng.integers(5, vocab, (1, length), dtype=np.int64),
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "token_type_ids": np.zeros((1, length), dtype=np.int64),
    }
    times, logit = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        logit = session.run(None, feed)[0]
        times.append(time.perf_counter() - start)
    return {
        "seconds": sorted(times)[len(times) // 2],
        "loaded_rss": loaded,
        "peak_rss": status_kb("VmHWM") * 1024,
        "logit": float(logit.ravel()[0]),
    }


def measure(graph: Path, length: int, repeats: int, threads: int, vocab: int, cap: int | None) -> dict[str, Any]:
    """One child process: returns latency, peak RSS of the child (bytes) or the error it died with."""
    code = (
        "import json,sys,resource\n"
        f"cap={cap!r}\n"
        "if cap: resource.setrlimit(resource.RLIMIT_AS,(cap,cap))\n"
        "from bench.long_context import _child\n"
        f"print(json.dumps(_child({str(graph)!r},{length},{repeats},{threads},{vocab})))\n"
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.long_context", description=__doc__.splitlines()[0])
    p.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    p.add_argument("--graphs", default="full fp32,blocked fp32,full int8,blocked int8")
    p.add_argument("--block", type=int, default=None, help="queries per attention block (default: the export's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cap", type=float, default=CAP_BYTES / (1 << 30), help="GB of address space per run")
    p.add_argument("--cache", type=Path, default=Path(".cache/bench/long-context"))
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    args = p.parse_args(argv)
    from export.jinabert import DEFAULT_ATTENTION_BLOCK

    block = args.block or DEFAULT_ATTENTION_BLOCK
    graphs = build_graphs(args.cache, block)
    rows = []
    for length in (int(x) for x in args.lengths.split(",")):
        for name in args.graphs.split(","):
            repeats = args.repeats if length <= 2048 else max(1, args.repeats - 1)
            cap = int(args.cap * (1 << 30)) if name.startswith("full") else None
            result = measure(graphs[name], length, repeats, args.threads, VOCAB, cap)
            rows.append({"graph": name, "length": length, "block": block, **result})
            print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "long_context.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (args.out / "long_context.md").write_text(_table(rows), encoding="utf-8")
    print(_table(rows))
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| graph | tokens | latency (s) | peak RSS (MB) | RSS after load (MB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            cap = f"{r['cap'] / (1 << 30):.0f} GB cap" if r.get("cap") else "no cap"
            lines.append(f"| {r['graph']} | {r['length']} | failed ({cap}) | — | — |")
            continue
        peak = f"{r['peak_rss'] / (1 << 20):,.0f}" if r.get("peak_rss") else "n/a"
        lines.append(
            f"| {r['graph']} | {r['length']} | {r['seconds']:.2f} | {peak} | {r['loaded_rss'] / (1 << 20):,.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
