"""``export.fetch`` against the hub stand-in (``testing.hub``) on 127.0.0.1: pinned, filtered, cached,
offline-aware. No test reaches a remote host."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from export.families import ExportError
from export.fetch import NEEDED, fetch_checkpoint, resolve_revision
from testing.hub import Fault, HubServer

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


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """The stand-in serving ``REPO`` at ``COMMIT`` (also its ``main``), with huggingface_hub pointed at it
    and kept away from the user's cache and token."""
    from huggingface_hub.utils import reset_sessions

    server = HubServer()
    server.add_repo(REPO, FILES, COMMIT)
    server.patch_client(monkeypatch, tmp_path / "hf-home")
    yield server
    server.stop()
    reset_sessions()  # drop sessions made while offline, before monkeypatch restores the constant


def _cut_off(hub: HubServer, monkeypatch, how: str) -> None:
    """Make the hub unreachable: stop the server, or turn on HF_HUB_OFFLINE as huggingface_hub sees it."""
    if how == "stopped":
        hub.stop()
    else:
        hub.go_offline(monkeypatch)


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


# ---------------------------------------------------------------- integrity and transport faults

def test_wrong_bytes_are_a_checksum_error_and_leave_nothing_cached(hub, tmp_path):
    cache = tmp_path / "cache"
    hub.faults.append(Fault("corrupt", "model.safetensors", after=10, times=1))
    with pytest.raises(ExportError, match=r"^checksum mismatch: model\.safetensors of org/tiny@.*the hub's LFS sha256"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    assert not list(cache.rglob(hashlib.sha256(FILES["model.safetensors"]).hexdigest()))
    assert _files(fetch_checkpoint(REPO, COMMIT, cache_dir=cache)) == {name: FILES[name] for name in WANTED}


def test_a_small_file_is_checked_against_its_git_hash(hub, tmp_path):
    hub.faults.append(Fault("corrupt", "config.json", after=2, times=1))
    with pytest.raises(ExportError, match=r"checksum mismatch: config\.json .*the hub's git hash"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache")


def test_a_file_that_differs_from_the_lock_pin_is_refused(hub, tmp_path):
    pins = {"config.json": hashlib.sha256(FILES["config.json"]).hexdigest(), "model.safetensors": "0" * 64}
    with pytest.raises(ExportError, match=r"model\.safetensors .* expected 000000000000… \(the sha256 pinned in models\.lock\)"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache", pins=pins)
    pins["model.safetensors"] = hashlib.sha256(FILES["model.safetensors"]).hexdigest()
    assert fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache", pins=pins).is_dir()


def test_a_connection_dropped_mid_file_is_one_line_and_the_next_fetch_completes(hub, tmp_path):
    cache = tmp_path / "cache"
    hub.faults.append(Fault("drop", "model.safetensors", after=1000, times=1))
    with pytest.raises(ExportError, match=r"^the connection to the hub broke while downloading org/tiny@.*run the export again"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=cache)
    assert not (cache / "models--org--tiny" / "snapshots" / COMMIT / "model.safetensors").exists()
    assert _files(fetch_checkpoint(REPO, COMMIT, cache_dir=cache)) == {name: FILES[name] for name in WANTED}


def test_a_hub_error_status_is_one_line(hub, tmp_path, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)  # huggingface_hub backs off between its retries
    hub.faults.append(Fault("status", "model.safetensors", status=503))
    with pytest.raises(ExportError, match=r"^the hub answered HTTP 503 for org/tiny@"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache")


def test_a_hub_that_stalls_times_out_in_one_line(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.05)
    monkeypatch.setattr("time.sleep", lambda s: None)  # huggingface_hub waits 1 s between its 5 retries
    hub.faults.append(Fault("trickle", "model.safetensors", chunk=64, delay=0.3))
    with pytest.raises(ExportError, match=r"^the (hub stopped sending|connection to the hub broke while downloading) org/tiny@"):
        fetch_checkpoint(REPO, COMMIT, cache_dir=tmp_path / "cache")
