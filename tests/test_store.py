"""``store.staged``: a directory appears whole or not at all, and what a killed writer left is swept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reranker_onnx.store import staged, sweep_partials


def _partials(target):
    return sorted(p.name for p in target.parent.glob(f".{target.name}.partial-*"))


def test_a_staged_directory_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "model"
    with staged(target) as tmp:
        (tmp / "a").write_text("one")
    assert (target / "a").read_text() == "one"
    with pytest.raises(RuntimeError), staged(target) as tmp:
        (tmp / "a").write_text("two")
        raise RuntimeError("a failed write")
    assert (target / "a").read_text() == "one" and _partials(target) == []
    with staged(target) as tmp:
        (tmp / "b").write_text("three")
    assert sorted(p.name for p in target.iterdir()) == ["b"] and _partials(target) == []


def test_keep_existing_lets_the_first_finished_build_win(tmp_path):
    target = tmp_path / "fixture"
    with staged(target, keep_existing=True) as tmp:
        (tmp / "mine").touch()
        with staged(target) as other:  # another run finishes first
            (other / "theirs").touch()
    assert [p.name for p in target.iterdir()] == ["theirs"] and _partials(target) == []


def test_only_folders_of_dead_owners_are_swept(tmp_path):
    target = tmp_path / "model"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f".model.partial-{int(dead.stdout)}-abc").mkdir()
    with staged(target) as tmp:  # staging sweeps first; its own folder (a live owner) stays
        assert _partials(target) == [tmp.name]
        sweep_partials(target)
        assert _partials(target) == [tmp.name]
    assert _partials(target) == []
