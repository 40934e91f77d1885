"""The export stage: families, refusals with clear messages, nothing half-written, the lock's schema."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from export import pipeline, quantize, select
from export.families import FAMILIES, ExportError, detect_family
from export.pipeline import ExportOptions, export_model
from reranker_onnx import cpu
from reranker_onnx.manifest import read_manifest
from reranker_onnx.registry import LOCK_NAME, dump_lock, load_lock
from reranker_onnx.store import sweep_partials

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"fp32", "avx2", "avx512_vnni", "arm64"}


def _options(name="t", **kw) -> ExportOptions:
    return ExportOptions(name=name, source={"path": "test"}, gate=False, queries_per_language=2, group_size=6, **kw)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_all_variants_with_fidelity(exported, family):
    manifest = read_manifest(exported(family))
    assert manifest.family == family
    assert set(manifest.variants) == VARIANTS
    for name, variant in manifest.variants.items():
        keys = {"max_abs_diff_vs_torch"} if name == "fp32" else {"spearman", "ndcg_at_10", "top1_agreement"}
        assert keys <= set(variant.fidelity), (name, variant.fidelity)
    assert manifest.variants["fp32"].fidelity["max_abs_diff_vs_torch"] <= 1e-4
    # The head stays fp32 by rule, and the avx2 variant is saturation-safe.
    avx2 = manifest.variants["avx2"].quantization
    assert avx2.excluded_nodes and (avx2.reduce_range or avx2.weight_type == "quint8")


def test_the_fp32_check_includes_pairs_cut_at_max_length(exported):
    """The validation set's long passages stop at a few thousand tokens; jina's limit is 8,192."""
    from tokenizers import Tokenizer

    from export.validation import max_length_pairs

    directory = exported("bert")
    manifest = read_manifest(directory)
    assert manifest.variants["fp32"].fidelity["max_length_pairs"] == 2  # one English, one Japanese
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    for limit in (manifest.max_length, 8192):
        pairs = max_length_pairs(directory / "tokenizer.json", ("en", "ja"), limit)
        assert all(len(tokenizer.encode(q, p).ids) > limit for q, p in pairs)


def test_real_weights_pass_the_int8_gate(minilm_model):
    manifest = read_manifest(minilm_model)
    for name in ("avx2", "arm64", "avx512_vnni"):
        assert manifest.variants[name].fidelity["ndcg_at_10"] >= 0.99
    fidelity = manifest.variants["avx512_vnni"].fidelity
    if cpu.needs_exact_int8(cpu.detect(), manifest.variants["avx512_vnni"].quantization):
        # On an AVX2 host, the full-range variant on the fast (saturating) kernel is measurably worse.
        raw = fidelity["on_avx2_host_without_exact_int8"]
        assert raw["max_abs_diff"] > fidelity["max_abs_diff"]
    else:  # a VNNI host has no saturating kernel to measure: the variant was measured as it runs there
        assert "on_avx2_host_without_exact_int8" not in fidelity


def test_int8_graphs_quantize_the_encoder_but_not_the_head(minilm_model):
    import onnx

    manifest = read_manifest(minilm_model)
    graph = onnx.load(str(minilm_model / manifest.variants["avx2"].file)).graph
    ops = {n.op_type for n in graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops or "QAttention" in ops
    head = [n for n in graph.node if "classifier" in n.name]
    assert head and all(n.op_type in ("Gemm", "MatMul", "Add") for n in head)


def test_family_detection_and_unsupported_architecture():
    assert detect_family({"model_type": "bert"}) is FAMILIES["bert"]
    assert detect_family({"model_type": "bert", "position_embedding_type": "alibi"}) is FAMILIES["jinabert"]
    assert detect_family({"model_type": "xlm-roberta"}).inputs == ("input_ids", "attention_mask")
    with pytest.raises(ExportError, match="supported families: bert, xlm-roberta, modernbert, jinabert"):
        detect_family({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})


def test_output_equal_to_input_is_refused(checkpoint):
    ckpt = checkpoint("bert")
    with pytest.raises(ExportError, match="must not be or contain the checkpoint"):
        export_model(ckpt, ckpt, _options())


def test_failed_validation_writes_nothing(checkpoint, tmp_path, monkeypatch):
    real = pipeline.reference_scores

    def off_by_a_bit(*args, **kwargs):
        ref = real(*args, **kwargs)
        ref.logits = ref.logits + np.float32(1e-3)
        return ref

    monkeypatch.setattr(pipeline, "reference_scores", off_by_a_bit)
    with pytest.raises(ExportError, match="validation failed: the fp32 graph differs from PyTorch"):
        export_model(checkpoint("bert"), tmp_path / "exports" / "out", _options())
    assert list((tmp_path / "exports").iterdir()) == []


def test_interrupted_export_leaves_the_previous_model_intact(checkpoint, exported, tmp_path):
    target = tmp_path / "model"
    import shutil

    shutil.copytree(exported("bert"), target)
    before = (target / "manifest.json").read_bytes()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        proc = subprocess.Popen(
            [sys.executable, "-m", "export", str(checkpoint("bert")), "--output", str(target), "--no-gate"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 120
        while not list(tmp_path.glob(".model.partial-*/onnx/model.onnx")) and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert (target / "manifest.json").read_bytes() == before
        leftovers = list(tmp_path.glob(".model.partial-*"))
        assert leftovers == [] if sig == signal.SIGTERM else len(leftovers) == 1
    sweep_partials(target)  # the next export sweeps what SIGKILL left
    assert list(tmp_path.glob(".model.partial-*")) == []


def test_unknown_model_name_lists_the_known_ones():
    result = subprocess.run([sys.executable, "-m", "export", "no-such-model"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown model 'no-such-model'; known models:" in result.stderr
    assert "ms-marco-TinyBERT-L2-v2" in result.stderr and "Traceback" not in result.stderr


def test_lock_schema_and_families():
    raw = json.loads((ROOT / LOCK_NAME).read_text())
    entries = load_lock(ROOT / LOCK_NAME)
    seeds = {n: e for n, e in entries.items() if e.repo is not None}
    trained = {n: e for n, e in entries.items() if e.repo is None}
    assert len(seeds) == 5 and set(trained) == {"default-en"} and raw["lock_version"] == 1
    for name, entry in entries.items():
        assert entry.family in FAMILIES, name
        assert entry.activation in ("identity", "sigmoid")
        assert entry.license in ("MIT", "Apache-2.0")
    for name, entry in seeds.items():
        assert entry.revision is None or (len(entry.revision) == 40 and int(entry.revision, 16) >= 0)
        assert entry.revision or "unknown" in entry.notes, f"{name}: an unpinned revision must say why"
    for name, entry in trained.items():  # no upstream: where it came from must be recorded instead
        assert {"base", "data", "split", "config", "checkpoint_sha256"} <= set(entry.provenance), name


def test_the_lock_is_written_back_as_it_reads():
    assert dump_lock(load_lock(ROOT / LOCK_NAME)) == (ROOT / LOCK_NAME).read_text(encoding="utf-8")


@pytest.mark.parametrize(("locked", "message"), [({"family": "xlm-roberta"}, "models.lock says family 'xlm-roberta'"),
                                                 ({"activation": "sigmoid"}, "models.lock says activation 'sigmoid'")])
def test_an_export_that_disagrees_with_the_lock_writes_nothing(checkpoint, tmp_path, locked, message):
    with pytest.raises(ExportError, match=message):
        export_model(checkpoint("bert"), tmp_path / "exports" / "out", _options(**locked))
    assert not (tmp_path / "exports").exists() or list((tmp_path / "exports").iterdir()) == []


def test_reexport_gives_the_same_hashes(checkpoint, exported, tmp_path):
    again = tmp_path / "again"
    opts = ExportOptions(name="tiny-bert", source={"path": "fixture:tiny-bert"}, gate=False,
                         queries_per_language=4, group_size=12, threads=2)
    export_model(checkpoint("bert"), again, opts)
    first, second = read_manifest(exported("bert")), read_manifest(again)
    assert {k: v.sha256 for k, v in first.files.items()} == {k: v.sha256 for k, v in second.files.items()}


def _candidate(preset, ndcg: float, size: int) -> select.Candidate:
    return select.Candidate(preset, embed=size < 10, keep_fp32=(), rel=f"{preset.file}.{size}", quantization=None,
                            fidelity={"ndcg_at_10": ndcg, "size": size})


def test_avx2_pick_prefers_the_faster_kernel_unless_uint8_ranks_clearly_better():
    fast, slow = quantize.AVX2_CANDIDATES  # 7-bit int8 (u8×s8 kernel), uint8 (u8×u8 kernel)
    pick = select.pick
    # Within KERNEL_TOLERANCE: the faster kernel, and its smaller file when that ranks as well.
    chosen = pick([_candidate(fast, 0.983, 4), _candidate(fast, 0.984, 16), _candidate(slow, 0.988, 4)], gate=False)
    assert (chosen.preset, chosen.fidelity["size"]) == (fast, 4)
    # A smaller file that ranks worse than EMBEDDING_TOLERANCE is not taken.
    chosen = pick([_candidate(fast, 0.970, 4), _candidate(fast, 0.975, 16), _candidate(slow, 0.972, 4)], gate=False)
    assert (chosen.preset, chosen.fidelity["size"]) == (fast, 16)
    # uint8 clearly better: the slower kernel is worth it.
    assert pick([_candidate(fast, 0.960, 4), _candidate(slow, 0.990, 4)], gate=False).preset == slow
    # Gated: only candidates that pass the gate compete, even within tolerance.
    assert pick([_candidate(fast, 0.986, 4), _candidate(slow, 0.991, 4)], gate=True).preset == slow
    assert pick([_candidate(fast, 0.995, 4), _candidate(slow, 0.999, 4)], gate=True).preset == fast
