"""Build the tiny ONNX graphs that probe an onnxruntime wheel under emulation (run on x86 with `onnx`).

Each graph exercises one kernel family that a reranker variant uses: fp32 GEMM (the fp32 graph),
u8 x s8 and u8 x u8 integer GEMM (static int8), and dynamic quantization (the int8 variants made by
`quantize_dynamic`, which onnxruntime fuses into DynamicQuantizeMatMul). Expected outputs are computed
here with numpy and stored beside the graphs.

    python make_models.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Old wheels (1.16) read IR version 9 at most; opset 13 is understood by every version probed.
IR_VERSION = 8
OPSET = 13
M, K, N = 8, 64, 32  # small, but larger than one kernel tile so the blocked GEMM paths run


def _save(graph: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def build(out: Path) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    cases: dict[str, dict[str, object]] = {}

    # fp32 MatMul: x[M,K] @ w[K,N]
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((K, N)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul_fp32",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
        [numpy_helper.from_array(w, "w")],
    )
    _save(g, out / "matmul_fp32.onnx")
    cases["matmul_fp32"] = {"inputs": {"x": x.tolist()}, "dtype": "float32", "expected": (x @ w).tolist(), "atol": 1e-3}

    # Integer GEMM with zero points: (a - za)[M,K] @ (b - zb)[K,N] in int32.
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    za = np.uint8(128)
    for name, b_dtype, lo, hi, zb in (
        ("matmul_integer_u8s8", np.int8, -128, 128, np.int8(0)),
        ("matmul_integer_u8u8", np.uint8, 0, 256, np.uint8(128)),
    ):
        b = rng.integers(lo, hi, (K, N), dtype=b_dtype)
        g = helper.make_graph(
            [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])],
            name,
            [helper.make_tensor_value_info("a", TensorProto.UINT8, [M, K])],
            [helper.make_tensor_value_info("y", TensorProto.INT32, [M, N])],
            [
                numpy_helper.from_array(b, "b"),
                numpy_helper.from_array(np.array(za), "za"),
                numpy_helper.from_array(np.array(zb), "zb"),
            ],
        )
        _save(g, out / f"{name}.onnx")
        want = (a.astype(np.int32) - int(za)) @ (b.astype(np.int32) - int(zb))
        cases[name] = {"inputs": {"a": a.tolist()}, "dtype": "uint8", "expected": want.tolist(), "atol": 0}

    # Dynamic quantization, the shape quantize_dynamic writes: x -> DynamicQuantizeLinear -> MatMulInteger
    # against per-tensor s8 weights -> Cast -> Mul(scale_x * scale_w). Compared with fp32 at a loose bound.
    wq_scale = np.float32(np.abs(w).max() / 127.0)
    wq = np.clip(np.round(w / wq_scale), -127, 127).astype(np.int8)
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["acc"]),
        helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["xs", "ws"], ["s"]),
        helper.make_node("Mul", ["accf", "s"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "dynamic_quant_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
        [
            numpy_helper.from_array(wq, "wq"),
            numpy_helper.from_array(np.array(np.int8(0)), "wz"),
            numpy_helper.from_array(np.array(wq_scale), "ws"),
        ],
    )
    _save(g, out / "dynamic_quant_matmul.onnx")
    # The quantization error bound: a few percent of the output scale is plenty to catch garbage.
    atol = float(0.05 * np.abs(x @ w).max())
    cases["dynamic_quant_matmul"] = {"inputs": {"x": x.tolist()}, "dtype": "float32", "expected": (x @ w).tolist(), "atol": atol}

    (out / "cases.json").write_text(json.dumps(cases))
    return cases


if __name__ == "__main__":
    print(sorted(build(Path(sys.argv[1]))))
