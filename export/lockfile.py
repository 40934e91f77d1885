"""Update ``models.lock`` after an export: revision, and each artifact's sha256, size and fidelity."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from reranker_onnx.manifest import MANIFEST_NAME, Manifest, file_entry
from reranker_onnx.registry import parse_lock


def read_lock(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    parse_lock(data)  # schema check
    return data


def write_lock(path: Path, data: dict[str, Any]) -> None:
    parse_lock(data)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".models.lock-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def record_export(path: Path, name: str, directory: Path, manifest: Manifest, revision: str | None) -> None:
    """Record the exported directory's files and fidelity under ``name`` (the entry must exist)."""
    data = read_lock(path)
    entry = data["models"][name]
    if revision:
        entry["revision"] = revision
    files = {rel: {"sha256": e.sha256, "size": e.size} for rel, e in manifest.files.items()}
    manifest_entry = file_entry(directory / MANIFEST_NAME)
    files[MANIFEST_NAME] = {"sha256": manifest_entry.sha256, "size": manifest_entry.size}
    entry["artifacts"] = {
        **{k: v for k, v in entry.get("artifacts", {}).items() if k == "url"},
        "files": files,
        "fidelity": {variant: v.fidelity for variant, v in manifest.variants.items()},
        "tools": manifest.export.get("tools", {}),
    }
    write_lock(path, data)
