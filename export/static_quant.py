"""Static int8: activation scales fixed at export time from real text, so no score depends on its batch.

Dynamic quantization (``quantize.quantize``) puts a ``DynamicQuantizeLinear`` before every int8 MatMul
and attention: it takes the min and max of the whole batch tensor at run time and quantizes with them,
so one long or unusual passage in a batch coarsens the grid every other passage is rounded to. Here
the same graph is kept, with each ``DynamicQuantizeLinear`` replaced by a ``QuantizeLinear`` whose
scale and zero point are constants measured on calibration text: every element is rounded on a grid
that no other pair can move. Weights, exclusions and kernels (``MatMulInteger`` → onnxruntime's
``MatMulIntegerToFloat``, ``QAttention``) stay exactly as the dynamic recipe made them, so every
family and every CPU preset gets the same treatment, and the per-batch min/max pass is gone.

Calibration text is real Debian descriptions disjoint from the validation set, of mixed lengths (a
quarter long enough to be truncated), scored one pair at a time so padding never widens a range.
A range is the min and max seen, widened to hold 0 (so padding and zeros are exact), as
``DynamicQuantizeLinear`` computes it per batch; a value beyond it at run time saturates instead of
moving the grid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reranker_onnx.manifest import Quantization

from .debian import Language, read_descriptions
from .validation import ValidationSet

SCHEME = "static"
# Largest |Δ logit| a pair may show between batch compositions for a graph to count as batch
# independent: float rounding only (see QUANTIZATION.md for what was measured), far below int8's error.
BATCH_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Range:
    low: float
    high: float

    def scale_zero_point(self) -> tuple[float, int]:
        """uint8 asymmetric parameters, computed as ``DynamicQuantizeLinear`` does from a min and max."""
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        scale = (high - low) / 255.0 or 1.0
        zero_point = int(np.clip(np.round(-low / scale), 0, 255))
        return float(scale), zero_point


def calibration_pairs(languages: tuple[Language, ...], exclude: ValidationSet, queries_per_language: int = 8,
                      group_size: int = 8) -> list[tuple[str, str]]:
    """Real pairs of mixed lengths from descriptions the validation set does not use."""
    used_queries = {q for q, _ in exclude.pairs}
    used_passages = [p for _, p in exclude.pairs]
    pairs: list[tuple[str, str]] = []
    for lang in languages:
        docs = read_descriptions(lang)
        order = sorted(range(len(docs)), key=lambda i: hashlib.sha256(f"calibration-{lang}:{docs[i].md5}".encode()).digest())
        free = (d for d in (docs[i] for i in order)
                if d.synopsis not in used_queries and not any(d.body in p for p in used_passages))
        for _ in range(queries_per_language):
            query = next(free).synopsis
            for k in range(group_size):
                body = "\n\n".join(next(free).body for _ in range(8)) if k % 4 == 3 else next(free).body
                pairs.append((query, body))
    return pairs


def dynamic_inputs(model) -> dict[str, str]:
    """``DynamicQuantizeLinear`` node name → the float tensor it quantizes."""
    return {n.name: n.input[0] for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"}


def calibrate(dynamic_graph: Path, tokenizer: Path, max_length: int, pairs: list[tuple[str, str]],
              threads: int = 2) -> dict[str, Range]:
    """Min and max of every tensor a ``DynamicQuantizeLinear`` of ``dynamic_graph`` quantizes, over
    ``pairs`` scored one at a time (the dynamic graph's own upstream error included)."""
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from reranker_onnx.encoding import PairEncoder

    model = onnx.load(str(dynamic_graph))
    tensors = sorted(set(dynamic_inputs(model).values()))
    if not tensors:
        return {}
    del model.graph.output[:]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    encoder = PairEncoder(Tokenizer.from_file(str(tokenizer)), max_length)
    encoded = encoder.encode(pairs)
    low = {t: np.inf for t in tensors}
    high = {t: -np.inf for t in tensors}
    for ids, types in zip(encoded.ids, encoded.type_ids):
        feed = {"input_ids": np.asarray([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
                "token_type_ids": np.asarray([types], np.int64)}
        for name, value in zip(tensors, session.run(tensors, {k: v for k, v in feed.items() if k in inputs})):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    return {t: Range(low[t], high[t]) for t in tensors}


def make_static(dynamic_graph: Path, output: Path, ranges: dict[str, Range]) -> int:
    """Rewrite ``dynamic_graph`` with fixed activation scales; returns how many quantizers were fixed."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(dynamic_graph))
    graph = model.graph
    fixed = 0
    for node in list(graph.node):
        if node.op_type != "DynamicQuantizeLinear":
            continue
        scale, zero_point = ranges[node.input[0]].scale_zero_point()
        _, scale_name, zp_name = node.output  # consumers keep reading these names, now constants
        graph.initializer.extend([
            numpy_helper.from_array(np.asarray(scale, np.float32), scale_name),
            numpy_helper.from_array(np.asarray(zero_point, np.uint8), zp_name),
        ])
        position = list(graph.node).index(node)
        graph.node.remove(node)
        graph.node.insert(position, helper.make_node(
            "QuantizeLinear", [node.input[0], scale_name, zp_name], [node.output[0]], name=f"{node.name}_static"))
        fixed += 1
    _fuse_integer_matmuls(graph)
    # value_info of the former dynamic outputs would now shadow initializers: drop them
    constants = {i.name for i in graph.initializer}
    kept = [v for v in graph.value_info if v.name not in constants]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(output))
    return fixed


def _fuse_integer_matmuls(graph) -> None:
    """``MatMulInteger → Cast → Mul(a_scale·b_scale)`` into one ``MatMulIntegerToFloat``.

    onnxruntime fuses that chain itself only when a ``DynamicQuantizeLinear`` feeds it; with a constant
    activation scale it would run three kernels and an int32 tensor instead of one.
    """
    from onnx import helper

    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    dead = []
    for node in list(graph.node):
        if node.op_type != "MatMulInteger":
            continue
        cast = _only_consumer(consumers, node.output[0], "Cast")
        mul = cast and _only_consumer(consumers, cast.output[0], "Mul")
        scales = mul and producer.get(mul.input[1])
        if not (mul and scales is not None and scales.op_type == "Mul"):
            continue
        a_q, b_q, a_zp, b_zp = (list(node.input) + ["", ""])[:4]
        fused = helper.make_node("MatMulIntegerToFloat", [a_q, b_q, scales.input[0], scales.input[1], a_zp, b_zp],
                                 [mul.output[0]], name=f"{node.name}_to_float", domain="com.microsoft")
        graph.node.insert(list(graph.node).index(node), fused)
        dead += [node, cast, mul]
        if len(consumers[scales.output[0]]) == 1:
            dead.append(scales)
    for node in dead:
        graph.node.remove(node)


def _only_consumer(consumers: dict, tensor: str, op_type: str):
    found = consumers.get(tensor, [])
    return found[0] if len(found) == 1 and found[0].op_type == op_type else None


def quantize_static(dynamic_graph: Path, output: Path, tokenizer: Path, max_length: int,
                    pairs: list[tuple[str, str]], threads: int = 2) -> dict:
    """Calibrate and rewrite; returns what this scheme adds to the dynamic recipe (``as_static``)."""
    ranges = calibrate(dynamic_graph, tokenizer, max_length, pairs, threads)
    fixed = make_static(dynamic_graph, output, ranges)
    return {"activations": "uint8 per tensor, scale fixed from calibration min/max",
            "calibration_pairs": len(pairs), "static_quantizers": fixed}


def as_static(recipe: Quantization, details: dict) -> Quantization:
    """The dynamic recipe a static graph was rewritten from, marked static, with its calibration."""
    return replace(recipe, mode=SCHEME, extra={**recipe.extra, **details})


def as_dynamic(recipe: Quantization) -> Quantization:
    """The recipe of the dynamic graph a static one was made from (for side-by-side measurements)."""
    extra = {k: v for k, v in recipe.extra.items() if k not in ("activations", "calibration_pairs", "static_quantizers")}
    return replace(recipe, mode="dynamic", extra={k: v for k, v in extra.items() if not k.startswith("batch_")})


def with_batch_record(recipe: Quantization, spread: float) -> Quantization:
    """``recipe`` with its measured batch spread and the verdict a server reads (``batch_independent``)."""
    return replace(recipe, extra={**recipe.extra, "batch_spread": float(f"{spread:.3g}"),
                                  "batch_independent": bool(spread <= BATCH_TOLERANCE)})
