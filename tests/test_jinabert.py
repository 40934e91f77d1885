"""The project's JinaBERT port: upstream tensor names, strict loading, ALiBi beyond 512 in the ONNX graph.

Everything runs on tiny random checkpoints built once per session (no hub, no remote code).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from export.jinabert import (
    JinaBertConfig,
    JinaBertForSequenceClassification,
    alibi_slopes,
    build_tiny,
    export_onnx,
)

# shared/models/seed-models.md, section 4: 12 heads -> 8 power-of-two slopes, then odd steps of the 16-series.
FACT_SHEET_SLOPES_12 = [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256,
                        2**-0.5, 2**-1.5, 2**-2.5, 2**-3.5]  # fmt: skip


def _upstream_names(layers: int) -> set[str]:
    names = {
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
        "bert.pooler.dense.weight",
        "bert.pooler.dense.bias",
        "classifier.weight",
        "classifier.bias",
    }
    for n in range(layers):
        p = f"bert.encoder.layer.{n}."
        names |= {p + f"attention.self.{m}.{t}" for m in ("query", "key", "value") for t in ("weight", "bias")}
        names |= {p + f"attention.output.{m}.{t}" for m in ("dense", "LayerNorm") for t in ("weight", "bias")}
        names |= {p + "mlp.gated_layers.weight", p + "mlp.wo.weight", p + "mlp.wo.bias"}
        names |= {p + "mlp.layernorm.weight", p + "mlp.layernorm.bias"}
    return names


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_onnx(session: ort.InferenceSession, ids: torch.Tensor, mask: torch.Tensor, *_types) -> np.ndarray:
    """The graph takes no segment ids (always 0 for JinaBERT); any passed here are not fed."""
    feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    return session.run(["logits"], feed)[0]


def _torch_logits(model: JinaBertForSequenceClassification, *args: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(*args).numpy()


def _inputs(vocab: int, batch: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ids; every row after the first is right-padded by a quarter; random segment ids."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1:, length - length // 4 :] = 0
    ids = ids.masked_fill(mask == 0, 1)
    types = torch.randint(0, 2, (batch, length), generator=g)
    return ids, mask, types


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Head dim 32 as in jina-reranker-v1-tiny-en. Two heads, because at 8192 tokens every attention
    # temporary is heads x 8192^2 floats (256 MB per head) in both torch and onnxruntime.
    return build_tiny(tmp_path_factory.mktemp("jina_tiny"), seed=0, hidden_size=64, num_attention_heads=2)


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> JinaBertForSequenceClassification:
    return JinaBertForSequenceClassification.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model: JinaBertForSequenceClassification, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny_model, tmp_path_factory.mktemp("jina_onnx") / "model.onnx")


@pytest.fixture(scope="session")
def tiny_session(tiny_onnx: Path) -> ort.InferenceSession:
    return _session(tiny_onnx)


def _copy_with(tiny_dir: Path, dest: Path, tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """A copy of the tiny checkpoint's config (and optionally other tensors) in a fresh directory."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_dir / "config.json", dest / "config.json")
    tensors = tensors if tensors is not None else load_file(tiny_dir / "model.safetensors")
    save_file(tensors, dest / "model.safetensors")
    return dest


# ---------------------------------------------------------------- ALiBi and GEGLU semantics


def test_slopes_for_12_heads_are_the_fact_sheet_list() -> None:
    assert alibi_slopes(12) == pytest.approx(FACT_SHEET_SLOPES_12, rel=1e-15, abs=0)
    assert alibi_slopes(4) == pytest.approx([2**-2, 2**-4, 2**-6, 2**-8], rel=1e-15, abs=0)
    assert alibi_slopes(8) == pytest.approx([2.0**-k for k in range(1, 9)], rel=1e-15, abs=0)


def test_attention_bias_is_symmetric_alibi_plus_padding(tiny_model: JinaBertForSequenceClassification) -> None:
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    bias = tiny_model.bert.encoder.attention_bias(mask, torch.float32)  # (2, H, 5, 5)
    slopes = torch.tensor(alibi_slopes(tiny_model.config.num_attention_heads))
    pos = torch.arange(5.0)
    expected = -slopes[:, None, None] * (pos[None, :] - pos[:, None]).abs()
    assert torch.equal(bias[0], expected)
    assert torch.equal(bias[1, :, :, :3], expected[:, :, :3])
    assert bool((bias[1, :, :, 3:] < -1e38).all())


def test_geglu_puts_gelu_on_the_first_half(tiny_model: JinaBertForSequenceClassification) -> None:
    mlp = tiny_model.bert.encoder.layer[0].mlp
    x = torch.randn(1, 3, tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(1))
    size = tiny_model.config.intermediate_size
    w = mlp.gated_layers.weight
    gated, non_gated = x @ w[:size].T, x @ w[size:].T
    expected = mlp.layernorm(mlp.wo(F.gelu(gated, approximate="none") * non_gated) + x)
    with torch.no_grad():
        assert torch.allclose(mlp(x), expected, atol=1e-6)


# ---------------------------------------------------------------- checkpoint and loading


def test_tiny_checkpoint_has_upstream_names_and_fp16(tiny_dir: Path) -> None:
    with safe_open(tiny_dir / "model.safetensors", framework="pt") as f:
        names = set(f.keys())
        dtypes = {f.get_tensor(k).dtype for k in names}
    assert names == _upstream_names(layers=2)
    assert dtypes == {torch.float16}
    config = json.loads((tiny_dir / "config.json").read_text())
    assert config["position_embedding_type"] == "alibi"
    assert config["auto_map"]["AutoModelForSequenceClassification"].startswith("modeling_bert.")


def test_published_config_gives_the_published_size() -> None:
    """jina-reranker-v1-tiny-en has 33.0M parameters and a 66.1 MB fp16 model.safetensors (fact sheet).

    A position table (+3.1M), a single-width GEGLU projection or a missing pooler would all miss these.
    """
    upstream = {
        "architectures": ["JinaBertModel"], "auto_map": {"AutoConfig": "configuration_bert.JinaBertConfig"},
        "attn_implementation": "torch", "emb_pooler": "mean", "feed_forward_type": "geglu", "hidden_act": "gelu",
        "hidden_size": 384, "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 8192,
        "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 4, "pad_token_id": 0,
        "position_embedding_type": "alibi", "torch_dtype": "float16", "type_vocab_size": 2, "vocab_size": 61056,
    }  # fmt: skip
    model = JinaBertForSequenceClassification(JinaBertConfig.from_dict(upstream))  # 0.6 s; "meta" costs more
    count = sum(p.numel() for p in model.parameters())
    assert (round(count / 1e6, 1), round(2 * count / 1e6, 1)) == (33.0, 66.1)
    assert model.config.num_labels == 1


def test_loaded_weights_are_fp32(tiny_model: JinaBertForSequenceClassification) -> None:
    assert {p.dtype for p in tiny_model.parameters()} == {torch.float32}


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_state_dict_round_trips_by_upstream_names(
    tiny_dir: Path, tiny_model: JinaBertForSequenceClassification, tmp_path: Path, weights: str
) -> None:
    state = tiny_model.state_dict()
    assert set(state) == _upstream_names(layers=2)
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    if weights == "model.safetensors":
        save_file(state, tmp_path / weights)
    else:
        torch.save(state, tmp_path / weights)
    reloaded = JinaBertForSequenceClassification.from_pretrained(tmp_path)
    args = _inputs(tiny_model.config.vocab_size, batch=2, length=24, seed=3)
    assert np.array_equal(_torch_logits(reloaded, *args), _torch_logits(tiny_model, *args))


def test_missing_tensor_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(tiny_dir / "model.safetensors")
    del tensors["bert.encoder.layer.1.mlp.wo.bias"]
    _copy_with(tiny_dir, tmp_path, tensors)
    with pytest.raises(ValueError, match=r"missing tensors: bert\.encoder\.layer\.1\.mlp\.wo\.bias"):
        JinaBertForSequenceClassification.from_pretrained(tmp_path)


def test_unexpected_tensor_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(tiny_dir / "model.safetensors")
    # The code-model sibling's name for the up/gate projection: a different layout, never silently loaded.
    layer = "bert.encoder.layer.0.mlp."
    tensors[layer + "up_gated_layer.weight"] = tensors.pop(layer + "gated_layers.weight")
    _copy_with(tiny_dir, tmp_path, tensors)
    with pytest.raises(ValueError, match=rf"unexpected tensors: {layer}up_gated_layer\.weight"):
        JinaBertForSequenceClassification.from_pretrained(tmp_path)


def test_wrong_shape_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    _copy_with(tiny_dir, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
    with pytest.raises(ValueError, match=r"mlp\.gated_layers\.weight: shape \(256, 64\) in the checkpoint"):
        JinaBertForSequenceClassification.from_pretrained(tmp_path)


def test_known_buffers_are_tolerated(
    tiny_dir: Path, tiny_model: JinaBertForSequenceClassification, tmp_path: Path
) -> None:
    tensors = load_file(tiny_dir / "model.safetensors")
    tensors["bert.embeddings.position_ids"] = torch.arange(8192)[None]
    _copy_with(tiny_dir, tmp_path, tensors)
    reloaded = JinaBertForSequenceClassification.from_pretrained(tmp_path)
    args = _inputs(tiny_model.config.vocab_size, batch=1, length=10, seed=4)
    assert np.array_equal(_torch_logits(reloaded, *args), _torch_logits(tiny_model, *args))


def test_loading_never_runs_checkpoint_code(tiny_dir: Path, tmp_path: Path) -> None:
    checkpoint = _copy_with(tiny_dir, tmp_path / "ckpt")
    marker = tmp_path / "executed"
    trap = f"open({str(marker)!r}, 'w').write('remote code ran')\n"
    for name in ("modeling_bert.py", "configuration_bert.py", "__init__.py"):
        (checkpoint / name).write_text(trap)
    JinaBertForSequenceClassification.from_pretrained(checkpoint)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("position_embedding_type", "absolute"), ("position_embedding_type", None),
     ("feed_forward_type", "original"), ("hidden_act", "relu")],
)  # fmt: skip
def test_unsupported_config_is_rejected(tiny_dir: Path, key: str, value: str | None) -> None:
    data = json.loads((tiny_dir / "config.json").read_text())
    if value is None:
        del data[key]  # BERT's default, "absolute", must not be mistaken for ALiBi
    else:
        data[key] = value
    with pytest.raises(ValueError, match=rf"unsupported JinaBERT config: {key}='\w+'; this port implements only"):
        JinaBertConfig.from_dict(data)


def test_non_alibi_checkpoint_is_rejected_before_weights_are_read(tiny_dir: Path, tmp_path: Path) -> None:
    config = json.loads((tiny_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "position_embedding_type": "absolute"}))
    with pytest.raises(ValueError, match=r"position_embedding_type='absolute'.*'alibi'"):
        JinaBertForSequenceClassification.from_pretrained(tmp_path)


# ---------------------------------------------------------------- tokenizer


def test_tokenizer_loads_as_fast_roberta_with_pair_layout(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer.is_fast
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert tokenizer.convert_tokens_to_ids(specials) == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id) == (1, 0, 2)
    query, passage = "text editor", "Vim is a highly configurable text editor."
    q = tokenizer(query, add_special_tokens=False)["input_ids"]
    p = tokenizer(passage, add_special_tokens=False)["input_ids"]
    assert tokenizer(query, passage)["input_ids"] == [0, *q, 2, 2, *p, 2]


# ---------------------------------------------------------------- ONNX


def test_onnx_graph_contract(tiny_onnx: Path) -> None:
    graph = onnx.load(str(tiny_onnx)).graph
    int64 = onnx.TensorProto.INT64
    assert [(i.name, i.type.tensor_type.elem_type) for i in graph.input] == [
        ("input_ids", int64), ("attention_mask", int64)
    ]  # fmt: skip  (no token_type_ids: JinaBERT can never be fed a nonzero segment)
    for i in graph.input:
        assert [d.dim_param for d in i.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert [o.name for o in graph.output] == ["logits"]
    # No baked ALiBi table: no constant has two axes of a sequence's size (the word table has one).
    constants = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute]
    assert constants
    assert all(sum(d >= 512 for d in t.dims) <= 1 for t in constants)


@pytest.mark.parametrize("length", [16, 600, 2048, 8192])
def test_onnx_matches_torch_beyond_512(
    tiny_model: JinaBertForSequenceClassification, tiny_session: ort.InferenceSession, length: int
) -> None:
    batch = 1 if length == 8192 else 2
    args = _inputs(tiny_model.config.vocab_size, batch, length, seed=length)
    delta = np.abs(_run_onnx(tiny_session, *args) - _torch_logits(tiny_model, *args[:2])).max()
    assert delta <= 1e-4, f"max |logit difference| {delta:.2e} at length {length}"


def test_padding_does_not_change_scores(
    tiny_dir: Path, tiny_model: JinaBertForSequenceClassification, tiny_session: ort.InferenceSession
) -> None:
    from tokenizers import Tokenizer

    from export.debian import read_descriptions

    tokenizer = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    passages = [d.body for d in read_descriptions("en")[:4]]
    pairs = [("strategy game", p) for p in passages]
    tokenizer.enable_padding(pad_id=1, pad_token="<pad>")
    padded = tokenizer.encode_batch(pairs)
    assert len({sum(e.attention_mask) for e in padded}) > 1, "rows should differ in length"
    ids = torch.tensor([e.ids for e in padded])
    mask = torch.tensor([e.attention_mask for e in padded])
    types = torch.zeros_like(ids)
    batch_torch = _torch_logits(tiny_model, ids, mask, types)
    batch_onnx = _run_onnx(tiny_session, ids, mask, types)
    tokenizer.no_padding()
    for row, pair in enumerate(pairs):
        one = torch.tensor([tokenizer.encode(*pair).ids])
        alone = (one, torch.ones_like(one), torch.zeros_like(one))
        assert np.abs(_torch_logits(tiny_model, *alone)[0] - batch_torch[row]).max() <= 1e-5
        assert np.abs(_run_onnx(tiny_session, *alone)[0] - batch_onnx[row]).max() <= 1e-5


def test_twelve_heads_export_and_match(tmp_path: Path) -> None:
    directory = build_tiny(
        tmp_path / "ckpt", seed=1, hidden_size=48, num_hidden_layers=1, num_attention_heads=12,
        intermediate_size=64,
    )  # fmt: skip
    model = JinaBertForSequenceClassification.from_pretrained(directory)
    assert model.bert.encoder.alibi_slopes.tolist() == pytest.approx(FACT_SHEET_SLOPES_12, rel=1e-7)
    session = _session(export_onnx(model, tmp_path / "model.onnx"))
    args = _inputs(model.config.vocab_size, batch=2, length=600, seed=5)
    delta = np.abs(_run_onnx(session, *args) - _torch_logits(model, *args[:2])).max()
    assert delta <= 1e-4, f"max |logit difference| {delta:.2e}"


# ---------------------------------------------------------------- blocked attention (issue 23)


@pytest.fixture(scope="session")
def tiny_full_session(
    tiny_model: JinaBertForSequenceClassification, tmp_path_factory: pytest.TempPathFactory
) -> ort.InferenceSession:
    return _session(export_onnx(tiny_model, tmp_path_factory.mktemp("jina_full") / "model.onnx", attention_block=None))


def test_default_export_loops_over_query_blocks(tiny_onnx: Path) -> None:
    graph = onnx.load(str(tiny_onnx)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Loop") == 2  # one per layer
    assert not any(n.domain for n in graph.node), "only standard ONNX operators"
    body = next(n for n in graph.node if n.op_type == "Loop").attribute[0].g
    assert {"Abs", "Softmax", "MatMul"} <= {n.op_type for n in body.node}  # ALiBi built per block


@pytest.mark.parametrize(("length", "batch"), [(1, 1), (7, 3), (128, 2), (129, 2), (1000, 2)])
def test_blocked_graph_equals_full_attention(
    tiny_model: JinaBertForSequenceClassification,
    tiny_session: ort.InferenceSession,
    tiny_full_session: ort.InferenceSession,
    length: int,
    batch: int,
) -> None:
    """Lengths below, at, one past and well past a block; padded rows too."""
    args = _inputs(tiny_model.config.vocab_size, batch, length, seed=length + 7)
    blocked, full = _run_onnx(tiny_session, *args), _run_onnx(tiny_full_session, *args)
    assert np.abs(blocked - full).max() <= 1e-4
    assert np.abs(blocked - _torch_logits(tiny_model, *args[:2])).max() <= 1e-4


def test_eager_blocked_attention_matches_reference(tiny_model: JinaBertForSequenceClassification) -> None:
    args = _inputs(tiny_model.config.vocab_size, batch=2, length=300, seed=11)
    reference = _torch_logits(tiny_model, *args)
    tiny_model.bert.encoder.attention_block = 64
    try:
        blocked = _torch_logits(tiny_model, *args)
    finally:
        tiny_model.bert.encoder.attention_block = None
    assert np.abs(blocked - reference).max() <= 1e-5


def test_reference_batches_stay_within_the_budget() -> None:
    """A 16-pair batch padded to thousands of tokens was OOM-killed at 8.7 GB (full size, max_length 8192)."""
    from export.reference import ATTENTION_BYTES, length_batches, query_block

    lengths = [8192, 30, 4955, 8192, 100, 512, 31]
    batches = length_batches(lengths, 16, 8192)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 16 and len(b) * max(lengths[i] for i in b) <= 8192 for b in batches)
    assert [lengths[b[0]] for b in batches] == sorted(lengths[b[0]] for b in batches)  # short ones together
    block = query_block(1, 12, 8192)  # jina tiny: 12 heads
    assert block is not None and 12 * block * 8192 * 4 <= ATTENTION_BYTES
    assert query_block(16, 12, 128) is None  # short batches keep full attention


def test_bounded_reference_equals_full_attention(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long pairs run one batch at a time, attention in query blocks: the same logits as full attention."""
    import export.blocked_attention as blocked
    from export import reference

    pairs = [("what is panda?", "it's a bear " * n) for n in (1, 40, 300, 5, 700)]
    full = reference.jinabert_reference(tiny_dir, pairs, 2048, 16).logits
    lengths: list[int] = []
    eager = blocked.blocked_attention
    monkeypatch.setattr(blocked, "blocked_attention", lambda q, *a: lengths.append(q.size(2)) or eager(q, *a))
    monkeypatch.setattr(reference, "ATTENTION_BYTES", 2 * 64 * 1024 * 4)  # 2 heads: ≤ 64 queries of 1,024 keys
    monkeypatch.setattr(reference, "REFERENCE_TOKENS", 2048)
    bounded = reference.jinabert_reference(tiny_dir, pairs, 2048, 16).logits
    assert lengths and max(lengths) > 1024  # the long pairs went through query blocks
    assert np.abs(bounded - full).max() <= 1e-5


def test_attention_block_must_be_positive(tiny_model: JinaBertForSequenceClassification, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="attention_block must be a positive"):
        export_onnx(tiny_model, tmp_path / "m.onnx", attention_block=0)
