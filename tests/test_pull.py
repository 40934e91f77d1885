"""``rerank-onnx pull`` against a stand-in server on 127.0.0.1: verified, atomic, offline-aware."""

from __future__ import annotations

import json

import pytest

from export.lockfile import record_export
from reranker_onnx import DownloadError, Reranker
from reranker_onnx.manifest import read_manifest
from reranker_onnx.pull import pull_model
from reranker_onnx.store import store_dir
from testing.hub import Fault, HubServer

NAME = "tiny-bert"
REVISION = "0" * 40


@pytest.fixture()
def hub(exported, tmp_path, monkeypatch):
    """The hub stand-in serving an exported model, and a lock whose artifacts point at it."""
    root = exported("bert")
    with HubServer() as server:
        server.add_folder("fixture/tiny-bert", root, REVISION)
        path = tmp_path / "models.lock"
        entry = {"repo": "fixture/tiny-bert", "revision": None, "license": "Apache-2.0", "family": "bert",
                 "max_length": 512, "activation": "identity",
                 "artifacts": {"url": f"{server.url}/fixture/tiny-bert/resolve/{REVISION}"}}
        path.write_text(json.dumps({"lock_version": 1, "models": {NAME: entry}}))
        record_export(path, NAME, root, read_manifest(root), None)
        monkeypatch.setenv("RERANKER_ONNX_LOCK", str(path))
        yield server


def _store_is_clean() -> bool:
    return not (store_dir() / NAME).exists() and not any(p.name.startswith(".") for p in store_dir().glob("*"))


def test_pull_installs_a_verified_model_that_loads_by_name(hub):
    directory = pull_model(NAME)
    assert directory == store_dir() / NAME
    assert Reranker(NAME).score("q", ["p"])  # resolves through the store


def test_corrupted_download_installs_nothing(hub):
    hub.faults.append(Fault("corrupt", "onnx/model.onnx", after=1000))
    with pytest.raises(DownloadError, match="sha256 does not match"):
        pull_model(NAME)
    assert _store_is_clean()


def test_interrupted_download_installs_nothing(hub):
    hub.faults.append(Fault("drop", "tokenizer.json", after=1000))
    with pytest.raises(DownloadError, match="run pull again"):
        pull_model(NAME)
    assert _store_is_clean()


def test_offline_mode_never_touches_the_network(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline mode"):
        pull_model(NAME)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(DownloadError, match="offline mode"):
        pull_model(NAME, offline=True)
    assert hub.requests == []


def test_a_failed_repull_keeps_the_installed_copy(hub):
    pull_model(NAME)
    hub.faults.append(Fault("corrupt", "onnx/model.onnx", after=1000))
    with pytest.raises(DownloadError):
        pull_model(NAME, force=True)
    assert Reranker(NAME, variant="fp32").score("q", ["p"])


def test_unpublished_model_says_how_to_export_it(tmp_path, monkeypatch):
    path = tmp_path / "models.lock"
    entry = {"repo": "x/y", "license": "MIT", "family": "bert", "max_length": 512, "activation": "identity"}
    path.write_text(json.dumps({"lock_version": 1, "models": {"y": entry}}))
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(path))
    with pytest.raises(DownloadError, match="make export MODEL=y"):
        pull_model("y")
