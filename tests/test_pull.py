"""``rerank-onnx pull`` against a stand-in server on 127.0.0.1: verified, atomic, offline-aware."""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from export.lockfile import record_export
from reranker_onnx import DownloadError, Reranker
from reranker_onnx.manifest import read_manifest
from reranker_onnx.pull import pull_model
from reranker_onnx.store import store_dir

NAME = "tiny-bert"


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder; ``damage`` maps a path to "corrupt" (flip a byte) or "cut" (close mid-body)."""

    damage: dict[str, str] = {}

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        rel = self.path.lstrip("/")
        mode = self.damage.get(rel)
        if mode is None:
            return super().do_GET()
        data = bytearray((Path(self.directory) / rel).read_bytes())
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if mode == "corrupt":
            data[len(data) // 2] ^= 0xFF
            self.wfile.write(bytes(data))
        else:  # "cut": half the body, then the connection drops
            self.wfile.write(bytes(data[: len(data) // 2]))
            self.close_connection = True


@pytest.fixture()
def server(exported):
    root = exported("bert")
    _Handler.damage = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def lock(server, tmp_path, monkeypatch):
    url, root = server
    path = tmp_path / "models.lock"
    entry = {"repo": "fixture/tiny-bert", "revision": None, "license": "Apache-2.0", "family": "bert",
             "max_length": 512, "activation": "identity", "artifacts": {"url": url}}
    path.write_text(json.dumps({"lock_version": 1, "models": {NAME: entry}}))
    record_export(path, NAME, root, read_manifest(root), None)
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(path))
    return path


def _store_is_clean() -> bool:
    return not (store_dir() / NAME).exists() and not any(p.name.startswith(".") for p in store_dir().glob("*"))


def test_pull_installs_a_verified_model_that_loads_by_name(lock):
    directory = pull_model(NAME)
    assert directory == store_dir() / NAME
    assert Reranker(NAME).score("q", ["p"])  # resolves through the store


def test_corrupted_download_installs_nothing(lock):
    _Handler.damage = {"onnx/model.onnx": "corrupt"}
    with pytest.raises(DownloadError, match="sha256 does not match"):
        pull_model(NAME)
    assert _store_is_clean()


def test_interrupted_download_installs_nothing(lock):
    _Handler.damage = {"tokenizer.json": "cut"}
    with pytest.raises(DownloadError, match="run pull again"):
        pull_model(NAME)
    assert _store_is_clean()


def test_offline_mode_never_touches_the_network(lock, monkeypatch):
    _Handler.damage = {"manifest.json": "cut"}  # would fail loudly if contacted
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline mode"):
        pull_model(NAME)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(DownloadError, match="offline mode"):
        pull_model(NAME, offline=True)


def test_a_failed_repull_keeps_the_installed_copy(lock):
    pull_model(NAME)
    _Handler.damage = {"onnx/model.onnx": "corrupt"}
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
