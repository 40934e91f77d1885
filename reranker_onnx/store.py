"""Where named models live: a per-user store, never a shared temporary folder.

``RERANKER_ONNX_HOME`` overrides the location. A name resolves to ``<store>/<name>``; a path that
exists is used as it is.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ModelNotFoundError

ENV_HOME = "RERANKER_ONNX_HOME"


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
    raise ModelNotFoundError(
        f"model {str(model)!r} not found: it is neither a directory nor a model in the store "
        f"({store_dir()}); fetch it with `rerank-onnx pull NAME`, or export it with `make export MODEL=NAME`"
    )


def install_atomically(tmp: Path, target: Path) -> None:
    """Swap a complete directory into place: an older copy is moved aside first, then removed.

    ``tmp`` must be on the same filesystem as ``target`` (a sibling), so each rename is atomic.
    """
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _partial_prefix(target: Path) -> str:
    return f".{target.name}.partial-"


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill would terminate it there: never sweep on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def sweep_partials(target: Path) -> None:
    """Remove the staging folders of ``target`` whose owner process is gone (killed mid-write)."""
    prefix = _partial_prefix(target)
    for folder in Path(target).parent.glob(f"{prefix}*"):
        pid = folder.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


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
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f"{_partial_prefix(target)}{os.getpid()}-"))
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
