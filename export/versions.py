"""What produced an artifact: tool versions for the records that export, training and bench write, and
a digest of the source files for the caches of what tests and the bench build."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

ABSENT = "absent"


def tool_versions(distributions: Iterable[str]) -> dict[str, str]:
    """``{"python": ..., dist: version}``; a distribution that is not installed is recorded as ``absent``."""
    versions = {"python": platform.python_version()}
    for dist in distributions:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = ABSENT
    return versions


def source_digest(paths: Iterable[Path], *extra: str) -> str:
    """A short sha256 over files (name and bytes, in sorted order) and extra strings: the cache key of
    something built by that code, so a change to the code rebuilds it."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for text in extra:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]
