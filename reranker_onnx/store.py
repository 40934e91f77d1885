"""Where named models live: a per-user store, never a shared temporary folder.

``RERANKER_ONNX_HOME`` overrides the location. A name resolves to ``<store>/<name>``; a path that
exists is used as it is.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ModelNotFoundError

log = logging.getLogger(__name__)

ENV_HOME = "RERANKER_ONNX_HOME"
PARTIAL, OLD = ".partial-", ".old-"
INSTALL_ATTEMPTS = 100
PIDLESS_STALE_S = 3600.0  # a staging folder named without its owner's pid (older versions) is stale after this


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
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{OLD}{os.getpid()}-"))
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by someone else
        pass
    return True


def _owner_is_gone(folder: Path, now: float) -> bool:
    """A folder named ``.NAME.partial-PID-*`` or ``.NAME.old-PID-*`` belongs to process PID; one
    without a pid (left by an older version) belongs to no one once it is an hour old."""
    rest = folder.name.split(PARTIAL, 1)[-1] if PARTIAL in folder.name else folder.name.split(OLD, 1)[-1]
    pid = rest.split("-")[0]
    if pid.isdigit():  # os.kill would terminate the process on Windows: never sweep by pid there
        return sys.platform != "win32" and not _alive(int(pid))
    try:
        return now - folder.stat().st_mtime > PIDLESS_STALE_S
    except OSError:
        return False


def sweep_leftovers(parent: Path | None = None, name: str = "*") -> list[Path]:
    """Remove the staging and set-aside folders (of model ``name``, or all) that no live process
    owns, such as those of a pull killed by SIGTERM or ``kill -9``; return what was removed."""
    parent = store_dir() if parent is None else Path(parent)
    now = time.time()
    removed = []
    try:
        folders = [*parent.glob(f".{name}{PARTIAL}*"), *parent.glob(f".{name}{OLD}*")]
    except OSError:  # no store yet, or not readable: nothing of ours to sweep
        return removed
    for folder in folders:
        if folder.is_dir() and _owner_is_gone(folder, now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            log.info("removed %s, left by an interrupted install", folder)
    return removed


def sweep_partials(target: Path) -> None:
    """Remove the staging folders of ``target`` whose owner process is gone (killed mid-write)."""
    sweep_leftovers(Path(target).parent, Path(target).name)


@contextmanager
def staged(target: Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Write a directory in a sibling staging folder, then swap it in as ``target`` in one rename.

    The folder's name carries this process's id, so a later call sweeps what a killed writer left.
    On any exception (Ctrl-C included) the folder is removed and ``target`` is untouched. With
    ``keep_existing``, a ``target`` another process installed meanwhile wins and ours is dropped
    (build-once caches); otherwise ours replaces it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{PARTIAL}{os.getpid()}-"))
    try:
        yield tmp
        if not keep_existing:
            install_atomically(tmp, target)
        else:
            try:
                os.replace(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was installed
