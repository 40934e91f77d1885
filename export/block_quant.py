"""Block-quantized weights (onnxruntime's ``MatMulNBits``) with int8 compute: a batch-independent candidate.

With ``accuracy_level=4`` the kernel quantizes activations to int8 per row and per block of the
reduction axis, so each token row is rounded on its own grid and no batch-mate can move it. Weights
are 8- or 4-bit in blocks of ``block_size`` along K, each with its own scale. Only plain ``MatMul``
nodes are converted (a fused ``Attention``'s projections stay fp32), and the head stays fp32 as in
every scheme here. Measured against the static scheme in ``bench.quant_schemes``.
"""

from __future__ import annotations

from pathlib import Path

from .quantize import head_nodes

ACCURACY_LEVEL_INT8 = 4  # onnxruntime: 4 = int8 activations


def quantize_blockwise(source: Path, output: Path, bits: int, block_size: int = 32,
                       keep_fp32: tuple[str, ...] = ()) -> dict:
    """Write ``source`` with ``MatMulNBits`` weights; return the recipe for the manifest."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    excluded = head_nodes(source) + list(keep_fp32)
    model = onnx.load(str(source))
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=True,
                                     accuracy_level=ACCURACY_LEVEL_INT8, nodes_to_exclude=excluded,
                                     op_types_to_quantize=("MatMul",))
    quantizer.process()
    output.parent.mkdir(parents=True, exist_ok=True)
    quantizer.model.save_model_to_file(str(output), use_external_data_format=False)
    return {"mode": f"matmul_nbits{bits}", "bits": bits, "block_size": block_size,
            "accuracy_level": ACCURACY_LEVEL_INT8, "excluded_nodes": excluded}
