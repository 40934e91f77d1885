"""Export seed replicas through the hub stand-in with the user's command, and measure them (``make seeds-full``).

For each seed, one at a time: build (or reuse) its replica, serve all replicas under their real repo
ids at the revisions models.lock pins, and run ``rerank-onnx export NAME`` in a child process whose
``HF_ENDPOINT`` points at the stand-in: the code path a user runs against the real hub. The lock it
reads is a copy of models.lock whose ``upstream_files`` pins are the replica's hashes (the real pins
name upstream's bytes, which a replica cannot have; ``tests/test_seeds.py`` checks that they refuse
it). Then the runtime loads the exported directory and scores real Debian pairs with each variant.

Figures are replica figures (random weights): export wall time and peak RSS of the export process,
variant sizes, int8 agreement with fp32 as the export measured it, load time and pairs/s per variant.

    python -m testing.seeds OUT [--size small] [NAME ...]     # writes OUT/seeds.json and OUT/seeds.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .hub import HubServer
from .replicas import ROOT, SEEDS, SIZES, cached

LOCK = ROOT / "models.lock"


def replica_lock(target: Path, blobs: dict[str, dict], source: Path = LOCK) -> Path:
    """A copy of ``source`` whose seeds pin the replicas' file hashes instead of upstream's."""
    data = json.loads(source.read_text(encoding="utf-8"))
    for name, files in blobs.items():
        entry = data["models"][name]
        entry["upstream_files"] = {f: {"sha256": b.sha256, "size": b.size} for f, b in sorted(files.items())}
        entry["upstream_files_source"] = "replica built by testing.replicas (random weights), served by testing.hub"
        entry["artifacts"] = {}
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def serve(hub: HubServer, names: list[str], size: str) -> dict[str, dict]:
    """Publish each seed's replica on ``hub`` at the lock's revision; returns the served blobs."""
    lock = json.loads(LOCK.read_text(encoding="utf-8"))["models"]
    blobs = {}
    for name in names:
        revision = lock[name]["revision"]
        if not revision:
            raise SystemExit(f"{name} has no pinned revision in models.lock")
        blobs[name] = hub.add_folder(SEEDS[name].repo, cached(name, size), revision)
    return blobs


def export_child(args: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """Run ``rerank-onnx export ARGS`` niced; (exit code, wall seconds, peak RSS bytes, stderr tail)."""
    import tempfile

    command = [sys.executable, "-m", "reranker_onnx.cli", "export", *args]
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stderr=err, stdout=subprocess.DEVNULL, text=True,
                                 preexec_fn=lambda: os.nice(10))
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (KiB on Linux)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = "\n".join(err.read().strip().splitlines()[-3:])
    return child.returncode, wall, usage.ru_maxrss * 1024, tail


def _pairs(lang: str, n: int = 64) -> list[tuple[str, str]]:
    from export.debian import read_descriptions

    ds = read_descriptions(lang)[:n * 4:4]
    return [(d.synopsis, d.body) for d in ds]


def runtime_figures(directory: Path, langs: list[str], repeats: int = 3) -> dict[str, dict]:
    """Per variant: load time (median of ``repeats``) and pairs/s scoring real Debian pairs."""
    from reranker_onnx import Reranker
    from reranker_onnx.manifest import read_manifest

    pairs = [p for lang in langs for p in _pairs(lang, 32)]
    figures = {}
    for variant, v in sorted(read_manifest(directory).variants.items()):
        loads, rates = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            reranker = Reranker(directory, variant=variant, threads=2)
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            reranker.predict(pairs)
            rates.append(len(pairs) / (time.perf_counter() - start))
        figures[variant] = {"file": v.file, "size": (directory / v.file).stat().st_size,
                            "load_s": statistics.median(loads), "pairs_per_s": statistics.median(rates),
                            "fidelity": v.fidelity}
    return figures


def measure(name: str, size: str, out: Path) -> dict:
    """Serve every needed replica, export ``name`` through the stand-in in a child process, measure it."""
    with HubServer() as hub:
        blobs = serve(hub, [name], size)
        lock = replica_lock(out / f"{name}.models.lock", blobs)
        env = hub.environ(out / "hf-home")
        env["RERANKER_ONNX_HOME"] = str(out / "store")
        target, report = out / name, out / f"{name}.report.json"
        code, wall, peak, err = export_child(
            [name, "--lock", str(lock), "--output", str(target), "--no-gate", "--report", str(report)], env)
        requests = len(hub.requests)
    row = {"name": name, "size": size, "exit": code, "export_wall_s": wall, "export_peak_rss": peak,
           "hub_requests": requests}
    if code != 0:
        row["error"] = err
        return row
    data = json.loads(report.read_text(encoding="utf-8"))
    row["report"] = data
    langs = json.loads(LOCK.read_text())["models"][name].get("recipe", {}).get("languages", ["en"])
    row["variants"] = runtime_figures(target, langs)
    return row


def table(rows: list[dict]) -> str:
    """The README's per-seed table (markdown)."""
    lines = ["| seed (replica) | export wall / peak RSS | variant: size, NDCG@10 ratio vs fp32, load, pairs/s |",
             "| --- | --- | --- |"]
    for r in rows:
        if r.get("exit") != 0:
            lines.append(f"| {r['name']} | failed: {r.get('error', '?')} | |")
            continue
        cells = []
        for variant, v in r["variants"].items():
            ndcg = v["fidelity"].get("ndcg_at_10")
            agreement = f"{ndcg:.3f}" if isinstance(ndcg, (int, float)) else "ref"
            cells.append(f"{variant}: {v['size'] / 1e6:.1f} MB, {agreement}, {v['load_s']:.2f} s, "
                         f"{v['pairs_per_s']:.0f}/s")
        lines.append(f"| {r['name']} | {r['export_wall_s'] / 60:.1f} min / {r['export_peak_rss'] / 2**30:.2f} GiB "
                     f"| {'<br>'.join(cells)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.seeds", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("names", nargs="*", help="seeds (default: all five, smallest first)")
    parser.add_argument("--size", choices=SIZES, default="full")
    args = parser.parse_intermixed_args(argv)
    names = args.names or sorted(SEEDS, key=lambda n: SEEDS[n].params)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "seeds.json"
    rows = json.loads(results.read_text()) if results.is_file() else []
    failed = False
    for name in names:
        if name not in SEEDS:
            parser.error(f"unknown seed {name!r}; seeds: {', '.join(SEEDS)}")
        print(f"seeds: exporting the {args.size} replica of {name} through the hub stand-in", flush=True)
        row = measure(name, args.size, args.out)
        failed |= row["exit"] != 0
        rows = [r for r in rows if (r["name"], r["size"]) != (name, args.size)] + [row]
        results.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        (args.out / "seeds.md").write_text(table(rows), encoding="utf-8")
        print(table([row]), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
