"""``models.lock`` read as data: the pinned list of supported models.

Each entry names the upstream checkpoint at a full revision, how it was exported, and, once exported,
where the model directory is published and the sha256 of each of its files. Nothing here resolves
"latest" at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, ModelNotFoundError

LOCK_NAME = "models.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    name: str
    repo: str | None  # upstream Hugging Face id; None for a model trained here (see provenance)
    revision: str | None  # full 40-hex commit; None while unknown (the export resolves and records it)
    license: str
    family: str
    max_length: int
    activation: str
    recipe: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)  # {"url": ..., "files": {name: {sha256, size}}, ...}
    notes: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)  # base weights, data, script: trained here
    pull: dict[str, Any] = field(default_factory=dict)  # upstream ONNX: {"revision", "files", "languages"} (upstream.py)


def lock_path() -> Path:
    """``$RERANKER_ONNX_LOCK`` (a private registry), else the lock shipped in the package (wheel),
    else the one at the repository root (editable install)."""
    env = os.environ.get("RERANKER_ONNX_LOCK")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / LOCK_NAME, here.parent / LOCK_NAME):
        if candidate.is_file():
            return candidate
    raise ManifestError(f"{LOCK_NAME} not found beside the package; reinstall reranker-onnx")


def parse_lock(data: dict[str, Any]) -> dict[str, LockEntry]:
    if data.get("lock_version") != LOCK_VERSION:
        raise ManifestError(f"{LOCK_NAME}: lock_version {data.get('lock_version')!r} is not {LOCK_VERSION}")
    entries = {}
    for name, e in data.get("models", {}).items():
        entries[name] = LockEntry(
            name=name,
            repo=e.get("repo"),
            revision=e.get("revision"),
            license=e["license"],
            family=e["family"],
            max_length=int(e["max_length"]),
            activation=e["activation"],
            recipe=e.get("recipe", {}),
            artifacts=e.get("artifacts", {}),
            notes=e.get("notes", ""),
            provenance=e.get("provenance", {}),
            pull=e.get("pull") or {},
        )
    return entries


def load_lock(path: Path | None = None) -> dict[str, LockEntry]:
    return parse_lock(json.loads(Path(path or lock_path()).read_text(encoding="utf-8")))


def lookup(name: str, path: Path | None = None) -> LockEntry:
    entries = load_lock(path)
    if name in entries:
        return entries[name]
    # Accept the upstream id too ("cross-encoder/ms-marco-TinyBERT-L2-v2").
    for entry in entries.values():
        if entry.repo == name:
            return entry
    raise ModelNotFoundError(f"unknown model {name!r}; known models: {', '.join(sorted(entries))}")
