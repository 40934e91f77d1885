"""Reading upstream graphs for what they hold, and mapping them to the DESIGN table's variants."""

from __future__ import annotations

import pytest

from reranker_onnx import cpu
from reranker_onnx.graphs import GraphInfo, inspect_graph
from reranker_onnx.manifest import Quantization
from reranker_onnx.upstream import HINTS, _order, fit

SCHEMES = {  # file: (weight_type, per_channel, reduce_range)
    "s8_full_pc.onnx": ("qint8", True, False),
    "s8_reduced_pc.onnx": ("qint8", True, True),
    "s8_full_pt.onnx": ("qint8", False, False),
    "u8_pc.onnx": ("quint8", True, False),
}


@pytest.fixture(scope="module")
def graphs(exported, tmp_path_factory):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = exported("bert") / "onnx" / "model.onnx"
    folder = tmp_path_factory.mktemp("graphs")
    for name, (weight_type, per_channel, reduce_range) in SCHEMES.items():
        quantize_dynamic(str(source), str(folder / name), per_channel=per_channel, reduce_range=reduce_range,
                         weight_type=QuantType.QInt8 if weight_type == "qint8" else QuantType.QUInt8,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1})
    return source, folder


def test_an_fp32_graph_reads_as_fp32_with_its_inputs(graphs):
    info = inspect_graph(graphs[0])
    assert info.kind == "fp32" and info.recipe() == {}
    assert info.inputs == ("input_ids", "attention_mask", "token_type_ids") and info.outputs == ("logits",)


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_the_weights_are_read_not_the_name(graphs, name):
    weight_type, per_channel, reduce_range = SCHEMES[name]
    info = inspect_graph(graphs[1] / name)
    assert (info.kind, info.weight_type, info.per_channel, info.reduce_range) == ("int8", weight_type, per_channel,
                                                                                    reduce_range)
    low, high = info.weight_range
    saturates = Quantization.from_dict({**info.recipe(), "variant": "avx2"}).saturates_without_vnni  # the one rule
    if weight_type == "qint8":
        assert max(-low, high) == (64 if reduce_range else 127)
        assert info.symmetric and saturates == (not reduce_range)
    else:
        assert not saturates
    assert info.recipe()["read_from_graph"] and info.inputs == inspect_graph(graphs[0]).inputs


def test_the_reader_agrees_with_onnx_on_a_quantized_graph(graphs):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    path = graphs[1] / "s8_full_pc.onnx"
    model = onnx.load(str(path))
    int8 = [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    info = inspect_graph(path)
    assert info.quantized_weights == len(int8)
    assert info.weight_range == (int(min(a.min() for a in int8)), int(max(a.max() for a in int8)))
    assert np.all([a.dtype == np.int8 for a in int8])


def test_a_file_that_is_not_onnx_is_a_value_error(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"<html>404</html>")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        inspect_graph(bad)


def _info(weight_type: str, reduce_range: bool, symmetric: bool = True) -> GraphInfo:
    return GraphInfo(("input_ids",), ("logits",), "int8", weight_type, reduce_range, (-127, 127), True, symmetric, 1)


def test_full_range_int8_never_takes_the_saturating_kernel_on_avx2():
    full, reduced, uint8 = _info("qint8", False), _info("qint8", True), _info("quint8", False, False)
    assert fit(uint8, "avx2")[0] == fit(reduced, "avx2")[0] == 0
    rank, why = fit(full, "avx2")
    assert rank == 2 and "exact kernel" in why  # usable only with onnxruntime's exact u8×s8 kernel
    assert fit(full, "avx512_vnni")[0] == 0 and fit(full, "arm64")[0] == 0
    assert fit(GraphInfo((), (), "fp32"), "avx2") is None
    assert fit(GraphInfo((), (), "unsupported", why_unsupported="4-bit"), "arm64") is None


def test_the_runtime_uses_the_exact_kernel_for_a_full_range_graph_on_avx2(graphs, tmp_path, monkeypatch):
    """A pulled full-range graph on an AVX2 host without VNNI: the session gets the exact kernel."""
    import shutil

    from reranker_onnx import Reranker
    from reranker_onnx.manifest import Quantization, Variant, file_entry, read_manifest

    model = tmp_path / "model"
    shutil.copytree(graphs[0].parents[1], model)
    shutil.copyfile(graphs[1] / "s8_full_pc.onnx", model / "onnx" / "pulled.onnx")
    manifest = read_manifest(model)
    recipe = Quantization.from_dict({**inspect_graph(model / "onnx" / "pulled.onnx").recipe(), "variant": "avx2"})
    files = {**manifest.files, "onnx/pulled.onnx": file_entry(model / "onnx" / "pulled.onnx")}
    variants = {"fp32": manifest.variants["fp32"], "avx2": Variant("onnx/pulled.onnx", quantization=recipe)}
    from dataclasses import replace

    replace(manifest, files=files, variants=variants).write(model)
    avx2 = cpu.CpuFeatures("x86_64", frozenset({"avx2", "fma"}), source="test")
    monkeypatch.setattr(cpu, "detect", lambda: avx2)
    reranker = Reranker(model)
    assert reranker.info.variant == "avx2" and reranker.info.exact_int8


@pytest.mark.parametrize("variant", sorted(HINTS))
def test_hints_only_order_downloads(variant):
    graphs = ["onnx/model_zzz.onnx", *(f"onnx/{h}.onnx" for h in reversed(HINTS[variant]))]
    order = _order(graphs, variant)
    assert order[0] == f"onnx/{HINTS[variant][0]}.onnx" and order[-1] == "onnx/model_zzz.onnx"
    assert sorted(order) == sorted(graphs)
