"""Where named models live: a per-user store, never a shared temporary folder.

``RERANKER_ONNX_HOME`` overrides the location. A name resolves to ``<store>/<name>``; a path that
exists is used as it is.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
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
