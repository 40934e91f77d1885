"""The measurements: the engine comparison (rounds of fresh processes) and the cost curves.

Rounds interleave the engines (round 1: every engine once, round 2: again, in rotated order), so a
change in the machine's load during the run lands on all engines alike instead of on whichever ran
last. A round 0 per engine is run and discarded: it pages in libraries and model files and fills
reranker-onnx's verification cache, so every engine's cold start is measured warm-disk. A later
size skips it (the libraries are in memory by then, and an ST round 0 alone is ~20 s of imports):
its model files are read once here instead, and a cold first round is one of three, so the median
holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import stats
from .engines import ENGINES
from .procs import WorkerError, run_worker

REFERENCE = "st-torch-fp32"  # fidelity is measured against sentence-transformers' torch fp32 scores
MAX_ATTENTION_BYTES = 6 * 2**30  # curve points whose attention tensor alone would exceed this are skipped
CURVE_REPEATS, CURVE_TIME_CAP_S = 3, 1.0  # up to 3 calls per curve point, fewer once they took 1 s
MODEL_DIRS = ("checkpoint", "runtime_dir", "st_int8_dir", "flashrank_cache", "fastembed_dir")


@dataclass(frozen=True)
class Plan:
    rounds: int  # ≥ 3: medians and spreads are over rounds
    queries_per_round: int  # each query is one call with its 100 passages
    engines: tuple[str, ...] = ENGINES
    warmup: bool = True  # a discarded round 0 per engine (import + load + one pair)

    def round_groups(self, r: int) -> list[int]:
        """Group indices for round r (1-based); group 0 gives the cold start's pair (and the profile's call)."""
        start = 1 + (r - 1) * self.queries_per_round
        return list(range(start, start + self.queries_per_round))

    @property
    def groups_needed(self) -> int:
        return 1 + self.rounds * self.queries_per_round


def _warmup(engine: str, model: dict, workload: Path) -> None:
    run_worker("round", {"engine": engine, "model": model, "workload": str(workload), "groups": [],
                         "warmup": True})


def _page_in(model: dict) -> None:
    """Read every file the engines will load, so no round pays for the disk (instead of a round 0)."""
    for key in MODEL_DIRS:
        for path in Path(model[key]).rglob("*"):
            if path.is_file():
                with path.open("rb") as fh:
                    while fh.read(1 << 24):
                        pass


def _round(engine: str, model: dict, workload: Path, groups: list[int]) -> dict[str, Any]:
    child = run_worker("round", {"engine": engine, "model": model, "workload": str(workload), "groups": groups})
    o = child.out
    return {
        "cold_start_s": o["t_first"] - child.t0,
        "cold_split_s": {"interpreter": o["t_enter"] - child.t0, "import": o["t_imported"] - o["t_enter"],
                         "load": o["t_loaded"] - o["t_imported"], "first_score": o["t_first"] - o["t_loaded"]},
        "rss100_mb": o["vmhwm_100_kb"] / 1024, "rss_run_mb": o["vmhwm_run_kb"] / 1024,
        "pairs": o["pairs"], "calls_s": o["calls_s"], "scores": o["scores"],
        "pairs_per_s": o["pairs"] / sum(o["calls_s"]) if o["calls_s"] else None,
        "process_wall_s": child.wall_s,
    }


def _summary(rounds: list[dict]) -> dict[str, Any]:
    def med(key: str) -> dict[str, float]:
        values = [r[key] for r in rounds]
        lo, hi = stats.spread(values)
        return {"median": stats.median(values), "min": lo, "max": hi}

    calls = [c for r in rounds for c in r["calls_s"]]
    split = {k: stats.median([r["cold_split_s"][k] for r in rounds]) for k in rounds[0]["cold_split_s"]}
    return {
        "pairs_per_s": med("pairs_per_s"), "cold_start_s": med("cold_start_s"), "cold_split_s": split,
        "rss100_mb": med("rss100_mb"), "rss_run_mb": med("rss_run_mb"),
        "latency100_ms": {"p50": 1000 * stats.percentile(calls, 50), "p90": 1000 * stats.percentile(calls, 90),
                          "calls": len(calls),
                          "per_round_p50": [1000 * stats.percentile(r["calls_s"], 50) for r in rounds]},
        "pairs_total": sum(r["pairs"] for r in rounds),
    }


def compare(model: dict, workload: Path, plan: Plan, say: Callable[[str], None]) -> dict[str, Any]:
    """Every engine on this size: per-engine summaries, fidelity vs fp32, and the failures, if any."""
    engines = list(plan.engines)
    results: dict[str, list[dict]] = {e: [] for e in engines}
    failed: dict[str, str] = {}
    if not plan.warmup:
        _page_in(model)
    for e in engines if plan.warmup else []:  # round 0, discarded
        try:
            _warmup(e, model, workload)
        except WorkerError as exc:
            failed[e] = str(exc)
            say(f"    {e}: FAILED to run: {str(exc).splitlines()[-1]}")
    for r in range(1, plan.rounds + 1):
        live = [e for e in engines if e not in failed]
        for e in live[(r - 1) % max(1, len(live)):] + live[: (r - 1) % max(1, len(live))]:
            try:
                res = _round(e, model, workload, plan.round_groups(r))
            except WorkerError as exc:
                failed[e] = str(exc)
                say(f"    {e}: FAILED to run: {str(exc).splitlines()[-1]}")
                continue
            results[e].append(res)
            say(f"    round {r} {e:<14} {res['pairs_per_s']:8.1f} pairs/s  cold {res['cold_start_s']:6.2f} s  "
                f"rss100 {res['rss100_mb']:6.0f} MB")
    live = [e for e in engines if e not in failed and results[e]]
    summaries = {e: _summary(results[e]) for e in live}
    scores = {e: [s for r in results[e] for s in r["scores"]] for e in live}
    if REFERENCE in scores:
        per_query = plan.queries_per_round * plan.rounds
        for e in live:
            summaries[e]["fidelity"] = _fidelity(scores[REFERENCE], scores[e], per_query)
    return {"engines": summaries, "failed": failed, "rounds": {e: _strip(results[e]) for e in live}}


def _fidelity(reference: list[float], scores: list[float], groups: int) -> dict[str, float]:
    size = len(reference) // groups
    per_query = [stats.spearman(reference[i * size:(i + 1) * size], scores[i * size:(i + 1) * size])
                 for i in range(groups)]
    return {"spearman_all_pairs": stats.spearman(reference, scores),
            "spearman_per_query_mean": float(sum(per_query) / len(per_query)), "pairs": len(reference)}


def _strip(rounds: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "scores"} for r in rounds]


# -- cost curves ---------------------------------------------------------------------------------------

def _attention_bytes(model: dict, passages: int) -> int:
    config = json.loads((Path(model["checkpoint"]) / "config.json").read_text(encoding="utf-8"))
    return passages * int(config["num_attention_heads"]) * 512 * 512 * 4


def _point(engine: str, model: dict, query: str, passages: list[str]) -> dict[str, Any]:
    child = run_worker("curve", {"engine": engine, "model": model, "query": query, "passages": passages,
                                 "repeats": CURVE_REPEATS, "time_cap_s": CURVE_TIME_CAP_S})
    o = child.out
    return {"latency_s": stats.median(o["times_s"]), "times_s": o["times_s"],
            "call_peak_mb": o["call_peak_kb"] / 1024, "rss_before_mb": o["rss_before_kb"] / 1024,
            "peak_reset": o["peak_reset"]}


def curves(model: dict, workload: dict, engines: list[str], say: Callable[[str], None],
           unbounded: tuple[str, ...] = ("flashrank",)) -> dict[str, Any]:
    """Latency and the calls' peak RSS vs passages per call and vs pair length, one process per point."""
    out: dict[str, Any] = {"by_count": {}, "by_length": {}, "skipped": []}
    cc, lc = workload["count_curve"], workload["length_curve"]
    for e in engines:
        out["by_count"][e], out["by_length"][e] = {}, {}
        for n in cc["counts"]:
            if e in unbounded and _attention_bytes(model, n) > MAX_ATTENTION_BYTES:
                out["skipped"].append({"engine": e, "count": n, "why": f"{e} runs all {n} passages in one batch: "
                                       f"its attention tensor alone would take {_attention_bytes(model, n) / 2**30:.1f} GiB"})
                continue
            point = _point(e, model, cc["query"], cc["pool"][:n])
            out["by_count"][e][str(n)] = point
            say(f"    {e:<14} {n:5d} passages  {point['latency_s'] * 1000:9.1f} ms  peak {point['call_peak_mb']:7.0f} MB")
        for length, passages in lc["passages"].items():
            point = _point(e, model, lc["query"], passages)
            out["by_length"][e][length] = point
            say(f"    {e:<14} {int(length):5d} tokens    {point['latency_s'] * 1000:9.1f} ms  peak {point['call_peak_mb']:7.0f} MB")
    return out
