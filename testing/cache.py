"""Build a folder once per key and reuse it: the test fixtures' and the replicas' disk cache.

The key hashes the code that builds the folder and the tool versions, so changed code rebuilds and
unchanged code starts in seconds. A build goes to a temporary sibling and is renamed into place, so a
half-built folder is never reused, and two runs sharing the cache both end up with the winner's copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cached_dir(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``root/name``, built by ``build(path)`` if it is not there yet (atomically)."""
    target = Path(root) / name
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        build(tmp / target.name)
        try:
            os.replace(tmp / target.name, target)
        except OSError:  # another run sharing the cache finished the same build first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
