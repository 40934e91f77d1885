"""Build a folder once per key and reuse it: the test fixtures' and the replicas' disk cache.

The key hashes the code that builds the folder and the tool versions, so changed code rebuilds and
unchanged code starts in seconds. A build goes to a temporary sibling and is renamed into place, so a
half-built folder is never reused, and two runs sharing the cache both end up with the winner's copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from reranker_onnx.store import staged


def cached_dir(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """``root/name``, built by ``build(path)`` if it is not there yet, staged by ``store.staged``: a
    half-built folder is never reused, and when another run sharing the cache finished first, its
    folder wins."""
    target = Path(root) / name
    if not target.is_dir():
        with staged(target, keep_existing=True) as tmp:
            build(tmp)
    return target
