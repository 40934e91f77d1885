"""Choosing each int8 variant's graph: quantize candidates, measure them on real text, pick one.

For every variant, each preset of ``quantize.CANDIDATES`` is tried with and without int8 embeddings
(a :class:`Candidate`, measured by rank agreement with the fp32 graph); :func:`pick` keeps one. When
a gated export misses the bar, :func:`sensitivity` ranks nodes by the harm each does quantized alone,
and the worst are kept fp32, one :data:`EXCLUSION_STEPS` step at a time, until the variant passes.
A new quantization scheme is a new preset in ``quantize.CANDIDATES``; nothing here changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reranker_onnx import cpu
from reranker_onnx.manifest import Quantization, Variant
from reranker_onnx.scoring import Scorer

from . import quantize as q
from . import static_quant
from .batch_independence import spread_on_queries
from .validation import INT8_MIN_NDCG_RATIO, ValidationSet, ranking_agreement

EXCLUSION_STEPS = (1, 2, 4, 8, 16)  # how many of the most sensitive nodes to keep fp32, tried in turn
# NDCG@10 margins for choosing among int8 candidates measured on a few dozen validation queries, where
# differences of a few thousandths are noise: a smaller file must rank within EMBEDDING_TOLERANCE of the
# larger one; the slower kernel must rank better by KERNEL_TOLERANCE to be preferred.
EMBEDDING_TOLERANCE = 0.002
KERNEL_TOLERANCE = 0.01


@dataclass(frozen=True)
class Graphs:
    """Graphs of the model directory being built, scored through the runtime's own Scorer."""

    root: Path
    tokenizer: str  # relative to root
    max_length: int
    threads: int
    host: cpu.CpuFeatures = field(default_factory=cpu.detect)

    def logits(self, rel: str, pairs: Sequence[tuple[str, str]], quantization: Quantization | None = None,
               session_config: dict[str, str] | None = None) -> tuple[np.ndarray, float]:
        """Raw logits of graph ``rel`` on ``pairs``, as the runtime would run it here, and seconds taken."""
        scorer = Scorer.from_files(
            self.root / rel, self.root / self.tokenizer, max_length=self.max_length, threads=self.threads,
            exact_int8=cpu.needs_exact_int8(self.host, quantization), session_config=session_config)
        start = time.perf_counter()
        logits = scorer.logits(pairs)
        return logits, time.perf_counter() - start


@dataclass(frozen=True)
class Candidate:
    """One quantized graph and what it keeps of the fp32 ranking."""

    preset: q.Preset
    embed: bool  # word embeddings quantized too
    keep_fp32: tuple[str, ...]  # sensitive nodes left fp32 (besides the head)
    rel: str  # its file in the model directory
    quantization: Quantization | None
    fidelity: dict[str, Any]  # ranking_agreement(...) and "size" in bytes

    @property
    def label(self) -> str:
        kind = f"{self.preset.weight_type}{'-rr' if self.preset.reduce_range else ''}"
        return f"{self.preset.variant}:{kind}:{'emb' if self.embed else 'noemb'}:fp32-nodes={len(self.keep_fp32)}"


@dataclass
class Trials:
    """Quantizes and measures candidates against the fp32 ``baseline`` on ``vset``, once each."""

    graphs: Graphs
    fp32: str  # the fp32 graph, relative to the root
    vset: ValidationSet
    baseline: np.ndarray  # (n,) fp32 ONNX logits of vset.pairs
    say: Callable[[str], None] = print
    log: dict[str, dict] = field(default_factory=dict)  # label → fidelity, for the report
    calibration: list[tuple[str, str]] = field(default_factory=list)  # real pairs fixing activation scales; [] = dynamic
    _seen: dict[tuple, dict] = field(default_factory=dict)

    def fidelity(self, rel: str, quantization: Quantization | None, session_config: dict[str, str] | None = None) -> dict:
        logits, _ = self.graphs.logits(rel, self.vset.pairs, quantization, session_config)
        return {**ranking_agreement(self.baseline, logits, self.vset.groups), "size": (self.graphs.root / rel).stat().st_size}

    def candidate(self, preset: q.Preset, embed: bool, keep_fp32: tuple[str, ...] = ()) -> Candidate:
        """Quantize one configuration and measure it; an identical configuration (arm64 and avx512_vnni
        share their arithmetic) gives an identical graph, so its measurement is reused."""
        root = self.graphs.root
        rel = preset.file.replace(".onnx", f".{'e' if embed else 'n'}{len(keep_fp32)}.candidate.onnx")
        quantization = q.quantize(root / self.fp32, root / rel, preset, embed, keep_fp32)
        if self.calibration:  # batch independent: the per-batch scales become constants (static_quant)
            quantization = static_quant.as_static(quantization, static_quant.quantize_static(
                root / rel, root / rel, root / self.graphs.tokenizer, self.graphs.max_length, self.calibration,
                self.graphs.threads))
        key = (preset.weight_type, preset.per_channel, preset.reduce_range, embed, keep_fp32)
        if key not in self._seen:
            self._seen[key] = self.fidelity(rel, quantization)
        c = Candidate(preset, embed, keep_fp32, rel, quantization, self._seen[key])
        f = c.fidelity
        self.say(f"      {c.label:<44} NDCG@10 {f['ndcg_at_10']:.4f}  spearman {f['spearman']:.4f}  "
                 f"top1 {f['top1_agreement']:.3f}  {f['size'] / 1e6:.1f} MB")
        self.log[c.label] = f
        return c


def sensitivity(trials: Trials, embed: bool) -> list[str]:
    """Quantizable nodes, most harmful first: each is quantized alone (full-range int8, exact kernel)
    and scored by the mean |Δ logit| it causes on a few query groups."""
    rows = [i for g in trials.vset.groups[:4] for i in g]
    pairs, reference = [trials.vset.pairs[i] for i in rows], trials.baseline[rows]
    root, rel = trials.graphs.root, "onnx/sensitivity.candidate.onnx"
    harm = {}
    for node in q.quantizable_nodes(root / trials.fp32, embed):
        quantization = q.quantize(root / trials.fp32, root / rel, q.ARM64, embed, only=(node,))
        logits, _ = trials.graphs.logits(rel, pairs, quantization)
        harm[node] = float(np.mean(np.abs(logits - reference)))
    (root / rel).unlink(missing_ok=True)
    return sorted(harm, key=lambda n: -harm[n])


def pick(candidates: list[Candidate], gate: bool) -> Candidate:
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


def batch_record(trials: Trials, rel: str, quantization: Quantization) -> Quantization:
    """``quantization`` with how far any pair's score moved with its batch-mates on a few validation queries."""
    graphs = trials.graphs
    scorer = Scorer.from_files(graphs.root / rel, graphs.root / graphs.tokenizer, max_length=graphs.max_length,
                               threads=graphs.threads, exact_int8=cpu.needs_exact_int8(graphs.host, quantization))
    spread = spread_on_queries(scorer.logits, trials.vset.pairs, trials.vset.groups)["max_abs_delta"]
    return static_quant.with_batch_record(quantization, spread)


def select_variants(trials: Trials, embed_choices: Sequence[bool], gate: bool) -> dict[str, Variant]:
    """Each int8 variant's chosen graph, renamed to its preset's file; candidates' files are removed."""
    root = trials.graphs.root
    chosen: dict[str, Variant] = {}
    ranking: list[str] | None = None
    for presets in q.CANDIDATES.values():
        best = pick([trials.candidate(p, e) for p in presets for e in embed_choices], gate)
        if gate and best.fidelity["ndcg_at_10"] < INT8_MIN_NDCG_RATIO:
            if ranking is None:
                trials.say("      below the gate: ranking nodes by how much quantizing each one alone hurts")
                ranking = sensitivity(trials, best.embed)
            for k in EXCLUSION_STEPS:
                if k > len(ranking):
                    break
                best = trials.candidate(best.preset, best.embed, tuple(ranking[:k]))
                if best.fidelity["ndcg_at_10"] >= INT8_MIN_NDCG_RATIO:
                    break
        os.replace(root / best.rel, root / best.preset.file)
        fidelity = best.fidelity
        if best.preset.variant == "avx512_vnni" and cpu.needs_exact_int8(trials.graphs.host, best.quantization):
            # What this variant does on an AVX2 host if run on the fast, saturating u8×s8 kernel.
            raw = trials.fidelity(best.preset.file, best.quantization, {"session.x64quantprecision": "0"})
            fidelity = {**fidelity, "on_avx2_host_without_exact_int8": raw}
            trials.say(f"      avx512_vnni on this AVX2 host with the saturating kernel: NDCG@10 "
                       f"{raw['ndcg_at_10']:.4f}, max |Δ| {raw['max_abs_diff']:.3g}")
        quantization = batch_record(trials, best.preset.file, best.quantization)
        trials.say(f"      {best.preset.variant}: max |Δ score| across batch compositions {quantization.batch_spread:.2e}")
        chosen[best.preset.variant] = Variant(best.preset.file, quantization, fidelity)
    for leftover in root.glob("onnx/*.candidate.onnx"):
        leftover.unlink()
    return chosen
