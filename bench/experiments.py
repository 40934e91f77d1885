"""Settings measured one by one against reranker-onnx's defaults, without editing the runtime.

* ``import_costs``: ``python -X importtime -c "import reranker_onnx"`` summed per top-level package.
* ``task_session`` (worker): what a ``Reranker(...)`` spends where (manifest, CPU detection, hashing,
  tokenizer, session), and session creation under other settings: optimization level, a graph saved
  already optimized and loaded with optimizations off, weight prepacking off. Each setting's scores
  are compared with the default's, so a faster load that changes results is visible.
* ``task_throughput_options`` (worker) and ``option_sweep``: warm throughput of reranker-onnx with one
  default changed at a time (pad slack, token budget, threads, spinning), each option in a fresh
  process per round, in rotated order; the first pass also gives its peak memory above the RSS before
  it. A default that loses here has earned its place. Fresh processes, because in a shared process a
  spinning thread pool keeps spinning while the next option is measured, and flatters the spinner.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import stats
from .procs import CHILD_ENV, REPO


def import_costs(repeats: int = 3) -> dict[str, Any]:
    """Cumulative import time per top-level package (median of fresh interpreters), and the total."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import reranker_onnx"],
                              capture_output=True, text=True, cwd=REPO, env=CHILD_ENV, check=True)
        wall = time.perf_counter() - start
        per_pkg: dict[str, float] = defaultdict(float)
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)", line)
            if m:  # each module's own (self) time, summed per top-level package
                per_pkg[m.group(3).split(".")[0]] += int(m.group(1)) / 1e6
        runs.append({"wall_s": wall, "per_package_s": dict(per_pkg)})
    packages = {p for r in runs for p in r["per_package_s"]}
    per_pkg = {p: stats.median([r["per_package_s"].get(p, 0.0) for r in runs]) for p in packages}
    top = dict(sorted(per_pkg.items(), key=lambda kv: -kv[1])[:8])
    bare = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True, cwd=REPO, env=CHILD_ENV, check=True)
        bare.append(time.perf_counter() - start)
    return {"interpreter_plus_import_wall_s": stats.median([r["wall_s"] for r in runs]),
            "interpreter_alone_wall_s": stats.median(bare), "self_time_per_package_s": top}


def _timed(fn, repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return stats.median(times), value


CALL_PASSAGES = 10  # each session setting scores one query × 10 passages: enough to see a slower graph


def task_session(spec: dict) -> dict:
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from reranker_onnx import Reranker, cpu
    from reranker_onnx.manifest import read_manifest
    from reranker_onnx.scoring import Scorer, session_options

    model, reps = spec["model"], spec["repeats"]
    runtime_dir = Path(model["runtime_dir"])
    graph = Path(model["int8_graph"])
    workload = json.loads(Path(spec["workload"]).read_text(encoding="utf-8"))
    query, passages = workload["groups"][0]["query"], workload["groups"][0]["passages"][:CALL_PASSAGES]

    parts = {
        "read manifest": _timed(lambda: read_manifest(runtime_dir), reps)[0],
        "cpu.detect": _timed(cpu.detect, reps)[0],
        "sha256 of the graph (first load, no cache)": _timed(lambda: hashlib.sha256(graph.read_bytes()).hexdigest(), reps)[0],
        "tokenizer from file": _timed(lambda: Tokenizer.from_file(model["tokenizer"]), reps)[0],
        "Reranker(...) total": _timed(lambda: Reranker(runtime_dir), reps)[0],
    }
    reference = Reranker(runtime_dir)
    ref_scores = np.asarray(reference.score(query, passages))
    reference_call = _timed(lambda: reference.score(query, passages), reps)[0]

    tmp = Path(tempfile.mkdtemp(prefix="bench-opt-"))
    saved = tmp / "optimized.onnx"

    def options(level: Any, extra: dict[str, str] | None = None, save: Path | None = None) -> ort.SessionOptions:
        o = session_options(reference.info.threads, reference.info.exact_int8, extra)
        o.graph_optimization_level = level
        if save is not None:
            o.optimized_model_filepath = str(save)
        return o

    L = ort.GraphOptimizationLevel
    ort.InferenceSession(str(graph), options(L.ORT_ENABLE_ALL, save=saved), providers=["CPUExecutionProvider"])
    settings = {
        "default: ORT_ENABLE_ALL": (graph, options(L.ORT_ENABLE_ALL)),
        "ORT_ENABLE_BASIC": (graph, options(L.ORT_ENABLE_BASIC)),
        "ORT_DISABLE_ALL on the graph as shipped": (graph, options(L.ORT_DISABLE_ALL)),
        "saved optimized graph + ORT_DISABLE_ALL": (saved, options(L.ORT_DISABLE_ALL)),
        "ORT_ENABLE_ALL + session.disable_prepacking=1": (graph, options(L.ORT_ENABLE_ALL, {"session.disable_prepacking": "1"})),
    }
    sessions = {}
    for label, (path, opts) in settings.items():
        create_s, session = _timed(
            lambda p=path, o=opts: ort.InferenceSession(str(p), o, providers=["CPUExecutionProvider"]), reps)
        scorer = Scorer(Tokenizer.from_file(model["tokenizer"]), session, max_length=reference.info.max_length,
                        activation=reference.info.activation, batching=reference.scorer.batching)
        call_s, scores = _timed(lambda: scorer.scores([(query, p) for p in passages]), reps)
        diff = float(np.max(np.abs(np.asarray(scores) - ref_scores)))
        sessions[label] = {"session_create_s": create_s, "call_s": call_s, "passages": len(passages), "max_abs_diff_vs_default": diff,
                           "file_mb": path.stat().st_size / 1e6}
    shutil.rmtree(tmp, ignore_errors=True)
    return {"reranker_parts_s": parts, "reference_call_s": reference_call, "sessions": sessions}


def task_throughput_options(spec: dict) -> dict:
    """One warm pass of one option (``spec["config"]``) in this fresh process: its pairs/s, the peak
    memory of the pass above the RSS before it, and the Reranker's resulting settings."""
    from reranker_onnx import Reranker

    from .worker import reset_peak, status_kb

    workload = json.loads(Path(spec["workload"]).read_text(encoding="utf-8"))
    groups = [workload["groups"][i] for i in spec["groups"]]
    config = spec["config"]
    reranker = Reranker(spec["model"]["runtime_dir"], **config["options"])
    scorer = reranker.scorer
    if config.get("pad_slack") is not None:
        scorer = scorer.with_batching(replace(scorer.batching, pad_slack=config["pad_slack"]))
    pairs = sum(len(g["passages"]) for g in groups)
    scorer.scores([(groups[0]["query"], groups[0]["passages"][0])])
    before = status_kb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    for g in groups:
        scorer.scores([(g["query"], p) for p in g["passages"]])
    rate = pairs / (time.perf_counter() - start)
    b = scorer.batching
    settings = {"pad_slack": b.pad_slack, "token_budget": b.token_budget, "max_rows": b.max_rows,
                "threads": reranker.info.threads}
    return {"pairs_per_pass": pairs, "pairs_per_s": rate,
            "first_pass_peak_above_mb": (status_kb("VmHWM") - before) / 1024, "settings": settings}


def option_sweep(measure: Callable[[dict], dict], rounds: int, configs: list[dict] | None = None) -> dict:
    """Median pairs/s and spread per option over ``rounds``; ``measure(config)`` runs one pass of one
    option in a fresh worker (``task_throughput_options``). The order rotates each round, so no option
    always runs first after the others' files are paged in. The defaults are the default option's settings."""
    configs = configs or THROUGHPUT_CONFIGS
    rates: dict[str, list[float]] = {c["label"]: [] for c in configs}
    peaks: dict[str, float] = {}
    defaults: dict = {}
    pairs = 0
    for round_ in range(rounds):
        shift = round_ % len(configs)
        for c in configs[shift:] + configs[:shift]:
            out = measure(c)
            rates[c["label"]].append(out["pairs_per_s"])
            peaks.setdefault(c["label"], out["first_pass_peak_above_mb"])
            pairs = out["pairs_per_pass"]
            if c is configs[0]:
                defaults = out["settings"]
    return {"pairs_per_pass": pairs, "defaults": defaults, "configs": {
        label: {"pairs_per_s": stats.median(v), "spread": stats.spread(v), "first_pass_peak_above_mb": peaks[label]}
        for label, v in rates.items()}}


# The first entry is the runtime's defaults; each other entry changes one of them. ``pad_slack`` is
# the scorer's batching setting for that config's passes. A batch takes no row shorter than (1 - slack) × its
# longest, so slack 1.0 is the budget-only cut the runtime had before (slack 0 would allow no padding).
THROUGHPUT_CONFIGS = [
    {"label": "default", "options": {}},
    {"label": "pad slack 1.0 (budget-only cut)", "options": {}, "pad_slack": 1.0},
    {"label": "token_budget 4096", "options": {"token_budget": 4096}},
    {"label": "token_budget 8192", "options": {"token_budget": 8192}},
    {"label": "1 thread", "options": {"threads": 1}},
    {"label": "spinning on (session.intra_op.allow_spinning=1)",
     "options": {"session_config": {"session.intra_op.allow_spinning": "1"}}},
]
