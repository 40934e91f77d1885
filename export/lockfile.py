"""Write ``models.lock``: the one place its file is written (``registry.dump_lock`` gives the format)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from reranker_onnx.manifest import MANIFEST_NAME, Manifest, file_entry
from reranker_onnx.registry import Artifacts, LockEntry, dump_lock, load_lock


def record(path: Path, entry: LockEntry) -> None:
    """Put ``entry`` in the lock at ``path`` under its name, atomically."""
    entries = load_lock(path)
    entries[entry.name] = entry
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".models.lock-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dump_lock(entries))
    os.replace(tmp, path)


def artifacts_of(directory: Path, manifest: Manifest, *, url: str | None = None, bundled: str | None = None) -> Artifacts:
    """What a written model directory pins: every file's hash (its manifest's too), fidelity, tools."""
    return Artifacts(
        url=url, bundled=bundled, files={**manifest.files, MANIFEST_NAME: file_entry(directory / MANIFEST_NAME)},
        fidelity={variant: v.fidelity for variant, v in manifest.variants.items()}, tools=manifest.export.get("tools", {}),
    )


def record_export(path: Path, name: str, directory: Path, manifest: Manifest, revision: str | None) -> None:
    """Record the exported directory's files and fidelity under ``name`` (the entry must exist)."""
    entry = load_lock(path)[name]
    record(path, replace(entry, revision=revision or entry.revision,
                         artifacts=artifacts_of(directory, manifest, url=entry.artifacts.url)))
