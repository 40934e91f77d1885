"""Checkpoint → fp32 ONNX graph with dynamic batch and sequence axes, then optional fusion.

optimum-onnx converts the architectures transformers ships; JinaBERT goes through the project's own
module. onnxruntime's transformer optimizer fuses attention, LayerNorm and GELU for BERT-like graphs;
the fused graph is kept only if it still matches the reference and is faster (decided by the caller).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ExportError

if TYPE_CHECKING:
    from .families import Family

log = logging.getLogger(__name__)


def to_onnx(checkpoint: Path, family: Family, output: Path, opset: int) -> Path:
    """Write the fp32 graph of ``checkpoint`` to ``output`` (a .onnx file path) with the family's converter."""
    output.parent.mkdir(parents=True, exist_ok=True)
    family.convert(checkpoint, output, opset)
    return output


def jinabert_onnx(checkpoint: Path, output: Path, opset: int) -> None:
    """JinaBERT through the project's own port (upstream's modeling code is remote code we never run)."""
    from .jinabert import JinaBertForSequenceClassification, export_onnx

    export_onnx(JinaBertForSequenceClassification.from_pretrained(checkpoint).eval(), output, opset=opset)


def optimum_onnx(checkpoint: Path, output: Path, opset: int) -> None:
    """The architectures transformers ships, through optimum-onnx."""
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        # library_name: a cross-encoder repo with config_sentence_transformers.json (newer upstream
        # commits have one) otherwise makes optimum pick sentence-transformers, which has no
        # text-classification task (found by the seed replicas).
        main_export(
            str(checkpoint), tmp, task="text-classification", opset=opset, do_validation=False,
            device="cpu", local_files_only=True, no_post_process=False, library_name="transformers",
        )
        produced = Path(tmp) / "model.onnx"
        if not produced.is_file():
            raise ExportError(f"optimum produced no model.onnx for {checkpoint}")
        if (Path(tmp) / "model.onnx_data").exists():
            raise ExportError("the graph needs external data (>2 GB); not supported for edge deployment")
        shutil.move(str(produced), output)


def graph_inputs(path: Path) -> tuple[str, ...]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return tuple(i.name for i in model.graph.input)


def fuse(source: Path, output: Path, family: Family, config: dict) -> Path | None:
    """Fuse attention/LayerNorm/GELU with onnxruntime's transformer optimizer; None if not applicable."""
    if family.fusion is None:
        return None
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(
        str(source), model_type=family.fusion, num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]), opt_level=1, use_gpu=False, only_onnxruntime=False,
    )
    model.save_model_to_file(str(output))
    log.info("fusion: %s", model.get_fused_operator_statistics())
    return output
