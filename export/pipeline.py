"""The export, step by step: checkpoint → validated fp32 graph → measured int8 variants → model directory.

Everything is written into a staging folder beside the destination (``store.staged``) and swapped in
only when every check passed, so an interrupted or failed export never leaves a half-written model
and never touches the previous one. Candidate graphs are scored through the runtime's ``Scorer``;
the int8 choice itself is ``select.py``.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from reranker_onnx.manifest import Manifest, Variant, file_entry
from reranker_onnx.registry import Recipe
from reranker_onnx.store import staged

from .convert import fuse, graph_inputs, to_onnx
from .families import ExportError, Family, detect_family, max_length_of, read_config
from .reference import reference_scores
from . import static_quant
from .select import Graphs, Trials, select_variants
from .tokenizer import write_tokenizer
from .validation import FP32_TOLERANCE, INT8_MIN_NDCG_RATIO, ValidationSet, max_length_pairs, validation_set
from .versions import tool_versions

log = logging.getLogger(__name__)

FP32_FILE = "onnx/model.onnx"
TOKENIZER_FILE = "tokenizer.json"
TOOLS = ("torch", "transformers", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "sentence-transformers")


@dataclass
class ExportOptions:
    name: str
    source: dict[str, Any]  # {"repo", "revision"} or {"path"}
    max_length: int | None = None
    gate: bool = True  # real weights: fail unless avx2/arm64 keep NDCG@10 ≥ 0.99 of fp32
    recipe: Recipe = field(default_factory=Recipe)  # languages, int8 embeddings, opset: the lock's, else defaults
    family: str | None = None  # what models.lock says; the export fails if the checkpoint is another
    activation: str | None = None  # likewise for the reference's activation
    queries_per_language: int = 12  # validation size: 12 queries × 16 passages per language
    group_size: int = 16
    threads: int = 2
    static_scales: bool = True  # int8 activation scales fixed from calibration text (batch independent)
    progress: Callable[[str], None] = field(default=lambda message: log.info("%s", message))


@dataclass
class ExportResult:
    directory: Path
    manifest: Manifest
    report: dict[str, Any]


def _check_paths(checkpoint: Path, output: Path) -> None:
    c, o = checkpoint.resolve(), output.resolve()
    if c == o or c in o.parents or o in c.parents:
        raise ExportError(f"the output directory {output} must not be or contain the checkpoint {checkpoint}")


def _expect(what: str, derived: str, locked: str | None) -> None:
    if locked is not None and derived != locked:
        raise ExportError(f"models.lock says {what} {locked!r}, but the checkpoint gives {derived!r}; "
                          "correct the lock (nothing was written)")


def export_model(checkpoint: Path, output: Path, options: ExportOptions) -> ExportResult:
    """Export ``checkpoint`` into the model directory ``output``; see the module docstring."""
    checkpoint, output = Path(checkpoint), Path(output)
    _check_paths(checkpoint, output)
    config = read_config(checkpoint)
    family = detect_family(config)
    _expect("family", family.name, options.family)
    max_length = max_length_of(config, family, options.max_length)
    with staged(output) as tmp:
        manifest, report = _build(checkpoint, tmp, options, config, family, max_length)
    return ExportResult(output, manifest, report)


def _build(checkpoint: Path, root: Path, opts: ExportOptions, config: dict, family: Family,
           max_length: int) -> tuple[Manifest, dict]:
    say = opts.progress
    started = time.perf_counter()
    graphs = Graphs(root, TOKENIZER_FILE, max_length, opts.threads)

    say(f"[1/6] tokenizer and fp32 graph ({family.name}, max_length {max_length})")
    write_tokenizer(checkpoint, family, root / TOKENIZER_FILE)
    to_onnx(checkpoint, family, root / FP32_FILE, opts.recipe.opset)
    inputs = graph_inputs(root / FP32_FILE)
    if set(inputs) - set(family.inputs):
        raise ExportError(f"the graph takes {inputs}, expected {family.inputs}")

    vset: ValidationSet = validation_set(opts.recipe.languages, opts.queries_per_language, opts.group_size)  # type: ignore[arg-type]
    longest = max_length_pairs(root / TOKENIZER_FILE, vset.languages, max_length)
    checked = vset.pairs + longest
    say(f"[2/6] PyTorch reference on {len(checked)} real pairs ({', '.join(vset.languages)}; "
        f"{len(longest)} cut at {max_length} tokens)")
    reference = reference_scores(checkpoint, family, checked, max_length)
    _expect("activation", reference.activation, opts.activation)
    plain_diff = float(np.max(np.abs(graphs.logits(FP32_FILE, checked)[0] - reference.logits)))
    say(f"      fp32 ONNX vs PyTorch: max |Δ| = {plain_diff:.2e} (tolerance {FP32_TOLERANCE:g})")
    if not plain_diff <= FP32_TOLERANCE:
        raise ExportError(
            f"validation failed: the fp32 graph differs from PyTorch by {plain_diff:.3g} > {FP32_TOLERANCE:g}; "
            "no model directory was written"
        )
    fp32 = Variant(FP32_FILE, fidelity={"max_abs_diff_vs_torch": plain_diff, "pairs": len(checked),
                                        "max_length_pairs": len(longest)})

    say("[3/6] graph fusion (kept only if it still matches PyTorch)")
    fusion = _try_fusion(graphs, family, config, checked, reference.logits)
    baseline = graphs.logits(FP32_FILE, vset.pairs)[0]

    say("[4/6] int8 variants")
    calibration = static_quant.calibration_pairs(vset.languages, vset) if opts.static_scales else []  # type: ignore[arg-type]
    trials = Trials(graphs, FP32_FILE, vset, baseline, say, calibration=calibration)
    embed = [opts.recipe.quantize_embeddings] if opts.recipe.quantize_embeddings is not None else [True, False]
    variants = {"fp32": fp32, **select_variants(trials, embed, opts.gate)}

    say("[5/6] fidelity gate")
    for name in ("avx2", "arm64") if opts.gate else ():
        ndcg = variants[name].fidelity["ndcg_at_10"]
        if ndcg < INT8_MIN_NDCG_RATIO:
            raise ExportError(
                f"validation failed: the {name} variant keeps NDCG@10 {ndcg:.4f} of fp32 "
                f"(< {INT8_MIN_NDCG_RATIO}); no model directory was written"
            )

    say("[6/6] manifest")
    files = _share_identical(root, variants)
    manifest = Manifest(
        name=opts.name, family=family.name, source=opts.source, inputs=graph_inputs(root / FP32_FILE), max_length=max_length,
        activation=reference.activation, tokenizer=TOKENIZER_FILE,  # type: ignore[arg-type]
        files={rel: files.get(rel) or file_entry(root / rel) for rel in sorted({TOKENIZER_FILE, *files})},
        variants=variants,
        export={"tools": tool_versions(TOOLS), "gate": opts.gate,
                "validation": {"pairs": len(vset.pairs), "queries": len(vset.groups), "languages": list(vset.languages)},
                "fusion": {k: v for k, v in fusion.items() if not k.endswith("_s")},
                "architecture": _architecture(config, family)},
    )
    manifest.write(root)
    report = {"family": family.name, "max_length": max_length, "fp32": fp32.fidelity, "fusion": fusion,
              "variants": trials.log, "activation": reference.activation,
              "sizes": {rel: e.size for rel, e in manifest.files.items()},
              "seconds": round(time.perf_counter() - started, 1)}
    return manifest, report


def _architecture(config: dict, family: Family) -> dict[str, Any]:
    """The shape the runtime's memory estimate needs (reranker_onnx/memory.py)."""
    from .jinabert import DEFAULT_ATTENTION_BLOCK

    keys = {"layers": "num_hidden_layers", "heads": "num_attention_heads", "hidden": "hidden_size",
            "intermediate": "intermediate_size"}  # fmt: skip
    if not all(isinstance(config.get(k), int) for k in keys.values()):
        return {}  # the runtime then assumes a large shape
    shape: dict[str, Any] = {ours: config[theirs] for ours, theirs in keys.items()}
    shape["attention_block"] = DEFAULT_ATTENTION_BLOCK if family.name == "jinabert" else None
    return shape


def _try_fusion(graphs: Graphs, family: Family, config: dict, pairs: list[tuple[str, str]],
                reference: np.ndarray) -> dict[str, Any]:
    root, fused_rel = graphs.root, "onnx/model_fused.onnx"
    try:
        fused = fuse(root / FP32_FILE, root / fused_rel, family, config)
    except Exception as exc:  # the optimizer does not know every graph; the plain one is still valid
        log.warning("fusion failed, keeping the plain graph: %s", exc)
        return {"applied": False, "why": f"optimizer failed: {exc}"}
    if fused is None:
        return {"applied": False, "why": f"no fusion recipe for {family.name}"}
    diff = float(np.max(np.abs(graphs.logits(fused_rel, pairs)[0] - reference)))
    sample = pairs[:64]
    plain_s, fused_s = (statistics.median(graphs.logits(rel, sample)[1] for _ in range(3)) for rel in (FP32_FILE, fused_rel))
    outcome = {"max_abs_diff_vs_torch": diff, "plain_s": round(plain_s, 4), "fused_s": round(fused_s, 4)}
    # Kept whenever it validates, so re-exports are reproducible; the timings are reported, not used.
    if diff <= FP32_TOLERANCE:
        os.replace(root / fused_rel, root / FP32_FILE)
        return {"applied": True, **outcome}
    (root / fused_rel).unlink()
    return {"applied": False, "why": "not within tolerance", **outcome}


def _share_identical(root: Path, variants: dict[str, Variant]) -> dict:
    """Variants whose graphs are byte-identical (arm64 and avx512_vnni usually are) share one file;
    returns the hash entry of each graph kept, and removes every other file under onnx/."""
    entries: dict[str, Any] = {}
    by_hash: dict[str, str] = {}
    for name, variant in sorted(variants.items()):
        entry = entries.get(variant.file) or file_entry(root / variant.file)
        if entry.sha256 in by_hash and by_hash[entry.sha256] != variant.file:
            variants[name] = Variant(by_hash[entry.sha256], variant.quantization, variant.fidelity)
        else:
            by_hash[entry.sha256] = variant.file
            entries[variant.file] = entry
    for path in (root / "onnx").iterdir():  # candidates not kept, and duplicates just shared
        if f"onnx/{path.name}" not in entries:
            path.unlink()
    return entries
