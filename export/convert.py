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

from .families import ExportError, Family

log = logging.getLogger(__name__)

OPSET = 17


def to_onnx(checkpoint: Path, family: Family, output: Path) -> Path:
    """Write the fp32 graph of ``checkpoint`` to ``output`` (a .onnx file path)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if family.converter == "jinabert":
        from .jinabert import JinaBertForSequenceClassification, export_onnx

        export_onnx(JinaBertForSequenceClassification.from_pretrained(checkpoint).eval(), output, opset=OPSET)
        return output
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        main_export(
            str(checkpoint), tmp, task="text-classification", opset=OPSET, do_validation=False,
            device="cpu", local_files_only=True, no_post_process=False,
            library_name="transformers",  # a sentence-transformers layout (modules.json) is still a transformers model
        )
        produced = Path(tmp) / "model.onnx"
        if not produced.is_file():
            raise ExportError(f"optimum produced no model.onnx for {checkpoint}")
        if (Path(tmp) / "model.onnx_data").exists():
            raise ExportError("the graph needs external data (>2 GB); not supported for edge deployment")
        shutil.move(str(produced), output)
    return output


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
