"""Session fixtures: tiny checkpoints of every family and their exported model directories.

They are built once and cached on disk under ``.cache/test-fixtures/<key>``, where the key hashes the
code that builds them and the tool versions, so a second test run starts in seconds and a change to
the export stage rebuilds them. Nothing here touches the network.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the export stage is a top-level package of the repository

import testing.cache  # noqa: E402
from export.versions import source_digest, tool_versions  # noqa: E402


TOOLS = ("torch", "transformers", "optimum-onnx", "onnxruntime", "tokenizers", "sentence-transformers")


def _key(sources: list[Path]) -> str:
    return source_digest(sources, *tool_versions(TOOLS).values())


CACHE = Path(os.environ.get("RERANKER_TEST_CACHE", ROOT / ".cache" / "test-fixtures"))
# Checkpoints depend only on their builders; exported models on the whole export stage and runtime.
CHECKPOINT_KEY = _key([ROOT / "export" / n for n in ("fixtures.py", "jinabert.py", "debian.py", "minilm.py")])
MODEL_KEY = _key([*(ROOT / "export").glob("*.py"), *(ROOT / "reranker_onnx").glob("*.py")])


def _prune_stale_keys() -> None:
    """Fixtures of older code are never used again: free their disk space."""
    if CACHE.is_dir():
        for folder in CACHE.iterdir():
            if folder.name not in (CHECKPOINT_KEY, MODEL_KEY):
                shutil.rmtree(folder, ignore_errors=True)


_prune_stale_keys()


def cached_dir(name: str, build, key: str) -> Path:
    """Build ``name`` once into the cache (staged: a half-built folder is never reused)."""
    return testing.cache.cached_dir(CACHE / key, name, build)


def _export(checkpoint: Path, output: Path, name: str, gate: bool) -> None:
    from export.pipeline import ExportOptions, export_model

    options = ExportOptions(name=name, source={"path": f"fixture:{name}"}, gate=gate,
                            queries_per_language=4, group_size=12, threads=2)
    export_model(checkpoint, output, options)


@pytest.fixture(scope="session")
def checkpoint():
    from export.fixtures import BUILDERS

    def get(family: str) -> Path:
        return cached_dir(f"ckpt-{family}", lambda d: BUILDERS[family](d, 0), CHECKPOINT_KEY)

    return get


@pytest.fixture(scope="session")
def exported(checkpoint):
    def get(family: str) -> Path:
        return cached_dir(f"model-{family}", lambda d: _export(checkpoint(family), d, f"tiny-{family}", gate=False), MODEL_KEY)

    return get


@pytest.fixture(scope="session")
def minilm_checkpoint() -> Path:
    from export.minilm import build_minilm_cross_encoder

    return cached_dir("ckpt-minilm", build_minilm_cross_encoder, CHECKPOINT_KEY)


@pytest.fixture(scope="session")
def minilm_model(minilm_checkpoint) -> Path:
    """The real-weight export, gated like a real model (int8 must keep NDCG@10 ≥ 0.99)."""
    return cached_dir("model-minilm", lambda d: _export(minilm_checkpoint, d, "minilm-l6-cross-encoder", gate=True), MODEL_KEY)


@pytest.fixture()
def model_copy(exported, tmp_path):
    """A private copy of an exported model directory, for tests that damage files."""
    def get(family: str = "bert") -> Path:
        target = tmp_path / family
        shutil.copytree(exported(family), target)
        return target

    return get


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Keep the store and the verification cache of each test private."""
    monkeypatch.setenv("RERANKER_ONNX_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("RERANKER_ONNX_VARIANT", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
