"""The seeds through the real download path: ``rerank-onnx export NAME`` against the hub stand-in serving
small replicas at the pinned revisions; the pins themselves; the bad-input errors.

The full-size lane is ``make seeds-full`` (``testing.seeds``); checks that need the real checkpoints
are in ``test_seeds_real.py`` (``make verify-seeds`` on a connected machine).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from reranker_onnx.cli import main
from testing.hub import HubServer
from testing.replicas import SEEDS, cached
from testing.seeds import LOCK, replica_lock, serve

HEX40 = re.compile(r"^[0-9a-f]{40}$")


def test_models_lock_pins_every_seed_at_a_full_revision():
    models = json.loads(LOCK.read_text())["models"]
    for name, seed in SEEDS.items():
        entry = models[name]
        assert entry["repo"] == seed.repo and entry["family"] == seed.family
        assert HEX40.match(entry["revision"] or ""), name
        for file, pin in entry.get("upstream_files", {}).items():
            assert re.fullmatch(r"[0-9a-f]{64}", pin["sha256"]), (name, file)
    assert models["mmarco-mMiniLMv2-L12-H384-v1"]["revision"].startswith("1427fd65")
    assert models["japanese-reranker-cross-encoder-xsmall-v1"]["revision"].startswith("8547ac84")
    assert models["jina-reranker-v1-tiny-en"]["revision"].startswith("aca45de6")


@pytest.fixture()
def seed_hub(tmp_path, monkeypatch):
    """Small replicas of every seed served at their pins; huggingface_hub in this process points there."""
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars, reset_sessions

    hub = HubServer()
    blobs = serve(hub, list(SEEDS), "small")
    hub.patch_client(monkeypatch, tmp_path / "hf-home")
    hub.lock = replica_lock(tmp_path / "replica.lock", blobs)
    disable_progress_bars()  # a terminal shows them; the tests read stderr line by line
    yield hub
    enable_progress_bars()
    hub.stop()
    reset_sessions()


def _export(capsys, *args) -> tuple[int, str]:
    code = main(["export", *args])
    return code, capsys.readouterr().err


def test_export_by_name_through_the_stand_in(seed_hub, tmp_path, capsys):
    """The smallest seed, as a user runs it: by name, fetched at its pin, verified, exported, served."""
    from reranker_onnx import Reranker

    name = "ms-marco-TinyBERT-L2-v2"
    code, err = _export(capsys, name, "--lock", str(seed_hub.lock), "--output", str(tmp_path / "out"), "--no-gate",
                        "--validation-queries", "4")
    assert code == 0, err
    revision = json.loads(LOCK.read_text())["models"][name]["revision"]
    assert ("GET", f"/api/models/{SEEDS[name].repo}/revision/{revision}") in seed_hub.requests
    assert not any("/onnx/" in path for _, path in seed_hub.requests)  # the export fetches no upstream graph
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["source"] == {"repo": SEEDS[name].repo, "revision": revision}
    recorded = json.loads(seed_hub.lock.read_text())["models"][name]
    assert recorded["artifacts"]["files"] and recorded["revision"] == revision
    scores = Reranker(tmp_path / "out").score("compress files", ["a tool to compress files", "a font"])
    assert len(scores) == 2


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.glob(".out*")]  # no staging folder left
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("manifest.json"))


def test_the_real_pins_refuse_a_replica(seed_hub, tmp_path, capsys):
    """models.lock pins upstream's bytes: the replica's config.json is a checksum mismatch, one line."""
    lock = tmp_path / "models.lock"
    shutil.copy(LOCK, lock)
    code, err = _export(capsys, "mmarco-mMiniLMv2-L12-H384-v1", "--lock", str(lock), "--output", str(tmp_path / "out"))
    assert code == 1
    assert re.fullmatch(r"rerank-onnx export: error: checksum mismatch: \S+ of cross-encoder/mmarco-mMiniLMv2-L12-H384-v1"
                        r"@1427fd652930 has \w+…, expected \w+… \(the sha256 pinned in models\.lock\); .*\n", err)
    assert lock.read_bytes() == LOCK.read_bytes()
    _nothing_written(tmp_path)


def test_unknown_name_missing_revision_and_hub_down_are_one_line(seed_hub, tmp_path, capsys):
    code, err = _export(capsys, "no-such-model", "--lock", str(seed_hub.lock))
    assert code == 1 and err.count("\n") == 1 and "unknown model 'no-such-model'; known models:" in err
    data = json.loads(seed_hub.lock.read_text())
    data["models"]["ms-marco-TinyBERT-L2-v2"]["revision"] = "e" * 40
    seed_hub.lock.write_text(json.dumps(data))
    args = ["ms-marco-TinyBERT-L2-v2", "--lock", str(seed_hub.lock), "--output", str(tmp_path / "out")]
    code, err = _export(capsys, *args)
    assert code == 1 and err == (f"rerank-onnx export: error: revision {'e' * 40} does not exist in "
                                 "cross-encoder/ms-marco-TinyBERT-L2-v2; fix it in models.lock\n")
    seed_hub.stop()
    code, err = _export(capsys, *args)
    assert code == 1 and err.count("\n") == 1 and "the hub is unreachable" in err
    _nothing_written(tmp_path)


def test_a_full_disk_during_export_is_one_line_and_writes_nothing(seed_hub, tmp_path, capsys, monkeypatch):
    import errno

    import export.pipeline as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr(pipeline, "_build", full)
    code, err = _export(capsys, "ms-marco-TinyBERT-L2-v2", "--lock", str(seed_hub.lock), "--output", str(tmp_path / "out"))
    assert code == 1
    assert err.startswith("rerank-onnx export: error: no space left on the device") and err.count("\n") == 1
    assert "nothing was written" in err
    _nothing_written(tmp_path)
