"""The export, step by step: checkpoint → validated fp32 graph → measured int8 variants → model directory.

Everything is written into a temporary folder beside the destination and renamed into place only
when every check passed, so an interrupted or failed export never leaves a half-written model and
never touches the previous one.
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

from reranker_onnx import cpu
from reranker_onnx.manifest import FileEntry, Manifest, Variant, file_entry
from reranker_onnx.scoring import Scorer
from reranker_onnx.store import staged

from . import quantize as q
from .convert import fuse, graph_inputs, to_onnx
from .families import ExportError, Family, detect_family, max_length_of, read_config
from .reference import reference_scores
from .tokenizer import write_tokenizer
from .validation import FP32_TOLERANCE, INT8_MIN_NDCG_RATIO, ValidationSet, ranking_agreement, validation_set
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
    quantize_embeddings: bool | None = None  # None: measure and decide
    languages: tuple[str, ...] = ("en", "ja")
    queries_per_language: int = 12  # validation size: 12 queries × 16 passages per language
    group_size: int = 16
    threads: int = 2
    progress: Callable[[str], None] = field(default=lambda message: log.info("%s", message))


@dataclass
class ExportResult:
    directory: Path
    manifest: Manifest
    report: dict[str, Any]


class _Workspace:
    """The temporary model directory being built, with a manifest rewritten as variants are tried."""

    def __init__(self, root: Path, name: str, family: Family, source: dict, max_length: int) -> None:
        self.root, self.name, self.family, self.source, self.max_length = root, name, family, source, max_length
        self._entries: dict[str, FileEntry] = {}
        self.host = cpu.detect()

    def entry(self, rel: str) -> FileEntry:
        if rel not in self._entries:
            self._entries[rel] = file_entry(self.root / rel)
        return self._entries[rel]

    def forget(self, rel: str) -> None:
        self._entries.pop(rel, None)

    def manifest(self, variants: dict[str, Variant], activation: str, export: dict | None = None) -> Manifest:
        files = {rel: self.entry(rel) for rel in sorted({TOKENIZER_FILE, *(v.file for v in variants.values())})}
        manifest = Manifest(
            name=self.name, family=self.family.name, source=self.source,
            inputs=graph_inputs(self.root / variants["fp32"].file), max_length=self.max_length,
            activation=activation, tokenizer=TOKENIZER_FILE, files=files, variants=variants, export=export or {},
        )
        manifest.write(self.root)
        return manifest

    def scores(self, variants: dict[str, Variant], variant: str, pairs: list[tuple[str, str]],
               threads: int, session_config: dict[str, str] | None = None) -> tuple[np.ndarray, float]:
        """Raw logits of ``variant`` through the runtime's own scorer, and seconds taken."""
        chosen = variants[variant]
        scorer = Scorer.from_files(
            self.root / chosen.file, self.root / TOKENIZER_FILE, max_length=self.max_length, threads=threads,
            exact_int8=cpu.needs_exact_int8(self.host, chosen.quantization), session_config=session_config)
        start = time.perf_counter()
        logits = scorer.logits(pairs)
        return logits, time.perf_counter() - start


def _speed(ws: _Workspace, variants: dict[str, Variant], variant: str, pairs: list[tuple[str, str]],
           threads: int, repeats: int = 3) -> float:
    return statistics.median(ws.scores(variants, variant, pairs, threads)[1] for _ in range(repeats))


def _size(path: Path) -> int:
    return path.stat().st_size


def _check_paths(checkpoint: Path, output: Path) -> None:
    c, o = checkpoint.resolve(), output.resolve()
    if c == o or c in o.parents or o in c.parents:
        raise ExportError(f"the output directory {output} must not be or contain the checkpoint {checkpoint}")


def export_model(checkpoint: Path, output: Path, options: ExportOptions) -> ExportResult:
    """Export ``checkpoint`` into the model directory ``output``; see the module docstring."""
    checkpoint, output = Path(checkpoint), Path(output)
    _check_paths(checkpoint, output)
    config = read_config(checkpoint)
    family = detect_family(config)
    max_length = max_length_of(config, family, options.max_length)
    with staged(output) as tmp:
        result = _build(checkpoint, tmp, options, config, family, max_length)
    return ExportResult(output, result[0], result[1])


def _build(checkpoint: Path, root: Path, opts: ExportOptions, config: dict, family: Family,
           max_length: int) -> tuple[Manifest, dict]:
    say = opts.progress
    started = time.perf_counter()
    ws = _Workspace(root, opts.name, family, opts.source, max_length)
    report: dict[str, Any] = {"family": family.name, "max_length": max_length}

    say(f"[1/6] tokenizer and fp32 graph ({family.name}, max_length {max_length})")
    write_tokenizer(checkpoint, family, root / TOKENIZER_FILE)
    to_onnx(checkpoint, family, root / FP32_FILE)
    expected_inputs = set(family.inputs)
    if set(graph_inputs(root / FP32_FILE)) - expected_inputs:
        raise ExportError(f"the graph takes {graph_inputs(root / FP32_FILE)}, expected {family.inputs}")

    vset: ValidationSet = validation_set(opts.languages, opts.queries_per_language, opts.group_size)  # type: ignore[arg-type]
    say(f"[2/6] PyTorch reference on {len(vset.pairs)} real pairs ({', '.join(vset.languages)})")
    reference = reference_scores(checkpoint, family, vset.pairs, max_length)
    fp32 = {"fp32": Variant(FP32_FILE)}
    plain, plain_s = ws.scores(fp32, "fp32", vset.pairs, opts.threads)
    plain_diff = float(np.max(np.abs(plain - reference.logits)))
    say(f"      fp32 ONNX vs PyTorch: max |Δ| = {plain_diff:.2e} (tolerance {FP32_TOLERANCE:g})")
    if not plain_diff <= FP32_TOLERANCE:
        raise ExportError(
            f"validation failed: the fp32 graph differs from PyTorch by {plain_diff:.3g} > {FP32_TOLERANCE:g}; "
            "no model directory was written"
        )
    report["fp32"] = {"max_abs_diff_vs_torch": plain_diff, "pairs": len(vset.pairs)}

    say("[3/6] graph fusion (kept only if it still matches PyTorch)")
    report["fusion"] = _try_fusion(ws, family, config, root, vset, reference.logits, opts.threads)
    baseline = ws.scores(fp32, "fp32", vset.pairs, opts.threads)[0]

    say("[4/6] int8 variants")
    variants, fidelity = _quantize_all(ws, root, vset, baseline, opts, say)
    report["variants"] = fidelity

    say("[5/6] fidelity gate")
    if opts.gate:
        for name in ("avx2", "arm64"):
            ndcg = variants[name].fidelity["ndcg_at_10"]
            if ndcg < INT8_MIN_NDCG_RATIO:
                raise ExportError(
                    f"validation failed: the {name} variant keeps NDCG@10 {ndcg:.4f} of fp32 "
                    f"(< {INT8_MIN_NDCG_RATIO}); no model directory was written"
                )

    say("[6/6] manifest")
    fp32_variant = Variant(FP32_FILE, fidelity={"max_abs_diff_vs_torch": report["fp32"]["max_abs_diff_vs_torch"],
                                                "pairs": len(vset.pairs)})
    all_variants = {"fp32": fp32_variant, **variants}
    for path in (root / "onnx").iterdir():  # drop candidates that were not kept
        rel = f"onnx/{path.name}"
        if rel not in {v.file for v in all_variants.values()}:
            path.unlink()
            ws.forget(rel)
    export_info = {
        "tools": tool_versions(TOOLS),
        "gate": opts.gate,
        "validation": {"pairs": len(vset.pairs), "queries": len(vset.groups), "languages": list(vset.languages)},
        "fusion": {k: v for k, v in report["fusion"].items() if not k.endswith("_s")},
        "architecture": _architecture(config, family),
    }
    manifest = ws.manifest(all_variants, reference.activation, export_info)
    report["activation"] = reference.activation
    report["sizes"] = {rel: e.size for rel, e in manifest.files.items()}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return manifest, report


def _architecture(config: dict, family: Family) -> dict[str, Any]:
    """The shape the runtime's memory estimate needs (reranker_onnx/memory.py)."""
    from .jinabert import DEFAULT_ATTENTION_BLOCK

    keys = {"layers": "num_hidden_layers", "heads": "num_attention_heads", "hidden": "hidden_size",
            "intermediate": "intermediate_size"}  # fmt: skip
    if not all(isinstance(config.get(k), int) for k in keys.values()):
        return {}  # the runtime then assumes a large shape
    shape: dict[str, Any] = {ours: config[theirs] for ours, theirs in keys.items()}
    shape["attention_block"] = DEFAULT_ATTENTION_BLOCK if family.converter == "jinabert" else None
    return shape


def _try_fusion(ws: _Workspace, family: Family, config: dict, root: Path, vset: ValidationSet,
                reference: np.ndarray, threads: int) -> dict[str, Any]:
    fused_rel = "onnx/model_fused.onnx"
    try:
        fused = fuse(root / FP32_FILE, root / fused_rel, family, config)
    except Exception as exc:  # the optimizer does not know every graph; the plain one is still valid
        log.warning("fusion failed, keeping the plain graph: %s", exc)
        return {"applied": False, "why": f"optimizer failed: {exc}"}
    if fused is None:
        return {"applied": False, "why": f"no fusion recipe for {family.name}"}
    fp32, fused_variants = {"fp32": Variant(FP32_FILE)}, {"fp32": Variant(fused_rel)}
    logits = ws.scores(fused_variants, "fp32", vset.pairs, threads)[0]
    diff = float(np.max(np.abs(logits - reference)))
    sample = vset.pairs[: min(64, len(vset.pairs))]
    plain_s = _speed(ws, fp32, "fp32", sample, threads)
    fused_s = _speed(ws, fused_variants, "fp32", sample, threads)
    outcome = {"max_abs_diff_vs_torch": diff, "plain_s": round(plain_s, 4), "fused_s": round(fused_s, 4)}
    # Kept whenever it validates, so re-exports are reproducible; the timings are reported, not used.
    if diff <= FP32_TOLERANCE:
        os.replace(root / fused_rel, root / FP32_FILE)
        ws.forget(FP32_FILE)
        ws.forget(fused_rel)
        return {"applied": True, **outcome}
    (root / fused_rel).unlink()
    ws.forget(fused_rel)
    return {"applied": False, "why": "not within tolerance", **outcome}


def _measure(ws: _Workspace, name: str, rel: str, recipe: dict, vset: ValidationSet, baseline: np.ndarray,
             threads: int, session_config: dict[str, str] | None = None) -> dict[str, Any]:
    variants = {"fp32": Variant(FP32_FILE), name: Variant(rel, quantization=recipe)}
    logits, _ = ws.scores(variants, name, vset.pairs, threads, session_config)
    return {**ranking_agreement(baseline, logits, vset.groups), "size": _size(ws.root / rel)}


@dataclass
class _Candidate:
    preset: q.Preset
    embed: bool
    keep_fp32: tuple[str, ...]
    rel: str
    recipe: dict
    fidelity: dict

    @property
    def label(self) -> str:
        kind = f"{self.preset.weight_type}{'-rr' if self.preset.reduce_range else ''}"
        return f"{self.preset.variant}:{kind}:{'emb' if self.embed else 'noemb'}:fp32-nodes={len(self.keep_fp32)}"


def _candidate(ws: _Workspace, preset: q.Preset, embed: bool, keep_fp32: tuple[str, ...], vset: ValidationSet,
               baseline: np.ndarray, threads: int, measured: dict[tuple, dict]) -> _Candidate:
    """Quantize one configuration and measure it; an identical configuration (arm64 and avx512_vnni
    share their arithmetic) gives an identical graph, so its measurement is reused."""
    rel = preset.file.replace(".onnx", f".{'e' if embed else 'n'}{len(keep_fp32)}.candidate.onnx")
    recipe = q.quantize(ws.root / FP32_FILE, ws.root / rel, preset, embed, keep_fp32)
    ws.forget(rel)
    key = (preset.weight_type, preset.per_channel, preset.reduce_range, embed, keep_fp32)
    if key not in measured:
        measured[key] = _measure(ws, preset.variant, rel, recipe, vset, baseline, threads)
    return _Candidate(preset, embed, keep_fp32, rel, recipe, measured[key])


def _sensitivity(ws: _Workspace, vset: ValidationSet, baseline: np.ndarray, embed: bool, threads: int) -> list[str]:
    """Quantizable nodes, most harmful first: each is quantized alone (full-range int8, exact kernel)
    and scored by the mean |Δ logit| it causes on a few query groups."""
    probe = ValidationSet([vset.pairs[i] for g in vset.groups[:4] for i in g], [], vset.languages)
    reference = baseline[[i for g in vset.groups[:4] for i in g]]
    rel = "onnx/sensitivity.candidate.onnx"
    harm = {}
    for node in q.quantizable_nodes(ws.root / FP32_FILE, embed):
        recipe = q.quantize(ws.root / FP32_FILE, ws.root / rel, q.ARM64, embed, only=(node,))
        ws.forget(rel)
        variants = {"fp32": Variant(FP32_FILE), "arm64": Variant(rel, quantization=recipe)}
        logits, _ = ws.scores(variants, "arm64", probe.pairs, threads)
        harm[node] = float(np.mean(np.abs(logits - reference)))
    (ws.root / rel).unlink(missing_ok=True)
    return sorted(harm, key=lambda n: -harm[n])


EXCLUSION_STEPS = (1, 2, 4, 8, 16)  # how many of the most sensitive nodes to keep fp32, tried in turn


def _quantize_all(ws: _Workspace, root: Path, vset: ValidationSet, baseline: np.ndarray,
                  opts: ExportOptions, say: Callable[[str], None]) -> tuple[dict[str, Variant], dict]:
    embed_choices = [opts.quantize_embeddings] if opts.quantize_embeddings is not None else [True, False]
    measured: dict[str, dict] = {}
    chosen: dict[str, Variant] = {}
    ranking: list[str] | None = None
    memo: dict[tuple, dict] = {}

    def note(c: _Candidate) -> _Candidate:
        f = c.fidelity
        say(f"      {c.label:<44} NDCG@10 {f['ndcg_at_10']:.4f}  spearman {f['spearman']:.4f}  "
            f"top1 {f['top1_agreement']:.3f}  {f['size'] / 1e6:.1f} MB")
        measured[c.label] = f
        return c

    for group in (q.AVX2_CANDIDATES, (q.AVX512_VNNI,), (q.ARM64,)):
        best = _pick([note(_candidate(ws, p, e, (), vset, baseline, opts.threads, memo)) for p in group for e in embed_choices],
                     opts.gate)
        if opts.gate and best.fidelity["ndcg_at_10"] < INT8_MIN_NDCG_RATIO:
            if ranking is None:
                say("      below the gate: ranking nodes by how much quantizing each one alone hurts")
                ranking = _sensitivity(ws, vset, baseline, best.embed, opts.threads)
            for k in EXCLUSION_STEPS:
                if k > len(ranking):
                    break
                best = note(_candidate(ws, best.preset, best.embed, tuple(ranking[:k]), vset, baseline, opts.threads, memo))
                if best.fidelity["ndcg_at_10"] >= INT8_MIN_NDCG_RATIO:
                    break
        os.replace(root / best.rel, root / best.preset.file)
        ws.forget(best.preset.file)
        fidelity = best.fidelity
        if best.preset.variant == "avx512_vnni" and cpu.needs_exact_int8(ws.host, best.recipe):
            # What this variant does on an AVX2 host if run on the fast, saturating u8×s8 kernel.
            raw = _measure(ws, "avx512_vnni", best.preset.file, best.recipe, vset, baseline, opts.threads,
                           {"session.x64quantprecision": "0"})
            fidelity = {**fidelity, "on_avx2_host_without_exact_int8": raw}
            say(f"      avx512_vnni on this AVX2 host with the saturating kernel: NDCG@10 {raw['ndcg_at_10']:.4f}, "
                f"max |Δ| {raw['max_abs_diff']:.3g}")
        chosen[best.preset.variant] = Variant(best.preset.file, quantization=best.recipe, fidelity=fidelity)
    for leftover in root.glob("onnx/*.candidate.onnx"):
        leftover.unlink()
    _share_identical(root, chosen, ws)
    return chosen, measured


# NDCG@10 margins for choosing among int8 candidates measured on a few dozen validation queries, where
# differences of a few thousandths are noise: a smaller file must rank within EMBEDDING_TOLERANCE of the
# larger one; the slower kernel must rank better by KERNEL_TOLERANCE to be preferred.
EMBEDDING_TOLERANCE = 0.002
KERNEL_TOLERANCE = 0.01


def _pick(candidates: list[_Candidate], gate: bool) -> _Candidate:
    """The int8 graph a variant ships: the fastest kernel that ranks within KERNEL_TOLERANCE of the
    best candidate, then the smallest file within EMBEDDING_TOLERANCE of that kernel's best.

    Presets are listed fastest kernel first: on this AVX2 host the u8×s8 kernel of 7-bit weights scored
    MiniLM-L6 pairs 1.16x faster than the u8×u8 kernel of uint8 weights (35.1 against 29.8 pairs/s,
    same weights, paired fresh-process rounds); on a 2-layer, 128-wide model they are even.
    When gated, only candidates that pass the gate compete, if any does.
    """
    passing = [c for c in candidates if c.fidelity["ndcg_at_10"] >= INT8_MIN_NDCG_RATIO]
    pool = passing if gate and passing else candidates
    best = max(c.fidelity["ndcg_at_10"] for c in pool)
    for preset in dict.fromkeys(c.preset for c in pool):
        mine = [c for c in pool if c.preset == preset]
        top = max(c.fidelity["ndcg_at_10"] for c in mine)
        if top >= best - KERNEL_TOLERANCE:
            close = [c for c in mine if c.fidelity["ndcg_at_10"] >= top - EMBEDDING_TOLERANCE]
            return min(close, key=lambda c: c.fidelity["size"])
    raise AssertionError("the best candidate's own preset always qualifies")


def _share_identical(root: Path, chosen: dict[str, Variant], ws: _Workspace) -> None:
    """Variants whose graphs are byte-identical (arm64 and avx512_vnni usually are) share one file."""
    by_hash: dict[str, str] = {}
    for name, variant in sorted(chosen.items()):
        digest = ws.entry(variant.file).sha256  # hashed once; the manifest reuses it
        if digest in by_hash and by_hash[digest] != variant.file:
            (root / variant.file).unlink()
            ws.forget(variant.file)
            chosen[name] = Variant(by_hash[digest], variant.quantization, variant.fidelity)
        else:
            by_hash[digest] = variant.file
