"""Slim an exported model directory into the one that ships inside the package.

    python -m export.bundle EXPORTED_DIR [--graph avx2] [--out reranker_onnx/models/default]
                            [--lock models.lock --training CHECKPOINT/training.json]

A wheel has no room for every graph: the fp32 graph alone of a MiniLM-size model is 91 MB, and two
int8 graphs with their own copy of the embeddings are ~50 MB. The bundle keeps the tokenizer and ONE
int8 graph, served as every CPU variant. That is correct, not only small: the graph kept is the
``avx2`` one, whose weights were chosen so that no int8 kernel can saturate (reduced-range or uint8
weights), so it computes the same integer sums on AVX2, on VNNI and on ARM's 32-bit-accumulating
kernels, and the fidelity measured at export holds on all of them. What it costs is the precision
the full-range ``arm64``/``avx512_vnni`` graphs would add on those CPUs; the export's report has
both numbers. There is no fp32 graph: a CPU outside the table (x86 without AVX2) gets the ``avx2``
graph too (``cpu.choose_variant``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from reranker_onnx.errors import RerankerError
from reranker_onnx.manifest import Manifest, Variant, VerifiedFiles, file_entry, load_verified, read_manifest
from reranker_onnx.registry import LockEntry, load_lock
from reranker_onnx.store import bundled_dir, staged

from .families import ExportError
from .lockfile import artifacts_of, record

SIZE_BUDGET = 40_000_000  # bytes: everything shipped for the default model
SERVED_AS = ("avx2", "avx512_vnni", "arm64")
DEFAULT_OUT = bundled_dir() / "default"


def bundle(exported: Path, out: Path = DEFAULT_OUT, graph: str = "avx2", budget: int = SIZE_BUDGET) -> Manifest:
    """Copy the tokenizer and the ``graph`` variant's file (hash-checked) into ``out``, atomically."""
    exported, out = Path(exported), Path(out)
    full = read_manifest(exported)
    if graph not in full.variants or graph == "fp32":
        raise ExportError(f"{exported} has no int8 variant {graph!r}; it has {', '.join(sorted(full.variants))}")
    kept = full.variants[graph]
    names = (full.tokenizer, kept.file)
    size = sum(full.files[n].size for n in names)
    if size > budget:
        raise ExportError(f"the bundle would be {size / 1e6:.1f} MB, over its {budget / 1e6:.0f} MB budget")
    with staged(out) as tmp:
        cache = VerifiedFiles()
        for name in names:
            data = load_verified(exported, name, full.files[name], cache)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, Path):
                shutil.copyfile(data, tmp / name)
            else:
                (tmp / name).write_bytes(data)
        note = (f"one graph for every CPU: the {graph} graph, whose weights cannot saturate any int8 kernel; "
                f"fidelity measured on the export host")
        where = full.source if "repo" in full.source else {  # not a path on the machine that built it
            "trained": "python -m training.default_model", "provenance": f"models.lock: {full.name}"}
        manifest = Manifest(
            name=full.name, family=full.family, source=where, inputs=full.inputs,
            max_length=full.max_length, activation=full.activation, tokenizer=full.tokenizer,
            files={n: full.files[n] for n in names},  # load_verified checked the copied bytes against these
            variants={v: Variant(kept.file, kept.quantization, kept.fidelity) for v in SERVED_AS},
            output=full.output,
            export={**full.export, "bundle": {"graph": graph, "why": note,
                                              "dropped": sorted(set(full.files) - set(names))}},
        )
        manifest.write(tmp)
    return manifest


def provenance(training_json: Path) -> dict:
    """What the checkpoint was made from, condensed from its ``training.json``, plus its own hash."""
    record = json.loads(Path(training_json).read_text(encoding="utf-8"))
    checkpoint = Path(training_json).parent
    base = dict(record["base"])
    weights = Path(base.pop("path", "")) / "model.safetensors"  # the path means nothing elsewhere; its hash does
    if weights.is_file():
        base["model.safetensors_sha256"] = file_entry(weights).sha256
    return {
        "base": base,
        "script": "python -m training.default_model (training/), config recorded here",
        "config": record["config"],
        "versions": record["versions"],
        "data": record["data"],
        "split": record["split"],
        "examples": {k: record["examples"][k] for k in ("queries", "pairs") if k in record["examples"]},
        "train": {k: record["train"][k] for k in ("steps", "pairs_seen", "seconds", "pairs_per_s") if k in record["train"]},
        "checkpoint_sha256": {"model.safetensors": file_entry(checkpoint / "model.safetensors").sha256},
    }


def _recorded_provenance(lock: Path | None, exported: Path) -> dict | None:
    if lock is None:
        return None
    name = read_manifest(exported).name
    entry = load_lock(lock).get(name)
    if entry is None or not entry.provenance:
        raise ExportError(f"{lock} records no provenance for {name}: give --training")
    return entry.provenance


def record_in_lock(lock: Path, manifest: Manifest, out: Path, origin: dict) -> None:
    """Pin the bundled files and their provenance under the manifest's name in ``models.lock``."""
    old = load_lock(lock).get(manifest.name)
    where = str(out.relative_to(Path(__file__).resolve().parents[1])) if out.is_absolute() else str(out)
    record(lock, LockEntry(
        name=manifest.name, repo=None, revision=None, license="Apache-2.0", family=manifest.family,
        max_length=manifest.max_length, activation=manifest.activation, recipe=old.recipe if old else None,
        notes="trained in this project (training/) and shipped inside the package; nothing to fetch or pull",
        provenance=origin, artifacts=artifacts_of(out, manifest, bundled=where),
    ))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.bundle", description=__doc__.splitlines()[0])
    p.add_argument("exported", type=Path, help="a model directory written by python -m export")
    p.add_argument("--graph", default="avx2", help="the int8 variant to ship (default avx2)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--lock", type=Path, help="models.lock to record the bundle in (with --training)")
    p.add_argument("--training", type=Path, help="the checkpoint's training.json, for the provenance "
                   "(without it, --lock keeps the provenance the lock already records: same checkpoint, new graph)")
    args = p.parse_args(argv)
    if args.training is not None and args.lock is None:
        print("bundle: error: --training needs --lock", file=sys.stderr)
        return 2
    try:
        origin = provenance(args.training) if args.training else _recorded_provenance(args.lock, args.exported)
        manifest = bundle(args.exported, args.out, args.graph)
        if args.lock and origin is not None:
            record_in_lock(args.lock, manifest, args.out.resolve(), origin)
    except (ExportError, RerankerError, OSError, KeyError, ValueError) as exc:
        print(f"bundle: error: {exc}", file=sys.stderr)
        return 1
    total = sum(e.size for e in manifest.files.values())
    print(f"bundled {manifest.name} into {args.out}: {total / 1e6:.1f} MB, variants {', '.join(SERVED_AS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
