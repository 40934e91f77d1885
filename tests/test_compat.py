"""Model directories written before the Scorer layer load and score as they did then.

``tests/data/export-64e1517`` is a tiny BERT export made by main at 64e1517, and its ``.scores.json``
the scores that code gave for it and for the bundled default model (threads=1). int8 kernels differ
between CPUs, so int8 scores are compared exactly only on a host like the recording one; elsewhere
the ranking must be the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reranker_onnx import Reranker, cpu
from reranker_onnx.manifest import read_manifest
from reranker_onnx.scoring import best_first

DATA = Path(__file__).resolve().parent / "data"
RECORD = json.loads((DATA / "export-64e1517.scores.json").read_text(encoding="utf-8"))
GROUPS = [(g["query"], g["passages"]) for g in RECORD["groups"]]


def _same_host_kind() -> bool:
    host = cpu.detect()
    return (host.arch, host.has_vnni) == (RECORD["host_arch"], RECORD["host_has_vnni"])


@pytest.mark.parametrize("key", sorted(RECORD["scores"]))
def test_old_directories_score_as_they_did(key):
    where, variant = key.split(":")
    model = DATA / "export-64e1517" if where == "export" else None
    got = [Reranker(model, variant=variant, threads=1).score(q, p) for q, p in GROUPS]
    for scores, expected in zip(got, RECORD["scores"][key]):
        if variant == "fp32" or _same_host_kind():
            assert np.max(np.abs(np.asarray(scores) - expected)) <= 1e-6, key
        else:
            assert best_first(scores) == best_first(expected), key


def test_an_old_manifest_reads_back_as_written():
    directory = DATA / "export-64e1517"
    manifest = read_manifest(directory)
    on_disk = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    assert json.loads(manifest.to_json()) == on_disk
    assert manifest.variants["fp32"].quantization is None
    assert not manifest.variants["avx2"].quantization.saturates_without_vnni
    assert manifest.variants["arm64"].quantization.saturates_without_vnni
