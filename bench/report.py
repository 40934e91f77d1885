"""Targets, ratios and the three outputs: ``bench.md`` (tables), ``bench.json`` (everything), ``bench.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .engines import LABELS, PEERS

TARGETS = {
    "throughput_vs_best_peer": 2.5,
    "throughput_vs_st_torch_fp32": 6.0,
    "cold_start_s": {"tinybert-l2": 0.3, "minilm-l6": 0.5},
    "rss100_vs_lightest_peer": 0.5,
}
US = "reranker-onnx"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def targets(size: str, engines: dict[str, Any]) -> list[dict[str, Any]]:
    """The four checks for one size; a check whose inputs are missing says so instead of passing."""
    if US not in engines:
        return [{"check": f"{US} ran", "verdict": "MISS", "detail": "no result"}]
    us = engines[US]
    peers = {e: engines[e] for e in PEERS if e in engines}
    rows = []
    if peers:
        best = max(peers, key=lambda e: peers[e]["pairs_per_s"]["median"])
        ratio = us["pairs_per_s"]["median"] / peers[best]["pairs_per_s"]["median"]
        rows.append({"check": f"throughput ≥ {TARGETS['throughput_vs_best_peer']}× best peer", "ratio": ratio,
                     "detail": f"best peer: {best}", "verdict": _verdict(ratio >= TARGETS["throughput_vs_best_peer"])})
    if "st-torch-fp32" in engines:
        ratio = us["pairs_per_s"]["median"] / engines["st-torch-fp32"]["pairs_per_s"]["median"]
        rows.append({"check": f"throughput ≥ {TARGETS['throughput_vs_st_torch_fp32']}× ST torch fp32", "ratio": ratio,
                     "detail": "", "verdict": _verdict(ratio >= TARGETS["throughput_vs_st_torch_fp32"])})
    limit = TARGETS["cold_start_s"].get(size)
    cold = us["cold_start_s"]["median"]
    if peers:
        fastest = min(peers, key=lambda e: peers[e]["cold_start_s"]["median"])
        detail = f"fastest peer: {fastest} {peers[fastest]['cold_start_s']['median']:.2f} s"
    else:
        detail = ""
    rows.append({"check": f"cold start ≤ {limit} s", "value": cold, "detail": detail,
                 "verdict": _verdict(None if limit is None else cold <= limit)})
    if peers:
        lightest = min(peers, key=lambda e: peers[e]["rss100_mb"]["median"])
        ratio = us["rss100_mb"]["median"] / peers[lightest]["rss100_mb"]["median"]
        rows.append({"check": f"peak RSS of a 100-passage rerank ≤ {TARGETS['rss100_vs_lightest_peer']}× lightest peer",
                     "ratio": ratio, "detail": f"lightest peer: {lightest} {peers[lightest]['rss100_mb']['median']:.0f} MB",
                     "verdict": _verdict(ratio <= TARGETS["rss100_vs_lightest_peer"])})
    return rows


def _fmt_spread(d: dict[str, float], fmt: str) -> str:
    return f"{d['median']:{fmt}} [{d['min']:{fmt}}–{d['max']:{fmt}}]"


def _engine_table(engines: dict[str, Any], n: int) -> list[str]:
    lines = [f"| engine | pairs/s median [min–max] | 1×{n} p50 / p90 ms | cold start s median [min–max] | "
             f"peak RSS load + 1×{n} rerank MB | peak RSS run MB | Spearman vs fp32 (all / per query) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for e, s in engines.items():
        fid = s.get("fidelity")
        fid_text = f"{fid['spearman_all_pairs']:.4f} / {fid['spearman_per_query_mean']:.4f}" if fid else "n/a"
        lines.append(f"| {e} | {_fmt_spread(s['pairs_per_s'], '.1f')} | {s['latency100_ms']['p50']:.0f} / "
                     f"{s['latency100_ms']['p90']:.0f} | {_fmt_spread(s['cold_start_s'], '.2f')} | "
                     f"{s['rss100_mb']['median']:.0f} | {s['rss_run_mb']['median']:.0f} | {fid_text} |")
    return lines


def _cold_table(engines: dict[str, Any]) -> list[str]:
    lines = ["| engine | interpreter | import | load | first score | total |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for e, s in engines.items():
        p = s["cold_split_s"]
        lines.append(f"| {e} | {p['interpreter']:.2f} | {p['import']:.2f} | {p['load']:.2f} | {p['first_score']:.2f} | "
                     f"{s['cold_start_s']['median']:.2f} |")
    return lines


def _target_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        measured = f"{r['ratio']:.2f}×" if "ratio" in r else f"{r['value']:.2f} s"
        out.append(f"- **{r['verdict']}** {r['check']}: {measured}{' (' + r['detail'] + ')' if r['detail'] else ''}")
    return out


def _curve_tables(curves: dict[str, Any]) -> list[str]:
    lines = []
    for kind, unit in (("by_count", "passages"), ("by_length", "pair tokens")):
        engines = curves[kind]
        points = sorted({int(p) for e in engines.values() for p in e}, key=int)
        if not points:
            continue
        lines += ["", f"Latency ms / peak RSS of the calls MB, by {unit} ({curves['size']}):", "",
                  f"| engine | {' | '.join(str(p) for p in points)} |", "| --- |" + " ---: |" * len(points)]
        for e, pts in engines.items():
            cells = [f"{pts[str(p)]['latency_s'] * 1000:.0f} / {pts[str(p)]['call_peak_mb']:.0f}" if str(p) in pts
                     else "skipped" for p in points]
            lines.append(f"| {e} | {' | '.join(cells)} |")
    for s in curves.get("skipped", []):
        lines.append(f"- skipped: {s['why']}")
    return lines


def _profile_lines(profiles: dict[str, Any]) -> list[str]:
    lines = []
    for size, p in profiles.items():
        split = p["split_s"]
        timed = {k: v for k, v in split.items() if k not in ("batches", "padded_tokens", "real_tokens")}
        total = sum(timed.values())
        lines += ["", f"{size}: score() of 1 × {p['passages']} passages = {p['score_call_s'] * 1000:.0f} ms "
                  f"(variant {p['variant']}, {p['threads']} threads, token budget {p['token_budget']}; "
                  f"{split['batches']:.0f} batches, {split['real_tokens']:.0f} real of {split['padded_tokens']:.0f} padded tokens)",
                  "", "| stage | ms | share |", "| --- | ---: | ---: |"]
        for k, v in timed.items():
            lines.append(f"| {k} | {v * 1000:.1f} | {100 * v / total:.1f}% |")
    return lines


def _experiment_lines(exp: dict[str, Any]) -> list[str]:
    lines = []
    if "imports" in exp:
        imp = exp["imports"]
        lines += ["", f"`import reranker_onnx` in a fresh interpreter: {imp['interpreter_plus_import_wall_s']:.2f} s wall "
                  f"(bare interpreter {imp['interpreter_alone_wall_s']:.2f} s); own time per package (-X importtime): "
                  + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in imp["self_time_per_package_s"].items())]
    for size, s in exp.get("session", {}).items():
        lines += ["", f"Load-time parts ({size}): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in s["reranker_parts_s"].items()),
                  "", "| session setting | create ms | 1×10 call ms | max abs diff vs default | file MB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for label, v in s["sessions"].items():
            lines.append(f"| {label} | {v['session_create_s'] * 1000:.0f} | {v['call_s'] * 1000:.0f} | "
                         f"{v['max_abs_diff_vs_default']:.2e} | {v['file_mb']:.1f} |")
    for size, t in exp.get("throughput", {}).items():
        defaults = ", ".join(f"{k} {v}" for k, v in t.get("defaults", {}).items())
        lines += ["", f"Throughput options ({size}, {t['pairs_per_pass']} pairs per pass, each option in a fresh process per round; "
                  f"each row changes one default of: {defaults}):", "",
                  "| setting | pairs/s median [min–max] | first-pass peak above RSS MB |", "| --- | ---: | ---: |"]
        for label, v in t["configs"].items():
            lines.append(f"| {label} | {v['pairs_per_s']:.1f} [{v['spread'][0]:.1f}–{v['spread'][1]:.1f}] | "
                         f"{v['first_pass_peak_above_mb']:.0f} |")
    for size, schemes in exp.get("int8_schemes", {}).items():
        lines += ["", f"Int8 activation scales ({size}; one process, rounds interleaved; batch spread = largest |Δ score| "
                  "of a pair across batch compositions):", ""]
        if "failed" in schemes:
            lines.append(f"failed: {schemes['failed']}")
            continue
        lines += ["| scheme | pairs/s | vs dynamic | load s | MB | NDCG@10 vs fp32 | Spearman | batch spread |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        base = schemes.get("dynamic", {}).get("pairs_per_s")
        for name, v in schemes.items():
            f = v.get("vs_fp32", {})
            lines.append(f"| {name} | {v['pairs_per_s']:.1f} | {v['pairs_per_s'] / base if base else float('nan'):.2f}x | "
                         f"{v['load_s']:.2f} | {v['size_mb']:.1f} | {f.get('ndcg_at_10', float('nan')):.4f} | "
                         f"{f.get('spearman', float('nan')):.4f} | {v['batch']['max_abs_delta']:.2e} |")
    return lines


def _builds(meta: dict[str, Any]) -> str:
    done = {k: m.get("build_timings", {}) for k, m in meta.get("models", {}).items()}
    parts = [f"{k}: " + ", ".join(f"{step} {s / 60:.1f} min" for step, s in t.items()) for k, t in done.items() if t]
    return "; ".join(parts) if parts else "all cached under .cache/bench"


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# reranker-onnx bench ({'quick' if meta['quick'] else 'full'} run)", "",
             f"- host: {meta['host']}; load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']} "
             f"(2 cores shared with other jobs: absolute numbers are noisy, ratios within a round less so)",
             f"- run took {meta['elapsed_s'] / 60:.1f} min, of which building models {meta['build_s'] / 60:.1f} min "
             f"({_builds(meta)}); {meta['versions']}",
             f"- workload: {meta['workload']}", f"- plan: {meta['plan']}",
             "- minutes per phase: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in result.get("phases_s", {}).items()), ""]
    lines += ["Engines:", *[f"- `{e}`: {LABELS[e]}" for e in LABELS], ""]
    n = next(iter(meta["plan"].values()))["passages_per_query"] if meta["plan"] else 100
    for r in result["sizes"].values():
        lines += [f"## {r['label']}", "", *_engine_table(r["engines"], n), "", "Targets:", "",
                  *_target_lines(r["targets"]), "", "Cold start split (median s):", "",
                  *_cold_table(r["engines"])]
        for e, why in r["failed"].items():
            lines.append(f"- {e} could not run: {why.splitlines()[-1]}")
        lines.append("")
    if result.get("curves"):
        lines += ["## Cost curves", *_curve_tables(result["curves"]), ""]
    if result.get("profile"):
        lines += ["## Where reranker-onnx spends a 100-passage call", *_profile_lines(result["profile"]), ""]
    if result.get("experiments"):
        lines += ["## Runtime experiments", *_experiment_lines(result["experiments"]), ""]
    lines += ["## Notes", *[f"- {n}" for n in result.get("notes", [])], ""]
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(result["sizes"])
    engines = [e for e in LABELS if any(e in result["sizes"][s]["engines"] for s in sizes)]
    fig, axes = plt.subplots(2, 4, figsize=(22, 10))
    width = 0.8 / max(1, len(sizes))
    for ax, key, title, log in ((axes[0, 0], "pairs_per_s", "throughput, pairs/s (higher is better)", True),
                                (axes[0, 1], "cold_start_s", "cold start to first score, s", True),
                                (axes[0, 2], "rss100_mb", "peak RSS, load + 1×100 rerank, MB", False)):
        for i, size in enumerate(sizes):
            vals = [result["sizes"][size]["engines"].get(e, {}).get(key, {}).get("median", 0) for e in engines]
            errs = [[v - result["sizes"][size]["engines"].get(e, {}).get(key, {}).get("min", v) for e, v in zip(engines, vals)],
                    [result["sizes"][size]["engines"].get(e, {}).get(key, {}).get("max", v) - v for e, v in zip(engines, vals)]]
            ax.bar([x + i * width for x in range(len(engines))], vals, width, yerr=errs, label=size, capsize=2)
        ax.set_xticks([x + width * (len(sizes) - 1) / 2 for x in range(len(engines))], engines, rotation=30, ha="right")
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.legend()
    ax = axes[0, 3]
    for i, size in enumerate(sizes):
        vals = [result["sizes"][size]["engines"].get(e, {}).get("latency100_ms", {}).get("p50", 0) for e in engines]
        ax.bar([x + i * width for x in range(len(engines))], vals, width, label=size)
    ax.set_xticks([x + width * (len(sizes) - 1) / 2 for x in range(len(engines))], engines, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_title("latency of 1 query × 100 passages, p50 ms")
    ax.legend()
    curves = result.get("curves") or {}
    for ax, kind, field, title, xlabel in (
        (axes[1, 0], "by_count", "latency_s", "latency vs passages per call", "passages"),
        (axes[1, 1], "by_length", "latency_s", "latency vs pair length (100 passages)", "tokens"),
        (axes[1, 2], "by_count", "call_peak_mb", "peak RSS during the call vs passages", "passages"),
        (axes[1, 3], "by_length", "call_peak_mb", "peak RSS during the call vs pair length", "tokens"),
    ):
        for e, pts in curves.get(kind, {}).items():
            xs = sorted(pts, key=int)
            ax.plot([int(x) for x in xs], [pts[x][field] * (1000 if field == "latency_s" else 1) for x in xs],
                    marker="o", label=e)
        ax.set_xscale("log", base=2 if kind == "by_length" else 10)
        if field == "latency_s":
            ax.set_yscale("log")
        ax.set_title(f"{title} ({curves.get('size', '')})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ms" if field == "latency_s" else "MB")
        if curves.get(kind):
            ax.legend()
    meta = result["meta"]
    fig.suptitle(f"reranker-onnx bench — load average {meta['loadavg_start']} → {meta['loadavg_end']} on 2 shared cores")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(result: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "bench.md", "json": out / "bench.json", "png": out / "bench.png"}
    paths["json"].write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(result), encoding="utf-8")
    chart(result, paths["png"])
    return paths
