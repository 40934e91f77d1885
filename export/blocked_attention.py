"""Attention in query blocks for the JinaBERT graph, so no (heads × L × L) tensor ever exists.

At 8,192 tokens one fp32 (12 heads × L × L) tensor is 3.2 GB, and a plain ``MatMul/Add/Softmax/MatMul``
graph holds several (scores, ALiBi bias, their sum, the softmax). Here the exporter writes one marker
node per layer (``BlockedAlibiAttention`` in a private domain, from :class:`BlockedAttention`'s
``symbolic``), and :func:`expand_blocked_attention` replaces each by an ONNX ``Loop`` over query blocks:

    per block b of ``block`` queries:  softmax(q_b kᵀ · scale − m_h·|i − j| + padding) v

with the ALiBi distance built inside the loop body from the block's positions, so the largest
temporary is (batch × heads × block × L). The queries are zero-padded to a whole number of blocks
(a Loop's scan output needs equal shapes per iteration) and the padded rows are sliced off after; each
query row's softmax is over all keys, so the result equals full attention up to float rounding.
"""

from __future__ import annotations

import math
import warnings

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    import onnx

DOMAIN = "reranker_onnx.jinabert"
OP = "BlockedAlibiAttention"


def blocked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, padding: torch.Tensor, neg_slopes: torch.Tensor, block: int
) -> torch.Tensor:
    """Eager twin of the Loop: (B, H, L, d) q/k/v, (B, 1, 1, L) additive padding, (H, 1, 1) −slopes."""
    length = q.size(2)
    pos = torch.arange(length, dtype=q.dtype, device=q.device)
    out = []
    for start in range(0, length, block):
        stop = min(start + block, length)
        bias = torch.addcmul(padding, neg_slopes, (pos[start:stop, None] - pos[None, :]).abs())
        out.append(F.scaled_dot_product_attention(q[:, :, start:stop], k, v, attn_mask=bias))
    return torch.cat(out, dim=2)


class BlockedAttention(torch.autograd.Function):
    """Runs :func:`blocked_attention`; exports as one marker node that :func:`expand_blocked_attention` expands."""

    @staticmethod
    def forward(ctx, q, k, v, padding, neg_slopes, block):  # type: ignore[no-untyped-def, override]
        with warnings.catch_warnings():  # under export the eager loop is traced once; symbolic replaces it
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return blocked_attention(q, k, v, padding, neg_slopes, block)

    @staticmethod
    def symbolic(g, q, k, v, padding, neg_slopes, block):  # type: ignore[no-untyped-def]
        out = g.op(f"{DOMAIN}::{OP}", q, k, v, padding, neg_slopes, block_i=block)
        out.setType(q.type())
        return out


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    from onnx import helper, numpy_helper

    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _loop_nodes(node: onnx.NodeProto, head_dim: int, prefix: str) -> list[onnx.NodeProto]:
    from onnx import TensorProto, helper

    q, k, v, padding, neg_slopes = node.input
    (out,) = node.output
    block = next(a.i for a in node.attribute if a.name == "block")
    n = lambda s: f"{prefix}/{s}"  # noqa: E731 - local name helper
    scale = np.array(1.0 / math.sqrt(head_dim), dtype=np.float32)

    body_nodes = [
        _const(n("b_block"), _i64(block)),
        _const(n("b_axis2"), _i64(2)),
        _const(n("b_axis0"), _i64(0)),
        _const(n("b_axis1"), _i64(1)),
        helper.make_node("Unsqueeze", [n("iter"), n("b_axis0")], [n("b_iter1")]),
        helper.make_node("Mul", [n("b_iter1"), n("b_block")], [n("b_start")]),
        helper.make_node("Add", [n("b_start"), n("b_block")], [n("b_stop")]),
        helper.make_node("Slice", [n("q_pad"), n("b_start"), n("b_stop"), n("b_axis2")], [n("b_q")]),
        helper.make_node("MatMul", [n("b_q"), n("k_t")], [n("b_scores")]),  # (B, H, block, L)
        helper.make_node("Slice", [n("pos_pad"), n("b_start"), n("b_stop"), n("b_axis0")], [n("b_pos")]),
        helper.make_node("Unsqueeze", [n("b_pos"), n("b_axis1")], [n("b_pos_col")]),  # (block, 1)
        helper.make_node("Sub", [n("b_pos_col"), n("pos")], [n("b_diff")]),  # (block, L)
        helper.make_node("Abs", [n("b_diff")], [n("b_dist")]),
        helper.make_node("Mul", [neg_slopes, n("b_dist")], [n("b_alibi")]),  # (H, block, L)
        helper.make_node("Add", [n("b_alibi"), padding], [n("b_bias")]),  # (B, H, block, L)
        helper.make_node("Add", [n("b_scores"), n("b_bias")], [n("b_logits")]),
        helper.make_node("Softmax", [n("b_logits")], [n("b_probs")], axis=-1),
        helper.make_node("MatMul", [n("b_probs"), v], [n("b_ctx")]),  # (B, H, block, d)
        helper.make_node("Identity", [n("cond")], [n("cond_out")]),
    ]
    body = helper.make_graph(
        body_nodes,
        n("body"),
        [
            helper.make_tensor_value_info(n("iter"), TensorProto.INT64, []),
            helper.make_tensor_value_info(n("cond"), TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info(n("cond_out"), TensorProto.BOOL, []),
            helper.make_tensor_value_info(n("b_ctx"), TensorProto.FLOAT, None),
        ],
    )
    return [
        _const(n("block"), _i64(block)),
        _const(n("block_m1"), _i64(block - 1)),
        _const(n("scale"), scale),
        _const(n("zeros6"), _i64(0, 0, 0, 0, 0, 0)),
        _const(n("zero1"), _i64(0)),
        _const(n("one"), np.array(1, dtype=np.int64)),
        _const(n("zero"), np.array(0, dtype=np.int64)),
        _const(n("two1"), _i64(2)),
        _const(n("axis2"), _i64(2)),
        _const(n("true"), np.array(True)),
        _const(n("out_shape"), _i64(0, 0, -1, head_dim)),
        helper.make_node("Shape", [q], [n("q_shape")]),
        helper.make_node("Gather", [n("q_shape"), n("two1")], [n("len1")]),  # (1,) = L
        helper.make_node("Add", [n("len1"), n("block_m1")], [n("len_up")]),
        helper.make_node("Div", [n("len_up"), n("block")], [n("blocks1")]),  # ceil(L / block)
        helper.make_node("Mul", [n("blocks1"), n("block")], [n("len_pad")]),
        helper.make_node("Sub", [n("len_pad"), n("len1")], [n("extra")]),
        helper.make_node("Concat", [n("zeros6"), n("extra"), n("zero1")], [n("pads")], axis=0),
        helper.make_node("Mul", [q, n("scale")], [n("q_scaled")]),
        helper.make_node("Pad", [n("q_scaled"), n("pads")], [n("q_pad")]),  # (B, H, blocks·block, d)
        helper.make_node("Transpose", [k], [n("k_t")], perm=[0, 1, 3, 2]),  # (B, H, d, L)
        helper.make_node("Squeeze", [n("len1"), n("zero1")], [n("len0")]),
        helper.make_node("Squeeze", [n("len_pad"), n("zero1")], [n("len_pad0")]),
        helper.make_node("Range", [n("zero"), n("len0"), n("one")], [n("pos_i")]),
        helper.make_node("Cast", [n("pos_i")], [n("pos")], to=TensorProto.FLOAT),  # exact up to 2^24
        helper.make_node("Range", [n("zero"), n("len_pad0"), n("one")], [n("pos_pad_i")]),
        helper.make_node("Cast", [n("pos_pad_i")], [n("pos_pad")], to=TensorProto.FLOAT),
        helper.make_node("Squeeze", [n("blocks1"), n("zero1")], [n("blocks")]),
        helper.make_node("Loop", [n("blocks"), n("true")], [n("scan")], body=body),  # (blocks, B, H, block, d)
        helper.make_node("Transpose", [n("scan")], [n("scan_t")], perm=[1, 2, 0, 3, 4]),
        helper.make_node("Reshape", [n("scan_t"), n("out_shape")], [n("ctx_pad")]),
        helper.make_node("Slice", [n("ctx_pad"), n("zero1"), n("len1"), n("axis2")], [out]),
    ]


def expand_blocked_attention(model: onnx.ModelProto, head_dim: int) -> onnx.ModelProto:
    """Replace every marker node by its Loop; the result uses only standard ONNX operators."""
    import onnx

    graph = model.graph
    nodes: list[onnx.NodeProto] = []
    stale: set[str] = set()
    count = 0
    for node in graph.node:
        if node.domain == DOMAIN and node.op_type == OP:
            stale.update(node.output)
            nodes.extend(_loop_nodes(node, head_dim, f"blocked_attention_{count}"))
            count += 1
        else:
            nodes.append(node)
    if not count:
        raise ValueError("the exported graph has no blocked attention node to expand")
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    # The exporter typed the marker's output; those value_infos may carry shapes the Loop does not promise.
    kept_info = [vi for vi in graph.value_info if vi.name not in stale]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    onnx.checker.check_model(model)
    return model
