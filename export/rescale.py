"""Give an existing model directory's dynamic int8 graphs fixed activation scales, without the checkpoint.

    python -m export.rescale MODEL_DIR --out NEW_DIR

For a directory exported before the static scheme (the bundled default model is one: its checkpoint
takes half an hour to retrain): every int8 variant whose recipe says ``"mode": "dynamic"`` gets the
same rewrite the export now applies (``static_quant``), calibrated on the same real text, and its
batch spread measured. Weights and kept-fp32 nodes are untouched. Fidelity is re-measured against the
fp32 graph when the directory has one; a bundle has none, so its record keeps the dynamic graph's
fp32 fidelity and adds the new graph's agreement with that dynamic graph; real-label quality is then
``python -m evaluation``'s verdict. The new directory is staged beside NEW_DIR and swapped into place (``store.staged``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from reranker_onnx import Reranker
from reranker_onnx.errors import RerankerError
from reranker_onnx.manifest import Variant, file_entry, read_manifest
from reranker_onnx.store import staged

from . import static_quant
from .batch_independence import spread_on_queries
from .families import ExportError
from .validation import ranking_agreement, validation_set


def rescale(model_dir: Path, out: Path, threads: int = 2) -> dict[str, dict]:
    """Write ``out``; return per variant its new recipe and fidelity."""
    manifest = read_manifest(model_dir)
    dynamic = {n: v for n, v in manifest.variants.items() if v.quantization and v.quantization.mode == "dynamic"}
    if not dynamic:
        raise ExportError(f"{model_dir} has no dynamically quantized variant to rescale")
    languages = tuple(manifest.export.get("validation", {}).get("languages", ["en"]))
    queries = manifest.export.get("validation", {}).get("queries", 12) // max(1, len(languages))
    vset = validation_set(languages, queries, 16)  # type: ignore[arg-type]
    calibration = static_quant.calibration_pairs(languages, vset)  # type: ignore[arg-type]
    with staged(out) as tmp:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        rewritten: dict[str, dict] = {}
        for name in sorted({v.file for v in dynamic.values()}):
            rewritten[name] = static_quant.quantize_static(model_dir / name, tmp / name, tmp / manifest.tokenizer,
                                                           manifest.max_length, calibration, threads)
        files = {**manifest.files, **{name: file_entry(tmp / name) for name in rewritten}}
        fp32 = manifest.variants.get("fp32")
        truth = _scores(model_dir, "fp32", vset.pairs, threads) if fp32 and (model_dir / fp32.file).is_file() else None
        variants = dict(manifest.variants)
        updated = replace(manifest, files=files)
        for name, old in dynamic.items():
            updated.write(tmp)
            recipe = static_quant.as_static(old.quantization, rewritten[old.file])
            variants[name] = Variant(old.file, recipe, old.fidelity)
            updated = replace(updated, variants=variants)
            updated.write(tmp)
            new = _scores(tmp, name, vset.pairs, threads)
            if truth is not None:
                fidelity = {**ranking_agreement(truth, new, vset.groups), "size": files[old.file].size}
            else:
                before = _scores(model_dir, name, vset.pairs, threads)
                fidelity = without_fp32(old.fidelity, ranking_agreement(before, new, vset.groups))
            reranker = Reranker(tmp, variant=name, threads=threads)
            spread = spread_on_queries(reranker.predict, vset.pairs, vset.groups)["max_abs_delta"]
            recipe = static_quant.with_batch_record(recipe, spread)
            variants[name] = Variant(old.file, recipe, fidelity)
            updated = replace(updated, variants=variants)
        updated.write(tmp)
    return {n: {"quantization": variants[n].quantization, "fidelity": variants[n].fidelity} for n in dynamic}


def without_fp32(dynamic_fidelity: dict, vs_dynamic: dict) -> dict:
    """A bundle's record: the dynamic graph's measured fidelity, the new graph's agreement with it, and
    (for checks that need an int8 error scale) a bound on the new graph's error, marked as a bound."""
    return {"dynamic_graph_vs_fp32": dynamic_fidelity, "vs_dynamic_graph": vs_dynamic,
            "max_abs_diff": round(dynamic_fidelity.get("max_abs_diff", 0.0) + vs_dynamic["max_abs_diff"], 6),
            "max_abs_diff_is": "a bound: the dynamic graph's error against fp32 plus this graph's distance "
                               "from the dynamic graph (a bundle has no fp32 graph to measure against)"}


def _scores(directory: Path, variant: str, pairs: list[tuple[str, str]], threads: int) -> np.ndarray:
    return np.asarray(Reranker(directory, variant=variant, threads=threads).predict(pairs), dtype=np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.rescale", description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        result = rescale(args.model_dir, args.out)
    except (ExportError, RerankerError, OSError) as exc:
        print(f"rescale: error: {exc}", file=sys.stderr)
        return 1
    for name, record in sorted(result.items()):
        q = record["quantization"]
        print(f"{name}: {q.extra['static_quantizers']} static quantizers, batch spread {q.batch_spread:g}, "
              f"fidelity {record['fidelity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
