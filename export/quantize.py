"""Per-CPU int8 presets and dynamic quantization with onnxruntime.

Dynamic quantization multiplies uint8 activations by int8 weights. How those products are summed
depends on the CPU, and that decides the preset:

* x86 with AVX2 but no VNNI: the u8×s8 kernel (VPMADDUBSW) adds pairs of products into a saturating
  16-bit lane; 255·127·2 overflows it. Either quantize weights to 7 bits (``reduce_range``: 255·64·2
  fits) or use uint8 weights (the u8×u8 kernel widens first and never saturates, but is slower). The
  export measures both and keeps the 7-bit graph unless uint8 ranks clearly better (``select.pick``).
* x86 with AVX512-VNNI or AVX-VNNI: VPDPBUSD accumulates straight into 32 bits, so full-range int8.
* arm64: the NEON/dot-product kernels also accumulate in 32 bits: full-range int8, per channel.

The classifier head (and the pooler before it) stays fp32 by rule: it is a tiny share of the work and
its error lands directly on the score. Other nodes stay fp32 only when measured: if a gated export
misses the fidelity bar, nodes are ranked by the error each causes when quantized alone, and the worst
are kept in fp32, one step at a time, until the variant passes (``select.py`` does this). Embedding tables (``Gather``) are most of a 250k-vocabulary
model's size; whether they are quantized is decided by measured fidelity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reranker_onnx.manifest import Quantization

log = logging.getLogger(__name__)

HEAD_MARKERS = ("classifier", "pooler", "/head/")  # node-name parts of the scoring head, kept fp32
EMBEDDING_OPS = ("Gather", "EmbedLayerNormalization")


@dataclass(frozen=True)
class Preset:
    variant: str  # the variant name the runtime chooses by
    file: str  # conventional file name inside the model directory
    weight_type: Literal["qint8", "quint8"]
    per_channel: bool
    reduce_range: bool
    why: str

    def recipe(self, quantize_embeddings: bool, excluded: list[str]) -> Quantization:
        return Quantization(self.variant, self.weight_type, self.per_channel, self.reduce_range,
                            quantize_embeddings, tuple(excluded), "dynamic", self.why)


AVX2_CANDIDATES = (
    Preset("avx2", "onnx/model_qint8_avx2.onnx", "qint8", True, True,
           "7-bit int8 weights keep u8×s8 pair sums within int16 on AVX2 without VNNI"),
    Preset("avx2", "onnx/model_quint8_avx2.onnx", "quint8", True, False,
           "uint8 weights use the u8×u8 kernel, which widens before adding and cannot saturate"),
)
AVX512_VNNI = Preset("avx512_vnni", "onnx/model_qint8_avx512_vnni.onnx", "qint8", True, False,
                     "VNNI accumulates u8×s8 products in 32 bits: the full int8 range is safe")
ARM64 = Preset("arm64", "onnx/model_qint8_arm64.onnx", "qint8", True, False,
               "ARM int8 kernels accumulate in 32 bits: full-range per-channel int8")
# The presets each int8 variant's graph is chosen from (export/select.py), fastest kernel first.
CANDIDATES: dict[str, tuple[Preset, ...]] = {"avx2": AVX2_CANDIDATES, "avx512_vnni": (AVX512_VNNI,), "arm64": (ARM64,)}


def head_nodes(model_path: Path) -> list[str]:
    """Names of the nodes that belong to the scoring head (pooler, classifier)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    names = []
    for node in graph.node:
        if any(m in node.name for m in HEAD_MARKERS):
            names.append(node.name)
            if node.op_type == "Gemm":  # the quantizer splits Gemm into "<name>_MatMul" + "<name>_Add" first
                names.append(f"{node.name}_MatMul")
    return names


def quantizable_nodes(model_path: Path, quantize_embeddings: bool) -> list[str]:
    """Nodes dynamic quantization would convert, outside the head, in graph order."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    ops = _ops(quantize_embeddings)
    head = set(head_nodes(model_path))
    return [
        n.name for n in graph.node
        if n.op_type in ops and n.name not in head and any(i in weights for i in n.input)
    ]


def _ops(quantize_embeddings: bool) -> list[str]:
    return ["MatMul", "Attention", *(EMBEDDING_OPS if quantize_embeddings else ())]


def quantize(source: Path, output: Path, preset: Preset, quantize_embeddings: bool,
             keep_fp32: tuple[str, ...] = (), only: tuple[str, ...] | None = None) -> Quantization:
    """Write the int8 graph for ``preset``; return its recipe for the manifest.

    ``keep_fp32`` names nodes found too sensitive to quantize (besides the head); ``only`` limits
    quantization to the named nodes (used to measure one node's sensitivity).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = head_nodes(source) + list(keep_fp32)
    ops = _ops(quantize_embeddings)
    output.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(source),
        str(output),
        op_types_to_quantize=ops,
        per_channel=preset.per_channel,
        reduce_range=preset.reduce_range,
        weight_type=QuantType.QInt8 if preset.weight_type == "qint8" else QuantType.QUInt8,
        nodes_to_exclude=excluded,
        nodes_to_quantize=list(only) if only is not None else None,
        # Fused contrib ops defeat ONNX shape inference; their outputs are float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return preset.recipe(quantize_embeddings, excluded)
