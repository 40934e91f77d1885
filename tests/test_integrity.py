"""The manifest contract: every file is checked before use; damage is a clear error, never a wrong score."""

from __future__ import annotations

import json
import os

import pytest

from reranker_onnx import IntegrityError, ManifestError, Reranker
from reranker_onnx.manifest import MANIFEST_NAME, VerifiedFiles, read_manifest


def _graph(directory, variant="fp32"):
    return directory / read_manifest(directory).variants[variant].file


def test_manifest_round_trips(exported, tmp_path):
    manifest = read_manifest(exported("bert"))
    manifest.write(tmp_path)
    assert read_manifest(tmp_path) == manifest
    assert manifest.inputs == ("input_ids", "attention_mask", "token_type_ids")


def test_xlmr_and_modernbert_take_no_token_type_ids(exported):
    for family in ("xlm-roberta", "modernbert"):
        assert "token_type_ids" not in read_manifest(exported(family)).inputs


def test_tampered_graph_is_refused(model_copy):
    model = model_copy("bert")
    graph = _graph(model)
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    graph.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        Reranker(model, variant="fp32")


def test_truncated_graph_is_refused(model_copy):
    model = model_copy("bert")
    graph = _graph(model)
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="truncated or replaced"):
        Reranker(model, variant="fp32")


def test_missing_tokenizer_is_refused(model_copy):
    model = model_copy("bert")
    (model / "tokenizer.json").unlink()
    with pytest.raises(IntegrityError, match="tokenizer.json is missing"):
        Reranker(model)


def test_newer_manifest_format_asks_for_an_upgrade(model_copy):
    model = model_copy("bert")
    data = json.loads((model / MANIFEST_NAME).read_text())
    data["format_version"] = 99
    (model / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="newer than the 1 this runtime reads: upgrade"):
        Reranker(model)


def test_directory_without_manifest_is_explained(tmp_path):
    with pytest.raises(ManifestError, match="not a reranker-onnx model directory"):
        Reranker(tmp_path)


def test_verified_file_is_remembered_but_a_change_is_not(model_copy, tmp_path):
    model = model_copy("bert")
    Reranker(model, variant="fp32")
    cache = VerifiedFiles()
    graph = _graph(model)
    entry = read_manifest(model).files[read_manifest(model).variants["fp32"].file]
    assert cache.is_verified(graph.resolve(), entry, graph.stat())
    # Rewrite the same bytes: the content is fine but the stat changed, so it is hashed again.
    graph.write_bytes(graph.read_bytes())
    assert not VerifiedFiles().is_verified(graph.resolve(), entry, graph.stat())
    Reranker(model, variant="fp32")  # still loads: the bytes match
    # Damage with the original mtime restored: ctime still moves, so the damage is caught.
    st = graph.stat()
    data = bytearray(graph.read_bytes())
    data[100] ^= 0x01
    graph.write_bytes(bytes(data))
    os.utime(graph, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(IntegrityError):
        Reranker(model, variant="fp32")


def test_a_manifest_whose_inputs_differ_from_the_graph_is_refused(model_copy):
    model = model_copy("bert")
    data = json.loads((model / MANIFEST_NAME).read_text(encoding="utf-8"))
    data["inputs"] = ["input_ids", "attention_mask"]
    (model / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ManifestError, match="takes inputs .* the manifest says"):
        Reranker(model, variant="fp32")
