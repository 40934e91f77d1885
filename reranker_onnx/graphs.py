"""Read an ONNX graph for what decides where it may run: inputs, output, and how its weights are quantized.

Upstream repos name their graphs by habit (``model_qint8_avx2.onnx`` may hold full-range int8 weights), so
``rerank-onnx pull`` trusts what the file holds, not its name. The runtime has no ``onnx`` package; the
protobuf runtime that onnxruntime already depends on parses the file against the few ONNX message fields
read here (field numbers from onnx.proto; every other field is skipped by the parser).

Why the weights matter (see ``cpu.py``): on x86 without VNNI, onnxruntime's fast u8×s8 kernel adds two
products in a saturating 16-bit lane, so it is exact only while every int8 weight is within ±64
(255·64·2 < 2^15); uint8 weights take the u8×u8 kernel, which cannot saturate. VNNI and arm64 kernels sum
in 32 bits, so full-range int8 is safe there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

# TensorProto.DataType values used here.
FLOAT, UINT8, INT8, FLOAT16 = 1, 2, 3, 10
SATURATION_SAFE_INT8 = 64  # |w| ≤ 64 keeps 255·|w1| + 255·|w2| within int16
QUANTIZED_OPS = frozenset({
    "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention", "QGemm", "QLinearMatMul",
    "DequantizeLinear", "ConvInteger",
})  # fmt: skip
# op type -> input positions of (weight, its scale, its zero point); None where the op takes no such input.
WEIGHT_SLOTS: dict[str, tuple[int, int | None, int | None]] = {
    "MatMulInteger": (1, None, 3), "ConvInteger": (1, None, 3), "DynamicQuantizeMatMul": (1, 2, 3),
    "MatMulIntegerToFloat": (1, 3, 5), "QAttention": (1, 4, 7), "QLinearMatMul": (3, 4, 5), "QGemm": (3, 4, 5),
    "DequantizeLinear": (0, 1, 2),
}  # fmt: skip
EMBEDDING_OPS = ("Gather", "EmbedLayerNormalization")
UNSUPPORTED_OPS = frozenset({"MatMulNBits", "MatMulBnb4", "GatherBlockQuantized"})  # 4-bit and block formats


@lru_cache(maxsize=1)
def _model_class() -> Any:
    """A protobuf class for the subset of ``onnx.ModelProto`` read here (proto2, as onnx.proto is)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    spec = {
        "StringStringEntryProto": [("key", 1, F.TYPE_STRING, False), ("value", 2, F.TYPE_STRING, False)],
        "TensorProto": [
            ("dims", 1, F.TYPE_INT64, True), ("data_type", 2, F.TYPE_INT32, False),
            ("int32_data", 5, F.TYPE_INT32, True), ("name", 8, F.TYPE_STRING, False),
            ("raw_data", 9, F.TYPE_BYTES, False), ("data_location", 14, F.TYPE_INT32, False),
        ],
        "AttributeProto": [("name", 1, F.TYPE_STRING, False), ("t", 5, ".reranker_onnx_graph.TensorProto", False)],
        "NodeProto": [
            ("input", 1, F.TYPE_STRING, True), ("output", 2, F.TYPE_STRING, True), ("name", 3, F.TYPE_STRING, False),
            ("op_type", 4, F.TYPE_STRING, False), ("attribute", 5, ".reranker_onnx_graph.AttributeProto", True),
            ("domain", 7, F.TYPE_STRING, False),
        ],
        "ValueInfoProto": [("name", 1, F.TYPE_STRING, False)],
        "GraphProto": [
            ("node", 1, ".reranker_onnx_graph.NodeProto", True),
            ("initializer", 5, ".reranker_onnx_graph.TensorProto", True),
            ("input", 11, ".reranker_onnx_graph.ValueInfoProto", True),
            ("output", 12, ".reranker_onnx_graph.ValueInfoProto", True),
        ],
        "ModelProto": [("graph", 7, ".reranker_onnx_graph.GraphProto", False)],
    }
    proto = descriptor_pb2.FileDescriptorProto(name="reranker_onnx_graph.proto", package="reranker_onnx_graph",
                                               syntax="proto2")
    for message, fields in spec.items():
        m = proto.message_type.add(name=message)
        for name, number, kind, repeated in fields:
            f = m.field.add(name=name, number=number,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if isinstance(kind, str):
                f.type, f.type_name = F.TYPE_MESSAGE, kind
            else:
                f.type = kind
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("reranker_onnx_graph.ModelProto"))


@dataclass(frozen=True)
class GraphInfo:
    """What a graph is, as read from its bytes."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kind: str  # "fp32", "int8" or "unsupported"
    weight_type: str | None = None  # "qint8", "quint8" or "mixed" for int8 graphs
    reduce_range: bool = False  # qint8: every weight within ±64; quint8: within [0, 127]
    weight_range: tuple[int, int] | None = None
    per_channel: bool = False
    symmetric: bool = False  # qint8 with all zero points 0
    quantized_weights: int = 0
    quantized_embeddings: bool = False
    why_unsupported: str = ""
    ops: dict[str, int] = field(default_factory=dict)

    def recipe(self) -> dict[str, Any]:
        """The manifest's ``quantization`` entry for this graph (empty for fp32)."""
        if self.kind != "int8":
            return {}
        data = asdict(self)
        for key in ("inputs", "outputs", "kind", "why_unsupported"):
            data.pop(key)
        data["weight_range"] = list(self.weight_range or ())
        data["read_from_graph"] = True
        data["quantize_embeddings"] = data.pop("quantized_embeddings")
        if self.weight_type == "mixed":  # some weights are int8: the runtime must treat it as int8 (saturation)
            data.update(weight_type="qint8", mixed_weight_types=True)
        return data

    def describe(self) -> str:
        if self.kind == "fp32":
            return "fp32 weights"
        if self.kind == "unsupported":
            return f"not usable here ({self.why_unsupported})"
        low, high = self.weight_range or (0, 0)
        parts = [
            {"qint8": "int8", "quint8": "uint8"}.get(self.weight_type or "", "mixed int8/uint8") + " weights",
            f"in [{low}, {high}]" + (" (reduced range)" if self.reduce_range else " (full range)"),
            "per-channel" if self.per_channel else "per-tensor",
            "symmetric" if self.symmetric else "with zero points",
            f"{self.quantized_weights} quantized tensors" + (", embeddings included" if self.quantized_embeddings else ""),
        ]
        return ", ".join(parts)


def _array(tensor: Any) -> np.ndarray | None:
    """The values of an int8/uint8 tensor stored inline (raw_data or int32_data)."""
    dtype = {INT8: np.int8, UINT8: np.uint8}.get(tensor.data_type)
    if dtype is None or tensor.data_location == 1:  # external data: not read
        return None
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype=dtype)
    return np.asarray(tensor.int32_data, dtype=np.int32).astype(dtype)


def inspect_graph(path: Path | str) -> GraphInfo:
    """Read ``path`` and classify it; raises ValueError for a file that is not an ONNX model."""
    from google.protobuf.message import DecodeError

    model = _model_class()()
    try:
        model.ParseFromString(Path(path).read_bytes())
    except DecodeError as exc:
        raise ValueError(f"{path} is not an ONNX model ({exc})") from None
    graph = model.graph
    if not graph.node:
        raise ValueError(f"{path} is not an ONNX model (no graph nodes)")
    tensors = {t.name: t for t in graph.initializer}
    for node in graph.node:  # weights can also sit in Constant nodes
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and node.output:
                    tensors[node.output[0]] = attr.t
    inputs = tuple(i.name for i in graph.input if i.name not in tensors)
    outputs = tuple(o.name for o in graph.output)
    ops: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in QUANTIZED_OPS | UNSUPPORTED_OPS:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
    unsupported = sorted(set(ops) & UNSUPPORTED_OPS)
    if unsupported:
        return GraphInfo(inputs, outputs, "unsupported", why_unsupported=f"block-quantized ops {', '.join(unsupported)}",
                         ops=ops)
    weights: dict[str, tuple[Any, Any, Any]] = {}  # weight name -> (tensor, scale, zero point) of matmul-like ops
    embeddings = {i for n in graph.node if n.op_type in EMBEDDING_OPS for i in n.input if i in tensors}
    consumers = {i: n.op_type for n in graph.node for i in n.input}
    for node in graph.node:
        slots = WEIGHT_SLOTS.get(node.op_type)
        if slots is None or len(node.input) <= slots[0] or node.input[slots[0]] not in tensors:
            continue
        name = node.input[slots[0]]
        if len(tensors[name].dims) < 2:  # a quantized bias or norm parameter, not a matmul weight
            continue
        if node.op_type == "DequantizeLinear" and consumers.get(node.output[0] if node.output else "") in EMBEDDING_OPS:
            embeddings.add(name)
            continue
        scale, zero = (tensors.get(node.input[i]) if i is not None and i < len(node.input) else None for i in slots[1:])
        weights[name] = (tensors[name], scale, zero)
    weights = {k: v for k, v in weights.items() if v[0].data_type in (INT8, UINT8)}
    if not weights:
        float_types = {t.data_type for t in tensors.values() if len(t.dims) >= 2 and t.data_type in (FLOAT, FLOAT16)}
        if float_types == {FLOAT16}:
            return GraphInfo(inputs, outputs, "unsupported", why_unsupported="fp16 weights", ops=ops)
        return GraphInfo(inputs, outputs, "fp32", ops=ops)
    low, high, types, per_channel, symmetric = 0, 0, set(), False, True
    for tensor, scale, zero in weights.values():
        values = _array(tensor)
        if values is None:
            return GraphInfo(inputs, outputs, "unsupported", why_unsupported="weights in external data files", ops=ops)
        types.add(tensor.data_type)
        low, high = min(low, int(values.min())), max(high, int(values.max()))
        zeros = _array(zero) if zero is not None else None
        sizes = [int(np.prod(t.dims)) for t in (scale, zero) if t is not None]
        per_channel = per_channel or any(size > 1 for size in sizes)
        symmetric = symmetric and tensor.data_type == INT8 and (zeros is None or not zeros.any())
    weight_type = "qint8" if types == {INT8} else "quint8" if types == {UINT8} else "mixed"
    reduce_range = max(-low, high) <= SATURATION_SAFE_INT8 if weight_type == "qint8" else high <= 127
    quantized_embeddings = any(tensors[name].data_type in (INT8, UINT8) for name in embeddings)
    return GraphInfo(
        inputs, outputs, "int8", weight_type, reduce_range, (low, high), per_channel, symmetric, len(weights),
        quantized_embeddings, ops=ops,
    )
