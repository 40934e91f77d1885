"""The hub stand-in (``testing.hub``) speaks the protocol huggingface_hub expects, faults included."""

from __future__ import annotations

import hashlib
import random

import pytest

from testing.hub import Fault, HubServer

REPO = "org/model"
COMMIT = hashlib.sha1(b"org/model@1").hexdigest()
OLDER = hashlib.sha1(b"org/model@0").hexdigest()
WEIGHTS = random.Random(0).randbytes(300_000)
FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": WEIGHTS, "onnx/model.onnx": b"graph"}


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    from huggingface_hub.utils import reset_sessions

    server = HubServer()
    server.add_repo(REPO, {"config.json": b"{}"}, OLDER)
    server.add_repo(REPO, FILES, COMMIT)  # main moves to the newer commit
    server.patch_client(monkeypatch, tmp_path / "hf-home")
    yield server
    server.stop()
    reset_sessions()


def test_model_info_lists_files_with_lfs_hashes(hub):
    from huggingface_hub import HfApi

    info = HfApi().model_info(REPO, revision=COMMIT, files_metadata=True)
    assert info.sha == COMMIT
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == set(FILES)
    assert siblings["model.safetensors"].lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert siblings["config.json"].lfs is None
    assert HfApi().model_info(REPO).sha == COMMIT  # main


def test_list_files_and_older_revisions(hub):
    from huggingface_hub import HfApi

    assert sorted(HfApi().list_repo_files(REPO, revision=COMMIT)) == sorted(FILES)
    assert HfApi().list_repo_files(REPO, revision=OLDER) == ["config.json"]


def test_file_metadata_carries_commit_and_lfs_etag(hub):
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(REPO, "model.safetensors", revision="main"))
    assert (meta.commit_hash, meta.etag, meta.size) == (COMMIT, hashlib.sha256(WEIGHTS).hexdigest(), len(WEIGHTS))


def test_a_ranged_get_answers_206(hub):
    import requests

    url = f"{hub.url}/{REPO}/resolve/{COMMIT}/model.safetensors"
    answer = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=5)
    assert answer.status_code == 206 and answer.content == WEIGHTS[100:200]
    assert answer.headers["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"


@pytest.mark.parametrize(("repo", "revision", "name", "error"), [
    ("org/missing", COMMIT, "config.json", "RepositoryNotFoundError"),
    (REPO, "f" * 40, "config.json", "RevisionNotFoundError"),
    (REPO, COMMIT, "absent.json", "EntryNotFoundError"),
])
def test_unknown_repo_revision_or_file_are_typed_errors(hub, tmp_path, repo, revision, name, error):
    from huggingface_hub import hf_hub_download

    with pytest.raises(Exception) as caught:
        hf_hub_download(repo, name, revision=revision, cache_dir=tmp_path / "c")
    assert type(caught.value).__name__ == error


def test_a_dropped_download_fails_and_the_next_one_resumes_with_a_range_request(hub, tmp_path):
    """huggingface_hub 0.36 retries only ConnectionError/ReadTimeout, not a body cut short (as the
    real hub's CDN can do); it keeps the partial file (whole 10 MB chunks of it), and the next call
    resumes it with a ranged GET (``test_a_ranged_get_answers_206``)."""
    import requests
    from huggingface_hub import hf_hub_download

    hub.faults.append(Fault("drop", "model.safetensors", after=100_000, times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        hf_hub_download(REPO, "model.safetensors", revision=COMMIT, cache_dir=tmp_path / "c")
    path = hf_hub_download(REPO, "model.safetensors", revision=COMMIT, cache_dir=tmp_path / "c")
    assert open(path, "rb").read() == WEIGHTS


def test_corrupt_bytes_keep_the_headers(hub):
    import requests

    hub.faults.append(Fault("corrupt", "model.safetensors", after=5))
    answer = requests.get(f"{hub.url}/{REPO}/resolve/{COMMIT}/model.safetensors", timeout=5)
    assert answer.headers["X-Linked-Etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert len(answer.content) == len(WEIGHTS) and answer.content != WEIGHTS
    assert answer.content[:5] == WEIGHTS[:5] and answer.content[6:] == WEIGHTS[6:]


def test_trickle_and_status_faults(hub):
    import requests

    hub.faults[:] = [Fault("status", "config.json", status=503, times=1), Fault("trickle", "onnx/*", chunk=1, delay=0.01)]
    url = f"{hub.url}/{REPO}/resolve/{COMMIT}"
    assert requests.get(f"{url}/config.json", timeout=5).status_code == 503
    assert requests.get(f"{url}/config.json", timeout=5).status_code == 200
    # The read timeout fires on the headers or, when they came first, on the body (then requests
    # wraps it in a ConnectionError): which one depends on the host's load, so both count.
    with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError), match="timed out"):
        requests.get(f"{url}/onnx/model.onnx", timeout=(5, 0.001))


def test_a_commit_must_be_forty_hex():
    with HubServer() as hub, pytest.raises(ValueError, match="40 lowercase hex"):
        hub.add_repo(REPO, FILES, "main")
