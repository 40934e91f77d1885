"""``rerank-onnx pull``: fetch an exported model directory, verify it, install it atomically.

A seed whose models.lock entry has a ``pull`` record and no published directory is pulled from upstream's
own ONNX graphs instead (``upstream.py``, through huggingface_hub).

Files go to a temporary folder inside the store (same filesystem, so the final rename is atomic),
each checked against the size and sha256 pinned in ``models.lock`` while it streams. Only a complete,
verified directory is renamed into place; a failed or interrupted pull leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .errors import DownloadError, RerankerError
from .manifest import MANIFEST_NAME, read_manifest
from .registry import LockEntry, lookup
from .store import ENV_HOME, staged, store_dir

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60


def offline_requested(flag: bool = False) -> bool:
    """``--offline``, or the Hugging Face convention ``HF_HUB_OFFLINE=1`` (also ``RERANKER_ONNX_OFFLINE``)."""
    env = (os.environ.get(k, "").strip().lower() for k in ("HF_HUB_OFFLINE", "RERANKER_ONNX_OFFLINE"))
    return flag or any(v in ("1", "true", "yes", "on") for v in env)


def _download(url: str, dest: Path, sha256: str, size: int) -> None:
    digest = hashlib.sha256()
    received = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
            while chunk := response.read(CHUNK):
                received += len(chunk)
                if received > size:
                    break
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: download failed ({reason}); check the network and run pull again") from None
    if received != size:
        raise DownloadError(
            f"{url}: got {received} bytes, expected {size} (interrupted or wrong file); run pull again"
        )
    if digest.hexdigest() != sha256:
        raise DownloadError(f"{url}: sha256 does not match models.lock (corrupted download); nothing was installed")


def pull_model(name: str, *, offline: bool = False, force: bool = False, **upstream: Any) -> Path:
    """Install model ``name`` from models.lock into the store and return its directory.

    ``upstream`` holds the options of a pull from upstream's ONNX graphs (``upstream.PullOptions``).
    """
    entry: LockEntry = lookup(name)
    if entry.artifacts.bundled:
        raise DownloadError(f"{entry.name} ships inside the package: there is nothing to pull; "
                            "use it with no model argument")
    if entry.pull and not entry.artifacts.url:
        from .upstream import PullOptions, pull_upstream

        return pull_upstream(entry, PullOptions(offline=offline_requested(offline), force=force, **upstream))
    target = store_dir() / entry.name
    if (target / MANIFEST_NAME).is_file() and not force:
        log.info("%s is already installed at %s", entry.name, target)
        return target
    if offline_requested(offline):
        raise DownloadError(
            f"offline mode (--offline or HF_HUB_OFFLINE=1): not downloading {entry.name}; "
            "unset it to pull, or copy an exported model directory into the store"
        )
    url, files = entry.artifacts.url, entry.artifacts.files
    if not url or MANIFEST_NAME not in files:
        raise DownloadError(
            f"{entry.name} has no published model directory in models.lock; "
            f"export it locally with `make export MODEL={entry.name}`"
        )
    try:
        with staged(target) as tmp:  # installed only if every file and check passes
            _fetch_verified(entry, url, files, tmp)
    except OSError as exc:  # the store itself: read-only, not a folder, full
        if isinstance(exc, RerankerError):
            raise
        raise DownloadError(
            f"cannot write the model store {target.parent} ({exc.strerror or exc}); "
            f"make it a writable folder or point {ENV_HOME} at one"
        ) from None
    return target


def _fetch_verified(entry: LockEntry, url: str, files: dict, tmp: Path) -> None:
    for rel, pinned in sorted(files.items()):
        log.info("downloading %s", rel)
        _download(f"{url.rstrip('/')}/{rel}", tmp / rel, pinned.sha256, pinned.size)
    manifest = read_manifest(tmp)
    missing = set(manifest.files) - set(files)
    if missing:
        raise DownloadError(f"{entry.name}: models.lock pins no hash for {sorted(missing)}; refusing it")
    for rel, pinned in manifest.files.items():
        if pinned.sha256 != files[rel].sha256:
            raise DownloadError(f"{entry.name}: manifest and models.lock disagree on {rel}; refusing it")
