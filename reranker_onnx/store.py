"""Where named models live: a per-user store, never a shared temporary folder.

``RERANKER_ONNX_HOME`` overrides the location. A name resolves to ``<store>/<name>``; a path that
exists is used as it is.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ModelNotFoundError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ENV_HOME = "RERANKER_ONNX_HOME"
PARTIAL, OLD, LOCK_SUFFIX = ".partial-", ".old-", ".lock"
INSTALL_ATTEMPTS = 100
UNLOCKED_GRACE_S = 60.0  # a staging folder without its lock file is young for this long (being created)
LOCKLESS_STALE_S = 86400.0  # where advisory locks do not exist (Windows), a day-old staging folder is stale


def store_dir() -> Path:
    """The per-user model store (created on demand by ``pull``)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "reranker-onnx" / "models"


def bundled_dir() -> Path:
    """Models shipped inside the package (the default reranker, when built)."""
    return Path(__file__).resolve().parent / "models"


def default_model() -> Path | None:
    """The bundled default model directory, if this installation ships one."""
    candidate = bundled_dir() / "default"
    return candidate if (candidate / "manifest.json").is_file() else None


def _manifest_name(directory: Path) -> str | None:
    try:
        name = json.loads((directory / "manifest.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def model_name_of(name: str) -> str:
    """A store folder name for a model name or upstream id ("org/name" → "name")."""
    return name.rstrip("/").split("/")[-1]


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """Turn a directory, a model name, or None (the default model) into a model directory."""
    if model is None:
        default = default_model()
        if default is None:
            raise ModelNotFoundError(
                "no model given and this installation has no default model: pass a model directory "
                "or a name from `rerank-onnx list`"
            )
        return default
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    candidate = store_dir() / model_name_of(str(model))
    if candidate.is_dir():
        return candidate
    default = default_model()
    if default is not None and str(model) == _manifest_name(default):
        return default  # `rerank-onnx list` names the bundled model; its name must work as --model
    raise ModelNotFoundError(
        f"model {str(model)!r} not found: it is neither a directory nor a model in the store "
        f"({store_dir()}); fetch it with `rerank-onnx pull NAME`, or export it with `make export MODEL=NAME`"
    )


def install_atomically(tmp: Path, target: Path) -> None:
    """Swap a complete directory into place: an older copy is moved aside first, then removed.

    ``tmp`` must be on the same filesystem as ``target`` (a sibling), so each rename is atomic.
    Concurrent installs of the same target (two pulls, threads) each succeed and the last one
    stays: a rename that finds the target taken moves the current one aside and tries again.
    """
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{OLD}"))
    try:
        for attempt in range(INSTALL_ATTEMPTS):
            try:
                os.rename(tmp, target)  # atomic, and refuses to replace a non-empty directory
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            try:
                os.replace(target, old / str(attempt))
            except FileNotFoundError:
                pass  # another installer moved it aside first
        raise OSError(errno.EBUSY, f"{target} kept changing under {INSTALL_ATTEMPTS} concurrent installs")
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging(parent: Path, name: str) -> Iterator[Path]:
    """A temporary sibling folder ``.NAME.partial-*`` for building a directory, removed on any exit.

    While the block runs, this process holds a lock on ``<folder>.lock``; :func:`sweep_leftovers`
    removes folders whose lock nobody holds, so a pull killed by SIGTERM or ``kill -9`` (which releases
    every lock) leaves nothing behind for long.
    """
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}{PARTIAL}"))
    lock = tmp.with_name(tmp.name + LOCK_SUFFIX)
    fd = None
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        _try_lock(fd)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.suppress(OSError):
            lock.unlink()
        if fd is not None:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock without waiting; True when taken (no live process holds it)."""
    if fcntl is None:  # Windows: no advisory locks here; leftovers go by age alone
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _owner_is_gone(folder: Path, now: float) -> bool:
    try:
        age = now - folder.stat().st_mtime
    except OSError:
        return False
    try:
        fd = os.open(folder.with_name(folder.name + LOCK_SUFFIX), os.O_RDWR)
    except FileNotFoundError:  # no lock file: from an older version, or being created this instant
        return age > UNLOCKED_GRACE_S
    except OSError:
        return False
    try:
        return _try_lock(fd) if fcntl is not None else age > LOCKLESS_STALE_S
    finally:
        os.close(fd)


def sweep_leftovers(parent: Path | None = None) -> list[Path]:
    """Remove staging and set-aside folders that no live process owns; return what was removed."""
    parent = store_dir() if parent is None else parent
    removed = []
    now = time.time()
    try:
        folders = [p for p in parent.iterdir() if p.name.startswith(".") and (PARTIAL in p.name or OLD in p.name)]
    except OSError:  # no store yet, or not readable: nothing of ours to sweep
        return removed
    for folder in folders:
        if folder.is_dir() and not folder.name.endswith(LOCK_SUFFIX) and _owner_is_gone(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.with_name(folder.name + LOCK_SUFFIX).unlink()
            removed.append(folder)
            log.info("removed %s, left by an interrupted install", folder)
    return removed
