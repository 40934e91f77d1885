"""``python -m bench.worker TASK SPEC.json``: one measurement in a fresh process, one JSON line out.

Only the standard library is imported before the clock starts, so a cold start measures the engine's
own imports. Timestamps are ``time.monotonic()`` (system-wide on Linux), so the parent can subtract
the moment it started this process. Memory is read from ``/proc/self/status``; writing 5 to
``/proc/self/clear_refs`` resets the peak (VmHWM) to the current RSS, so a curve point measures the
peak of its calls, not of loading.
"""

import time

T_ENTER = time.monotonic()

import json
import sys
from pathlib import Path


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def typical_passage(passages: list[str]) -> str:
    """The cold start's one pair: group 0's median passage by length (not a 512-token outlier)."""
    return sorted(passages, key=len)[len(passages) // 2]


def _load(spec: dict):
    from .engines import import_engine, load_engine

    import_engine(spec["engine"])
    t_imported = time.monotonic()
    scorer = load_engine(spec["engine"], spec["model"], spec.get("options"))
    return scorer, t_imported, time.monotonic()


def task_round(spec: dict) -> dict:
    """One round for one engine, in a fresh process, in this order (peak RSS only grows):

    1. import, load, score one pair (group 0's median-length passage): the cold start ends there;
    2. score this round's groups, one call per query: throughput, per-call latency, scores; the peak
       RSS after the first call is that of load + one 100-passage rerank, and after the last, of the run.
    """
    workload = json.loads(Path(spec["workload"]).read_text(encoding="utf-8"))
    group0 = workload["groups"][0]
    groups = [workload["groups"][i] for i in spec["groups"]]
    scorer, t_imported, t_loaded = _load(spec)
    first = scorer(group0["query"], [typical_passage(group0["passages"])])
    t_first = time.monotonic()
    if spec.get("warmup"):
        return {"t_first": t_first}
    calls, scores, hwm_first = [], [], -1
    for group in groups:
        start = time.perf_counter()
        scores += scorer(group["query"], group["passages"])
        calls.append(time.perf_counter() - start)
        if len(calls) == 1:
            hwm_first = status_kb("VmHWM")
    return {
        "t_enter": T_ENTER, "t_imported": t_imported, "t_loaded": t_loaded, "t_first": t_first,
        "first_score": first[0], "vmhwm_100_kb": hwm_first,
        "pairs": sum(len(g["passages"]) for g in groups), "calls_s": calls, "scores": scores,
        "vmhwm_run_kb": status_kb("VmHWM"),
    }


def task_curve(spec: dict) -> dict:
    """One point of a cost curve: latency (median of up to ``repeats`` calls, fewer once the calls
    have taken ``time_cap_s``: a long call's noise is small next to it) and the calls' own peak RSS."""
    scorer, _, _ = _load(spec)
    scorer(spec["query"], spec["passages"][:1])
    rss_before = status_kb("VmRSS")
    reset = reset_peak()
    times: list[float] = []
    while len(times) < spec["repeats"] and sum(times) < spec.get("time_cap_s", float("inf")):
        start = time.perf_counter()
        scorer(spec["query"], spec["passages"])
        times.append(time.perf_counter() - start)
    return {"times_s": times, "rss_before_kb": rss_before, "call_peak_kb": status_kb("VmHWM"),
            "peak_reset": reset, "vmhwm_kb": status_kb("VmHWM")}


def _external(name: str):
    module, func = name.split(":")
    import importlib

    return getattr(importlib.import_module(f"bench.{module}"), func)


TASKS = {
    "round": task_round,
    "curve": task_curve,
    "profile": "profiling:task_profile",
    "session": "experiments:task_session",
    "throughput-options": "experiments:task_throughput_options",
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in TASKS:
        print(f"usage: python -m bench.worker {{{','.join(TASKS)}}} SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    task = TASKS[argv[0]]
    result = (_external(task) if isinstance(task, str) else task)(spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
