"""``export.fetch`` against a stand-in Hugging Face hub on 127.0.0.1: pinned, filtered, cached, offline-aware.

The stand-in answers the three routes huggingface_hub 0.36 uses for a pinned ``snapshot_download``
and for ``HfApi.model_info``, with the headers the client checks:

* ``GET  /api/models/{repo}/revision/{rev}``: the repo's JSON info (``sha``, ``siblings``);
* ``HEAD /{repo}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag`` and ``Content-Length``;
* ``GET  /{repo}/resolve/{rev}/{file}``: the same headers and the bytes.

Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``), which is
what huggingface_hub turns into its typed exceptions. huggingface_hub reads ``HF_ENDPOINT`` and
``HF_HUB_OFFLINE`` once, at import, and caches one HTTP session per thread, so the fixtures patch
its constants and reset its sessions; the environment variables are set too, for anything that
reads them later. No test reaches a remote host.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from export.families import ExportError
from export.fetch import NEEDED, fetch_checkpoint, resolve_revision

REPO = "org/tiny"
COMMIT = hashlib.sha1(b"org/tiny@1").hexdigest()  # the one commit of the stand-in repo (40 hex)
ABSENT = "f" * 40  # a well-formed commit the repo does not have
FILES = {
    "config.json": json.dumps({"model_type": "bert", "hidden_size": 8}).encode(),
    "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "WordPiece"}}).encode(),
    "model.safetensors": random.Random(0).randbytes(4096),
    "README.md": b"# tiny\n",  # not an export input
    "flax_model.msgpack": random.Random(1).randbytes(512),  # weights for another framework
    "onnx/model.safetensors": random.Random(2).randbytes(256),  # a needed name, but not at the top level
}
WANTED = {"config.json", "tokenizer.json", "model.safetensors"}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class _Hub(BaseHTTPRequestHandler):
    """One public model repo, ``REPO`` at ``COMMIT`` (also its ``main``); every request is recorded."""

    server: _Server

    def log_message(self, *args):  # the handler logs nothing
        pass

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        with self.server.lock:
            self.server.requests.append((self.command, self.path))
        path = unquote(urlsplit(self.path).path)
        if path.startswith("/api/models/"):
            self._model_info(path.removeprefix("/api/models/"), body)
        else:
            self._resolve(path.lstrip("/"), body)

    def _model_info(self, rest: str, body: bool) -> None:
        repo, _, revision = rest.partition("/revision/")
        if self._known(repo, revision or "main", body):
            siblings = [{"rfilename": name} for name in FILES]
            info = {"id": REPO, "modelId": REPO, "sha": COMMIT, "private": False, "siblings": siblings}
            self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)

    def _resolve(self, rest: str, body: bool) -> None:
        parts = rest.split("/", 4)  # org, name, "resolve", revision, file (which may hold a "/")
        if len(parts) != 5 or parts[2] != "resolve":
            return self._error(404, None, "Not found", body)
        repo, revision, name = "/".join(parts[:2]), parts[3], parts[4]
        if not self._known(repo, revision, body):
            return None
        if name not in FILES:
            return self._error(404, "EntryNotFound", "Entry not found", body, commit=True)
        data = FILES[name]
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": COMMIT,
                   "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        self._send(200, headers, data, body)

    def _known(self, repo: str, revision: str, body: bool) -> bool:
        if repo != REPO:  # the real hub answers 401 to anonymous requests for a missing repo
            self._error(self.server.missing_repo_status, "RepoNotFound", "Repository not found", body)
            return False
        if revision not in (COMMIT, "main"):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
            return False
        return True

    def _error(self, status: int, code: str | None, message: str, body: bool, commit: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if commit:
            headers["X-Repo-Commit"] = COMMIT
        self._send(status, headers, json.dumps({"error": message}).encode(), body)

    def _send(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hub)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.missing_repo_status = 401
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        # a short poll keeps shutdown() quick (the default waits up to half a second)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
            self.server_close()


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """The stand-in, with huggingface_hub pointed at it and kept away from the user's cache and token."""
    from huggingface_hub import constants, file_download
    from huggingface_hub.utils import reset_sessions

    server = _Server()
    home = tmp_path / "hf-home"
    for var in PROXY_VARS + ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    for var, value in {"HF_ENDPOINT": server.url, "HF_HOME": home, "HF_HUB_CACHE": home / "hub"}.items():
        monkeypatch.setenv(var, str(value))
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    for module, name, value in [
        (constants, "ENDPOINT", server.url),
        (constants, "HUGGINGFACE_CO_URL_TEMPLATE", template),
        (file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template),  # imported by name: patch both
        (constants, "HF_HOME", str(home)),
        (constants, "HF_HUB_CACHE", str(home / "hub")),
        (constants, "HF_TOKEN_PATH", str(home / "token")),
        (constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens")),
        (constants, "HF_HUB_OFFLINE", False),
        (constants, "HF_HUB_ENABLE_HF_TRANSFER", False),
    ]:
        monkeypatch.setattr(module, name, value)
    reset_sessions()  # a session cached by an earlier test may be offline or hold a dead connection
    yield server
    server.stop()
    reset_sessions()  # drop sessions made while offline, before monkeypatch restores the constant


def _cut_off(hub: _Server, monkeypatch, how: str) -> None:
    """Make the hub unreachable: stop the server, or turn on HF_HUB_OFFLINE as huggingface_hub sees it."""
    if how == "stopped":
        hub.stop()
        return
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reset_sessions()  # offline mode lives in the session, which is made once per thread


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_stand_in_repo_tests_the_allow_list():
    assert {name for name in FILES if name in NEEDED} == WANTED  # the premise of the tests below
    assert set(FILES) - WANTED


def test_fetch_downloads_only_the_files_an_export_needs(hub, tmp_path):
    cache = tmp_path / "cache"
    folder = fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    assert folder == cache / "models--org--tiny" / "snapshots" / COMMIT
    assert _files(folder) == {name: FILES[name] for name in WANTED}
    info = ("GET", f"/api/models/{REPO}/revision/{COMMIT}")
    files = {(method, f"/{REPO}/resolve/{COMMIT}/{name}") for name in WANTED for method in ("HEAD", "GET")}
    assert sorted(hub.requests) == sorted([info, *files])  # nothing asked about README, flax or onnx/
    assert not (tmp_path / "hf-home" / "hub").exists()


def test_fetch_uses_the_hugging_face_cache_by_default(hub, tmp_path):
    folder = fetch_checkpoint(REPO, COMMIT)
    assert folder == tmp_path / "hf-home" / "hub" / "models--org--tiny" / "snapshots" / COMMIT
    assert set(_files(folder)) == WANTED


@pytest.mark.parametrize("how", ["stopped", "offline"])
def test_a_second_fetch_is_served_from_the_cache(hub, tmp_path, monkeypatch, how):
    cache = tmp_path / "cache"
    first = fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    asked = len(hub.requests)
    _cut_off(hub, monkeypatch, how)
    second = fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    assert second == first
    assert _files(second) == {name: FILES[name] for name in WANTED}
    assert len(hub.requests) == asked


def test_an_online_fetch_completes_an_interrupted_snapshot(hub, tmp_path):
    cache = tmp_path / "cache"
    folder = fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    (folder / "model.safetensors").unlink()  # as if the download stopped before the weights were linked
    assert _files(fetch_checkpoint(REPO, COMMIT, cache_dir=cache)) == {name: FILES[name] for name in WANTED}


def test_an_incomplete_snapshot_served_offline_is_an_export_error(hub, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    folder = fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    (folder / "model.safetensors").unlink()
    _cut_off(hub, monkeypatch, "offline")
    with pytest.raises(ExportError, match=r"lacks model\.safetensors .*export from a local checkpoint folder instead"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=cache)


def test_a_revision_the_repo_does_not_have_is_an_export_error(hub, tmp_path):
    with pytest.raises(ExportError, match=f"revision {ABSENT} does not exist in {REPO}; fix it in models.lock"):
        fetch_checkpoint(REPO, ABSENT, cache_dir=tmp_path / "cache")
    assert hub.requests == [("GET", f"/api/models/{REPO}/revision/{ABSENT}")]


@pytest.mark.parametrize("revision", ["main", COMMIT[:12], COMMIT.upper(), f"{COMMIT} ", ""])
def test_a_revision_that_is_not_a_full_commit_is_refused_before_any_request(hub, tmp_path, revision):
    with pytest.raises(ExportError, match=r"is not a full 40-hex commit; pin one in models\.lock") as caught:
        fetch_checkpoint(REPO, revision, cache_dir=tmp_path / "cache")
    assert repr(revision) in str(caught.value)
    assert hub.requests == []
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("status", [401, 404])
def test_an_unknown_repo_is_an_export_error(hub, tmp_path, status):
    hub.missing_repo_status = status
    with pytest.raises(ExportError, match=r"org/missing does not exist on the hub \(or is private\)"):
        fetch_checkpoint("org/missing", COMMIT, cache_dir=tmp_path / "cache")
    assert hub.requests == [("GET", f"/api/models/org/missing/revision/{COMMIT}")]


@pytest.mark.parametrize("how", ["stopped", "offline"])
def test_not_cached_and_unreachable_says_to_export_from_a_local_checkpoint(hub, tmp_path, monkeypatch, how):
    _cut_off(hub, monkeypatch, how)
    with pytest.raises(ExportError) as caught:
        fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"{REPO}@{COMMIT[:12]} is not in the local Hugging Face cache")
    assert message.endswith("export from a local checkpoint folder instead")
    assert hub.requests == []


def test_resolve_revision_returns_the_commit_of_main(hub, caplog):
    with caplog.at_level("WARNING", logger="export.fetch"):
        assert resolve_revision(REPO) == COMMIT
    assert hub.requests == [("GET", f"/api/models/{REPO}/revision/main")]
    assert f"{REPO} had no pinned revision: resolved main to {COMMIT}" in caplog.text


def test_resolve_revision_of_an_unknown_repo_is_an_export_error(hub):
    with pytest.raises(ExportError, match=r"org/missing does not exist on the hub \(or is private\)"):
        resolve_revision("org/missing")


def test_resolve_revision_offline_asks_for_a_pinned_revision(hub, monkeypatch):
    _cut_off(hub, monkeypatch, "offline")
    with pytest.raises(ExportError, match=f"{REPO} has no pinned revision and offline mode is on: pin one"):
        resolve_revision(REPO)
    assert hub.requests == []


def test_resolve_revision_with_the_hub_unreachable_is_an_export_error(hub):
    hub.stop()
    with pytest.raises(ExportError, match=f"{REPO} has no pinned revision and the hub is unreachable"):
        resolve_revision(REPO)
