"""Int8 schemes side by side on one model: batch spread, fidelity, speed, load time, size.

    python -m bench.quant_schemes MODEL_DIR [--schemes dynamic,static,...] [--queries 12] [--rounds 3]

MODEL_DIR is an exported model directory. Each scheme's graph is written from the directory's own
graphs (the dynamic one is the variant this CPU runs; the others are made from it or from the fp32
graph) into a scratch copy, then every graph is loaded and scored in this one process, rounds
interleaved, so ratios between schemes are fair on a shared host even when absolute speed is not.
Fidelity is against the fp32 graph when the directory has one; a bundle without fp32 is compared
against its dynamic graph, and its real-label quality is ``python -m evaluation``'s job.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from reranker_onnx import Reranker, cpu
from reranker_onnx.manifest import Quantization, Variant, file_entry, read_manifest


def _with_graph(base: Path, scratch: Path, name: str, graph: Path, recipe: Quantization | None) -> Path:
    """A copy of ``base`` (tokenizer, manifest) whose every variant is ``graph``."""
    folder = scratch / name
    folder.mkdir(parents=True)
    manifest = read_manifest(base)
    shutil.copyfile(base / manifest.tokenizer, folder / manifest.tokenizer)
    rel = f"onnx/{name}.onnx"
    (folder / "onnx").mkdir()
    shutil.copyfile(graph, folder / rel)
    files = {manifest.tokenizer: manifest.files[manifest.tokenizer], rel: file_entry(folder / rel)}
    variants = {v: Variant(rel, quantization=recipe) for v in ("fp32", "avx2", "avx512_vnni", "arm64")}
    dataclasses.replace(manifest, files=files, variants=variants).write(folder)
    return folder


def _dynamic_twin(recipe: Quantization, fp32: Path, out: Path) -> Path:
    """The dynamic graph a static variant was made from: same weights, exclusions and preset."""
    from export import quantize as q

    preset = q.Preset(recipe.variant, out.name, recipe.weight_type, recipe.per_channel, recipe.reduce_range, recipe.why)
    q.quantize(fp32, out, preset, recipe.quantize_embeddings, recipe.excluded_nodes)
    return out


def build(model_dir: Path, scratch: Path, schemes: list[str], languages: tuple[str, ...]) -> dict[str, Path]:
    """Scheme name → a model folder serving that scheme's graph."""
    from export import static_quant
    from export.validation import validation_set

    manifest = read_manifest(model_dir)
    here = cpu.choose_variant(cpu.detect(), set(manifest.variants) - {"fp32"}, None).variant
    graph, recipe = model_dir / manifest.variants[here].file, manifest.variants[here].quantization
    fp32 = model_dir / manifest.variants["fp32"].file if "fp32" in manifest.variants else None
    out: dict[str, Path] = {}
    if fp32 is not None and fp32 != graph:
        out["fp32"] = _with_graph(model_dir, scratch, "fp32", fp32, None)
    if recipe.mode == static_quant.SCHEME:  # an export of today: rebuild its dynamic twin
        if fp32 is None:
            raise SystemExit(f"{model_dir}: a static graph and no fp32 graph to rebuild its dynamic twin from")
        static, dynamic = graph, _dynamic_twin(recipe, fp32, scratch / "dynamic.onnx")
        dynamic_recipe = static_quant.as_dynamic(recipe)
    else:
        static, dynamic, dynamic_recipe = None, graph, recipe
    if "dynamic" in schemes:
        out["dynamic"] = _with_graph(model_dir, scratch, "dynamic", dynamic, dynamic_recipe)
    if "static" in schemes:
        if static is None:
            vset = validation_set(languages, 40, 16)  # type: ignore[arg-type]
            pairs = static_quant.calibration_pairs(languages, vset)  # type: ignore[arg-type]
            static = scratch / "static.onnx"
            recipe = static_quant.as_static(recipe, static_quant.quantize_static(
                dynamic, static, model_dir / manifest.tokenizer, manifest.max_length, pairs))
        out["static"] = _with_graph(model_dir, scratch, "static", static, recipe)
    for bits in (8, 4):
        if f"nbits{bits}" in schemes and fp32 is not None:
            from export import block_quant

            nbits = scratch / f"nbits{bits}.onnx"
            extra = block_quant.quantize_blockwise(fp32, nbits, bits)
            nbits_recipe = Quantization("avx2", "qint8", mode=extra.pop("mode"), extra=extra)
            out[f"nbits{bits}"] = _with_graph(model_dir, scratch, f"nbits{bits}", nbits, nbits_recipe)
    return out


def measure(folders: dict[str, Path], languages: tuple[str, ...], queries: int, rounds: int,
            spread_queries: int = 6) -> dict[str, dict[str, Any]]:
    from export.batch_independence import spread_on_queries
    from export.validation import ranking_agreement, validation_set

    vset = validation_set(languages, queries, 16)  # type: ignore[arg-type]
    results: dict[str, dict[str, Any]] = {n: {"load_s": [], "pairs_per_s": []} for n in folders}
    scores: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, folder in folders.items():  # interleaved: each round visits every scheme
            start = time.perf_counter()
            reranker = Reranker(folder, variant="avx2", threads=2)
            results[name]["load_s"].append(time.perf_counter() - start)
            start = time.perf_counter()
            scores[name] = np.asarray(reranker.predict(vset.pairs))
            results[name]["pairs_per_s"].append(len(vset.pairs) / (time.perf_counter() - start))
    truth = "fp32" if "fp32" in folders else "dynamic"
    for name, folder in folders.items():
        r = results[name]
        r["load_s"] = round(statistics.median(r["load_s"]), 3)
        r["pairs_per_s"] = round(statistics.median(r["pairs_per_s"]), 1)
        manifest = read_manifest(folder)
        r["size_mb"] = round(sum(e.size for k, e in manifest.files.items() if k.endswith(".onnx")) / 1e6, 1)
        r[f"vs_{truth}"] = ranking_agreement(scores[truth], scores[name], vset.groups)
        reranker = Reranker(folder, variant="avx2", threads=2)
        r["batch"] = spread_on_queries(reranker.predict, vset.pairs, vset.groups, spread_queries)
    return results


def compare_in_child(model_dir: Path, quick: bool) -> dict[str, Any]:
    """The bench's check that today's static graphs are no slower than the dynamic ones they replace:
    both in one fresh process, rounds interleaved (a child, so the export stage stays out of the bench)."""
    import subprocess

    from .procs import CHILD_ENV, REPO

    with tempfile.TemporaryDirectory(prefix="quant-schemes-") as tmp:
        out = Path(tmp) / "schemes.json"
        argv = [sys.executable, "-m", "bench.quant_schemes", str(model_dir), "--schemes", "dynamic,static",
                "--queries", "2" if quick else "8", "--rounds", "1" if quick else "5", "--json", str(out)]
        done = subprocess.run(argv, cwd=REPO, env=CHILD_ENV, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {"failed": (done.stderr.strip().splitlines() or ["no output"])[-1]}
        return json.loads(out.read_text(encoding="utf-8"))["results"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quant_schemes", description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--schemes", default="dynamic,static,nbits8,nbits4")
    p.add_argument("--languages", default="en")
    p.add_argument("--queries", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    languages = tuple(args.languages.split(","))
    with tempfile.TemporaryDirectory(prefix="quant-schemes-") as tmp:
        folders = build(args.model_dir, Path(tmp), args.schemes.split(","), languages)
        results = measure(folders, languages, args.queries, args.rounds)
    text = json.dumps({"model": str(args.model_dir), "host": cpu.detect().arch, "results": results}, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
