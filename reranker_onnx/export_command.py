"""``rerank-onnx export``: hand over to the export stage, which ships in the same wheel as
``reranker_onnx_export`` and needs the ``export`` extra (torch, transformers, optimum) to run.

Nothing here imports the export stage until the command runs, so ``import reranker_onnx`` and the other
commands stay lean. An editable checkout has ``export/`` beside ``reranker_onnx/`` instead (hatch
cannot rename a package in dev mode); it is used only when it is that checkout's.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

PROG = "rerank-onnx export"
INSTALL_HINT = "pip install 'reranker-onnx[export]' (after the CPU build of torch, see the README)"


def _stage():
    try:
        return importlib.import_module("reranker_onnx_export.__main__")
    except ModuleNotFoundError as exc:
        if exc.name not in ("reranker_onnx_export", "reranker_onnx_export.__main__"):
            raise
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "export" / "__main__.py").is_file():
        module = importlib.import_module("export.__main__")
        if Path(module.__file__).resolve().parent == checkout / "export":
            return module
    return None


def export_main(argv: list[str]) -> int:
    """Run the export stage with ``argv``; its exit code (2 with the extra to install if it is missing)."""
    try:
        stage = _stage()
    except ImportError as exc:  # the stage is there, one of its dependencies is not
        stage, missing = None, exc.name
    else:
        missing = None
    if stage is None:
        what = f"missing {missing}: " if missing else ""
        print(f"{PROG}: {what}the export stage needs the export extra: {INSTALL_HINT}", file=sys.stderr)
        return 2
    return stage.main(argv, prog=PROG)
