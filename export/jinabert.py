"""JinaBERT cross-encoder (jina-reranker-v1-*-en) in plain PyTorch, so exporting it runs no remote code.

Upstream ships this architecture only as remote code (``modeling_bert.py`` from jina-bert-implementation),
which ``trust_remote_code=True`` would execute. This module re-implements the inference path and reads the
checkpoint's tensors by their upstream names; it never imports a ``.py`` file from a checkpoint directory.

How it differs from BERT (fact sheet ``shared/models/seed-models.md`` section 4): no position table; a
symmetric ALiBi bias ``-m_h * |i - j|`` computed from the runtime length (so the ONNX graph runs at any length
up to ``max_position_embeddings``); a GEGLU feed-forward with its own residual and post-LayerNorm.

Tensor names (``bert.`` prefix, ``N`` = layer):

- ``bert.embeddings.{word_embeddings,token_type_embeddings}.weight``, ``bert.embeddings.LayerNorm.{weight,bias}``
- ``bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias}``
- ``bert.encoder.layer.N.attention.output.dense.{weight,bias}``, ``...attention.output.LayerNorm.{weight,bias}``
- ``bert.encoder.layer.N.mlp.gated_layers.weight`` (no bias), ``...mlp.wo.{weight,bias}``,
  ``...mlp.layernorm.{weight,bias}``
- ``bert.pooler.dense.{weight,bias}``, ``classifier.{weight,bias}``

Where the layout was learned (read, not copied): four independent ports of the jina-bert-implementation
model agree on the encoder names above: an MLX port and the vLLM TPU (JAX) port, both of which name their
modules after the PyTorch checkpoint so weights load without a rename table; a libtorch port of
text-embeddings-inference; and llama.cpp's GGUF tensor map. The ``bert.`` prefix, ``bert.pooler.dense`` and
a plain ``classifier`` linear follow BERT's sequence-classification head, and the libtorch port's classify
path for this family reads exactly those (first token, pooler dense + tanh, classifier).

GEGLU order: ``gated_layers`` projects to ``2 * intermediate_size``; GELU (exact erf) goes on the **first**
half, which multiplies the second. The MLX and vLLM ports both apply GELU to ``[:intermediate]`` (the vLLM
port notes the reference uses ``torch.nn.GELU()``, exact erf); the libtorch port calls its gate-first
branch for this family; llama.cpp maps the first half to its gate tensor. Beware the sibling code model
(jina-embeddings-v2-base-code, the transformers JinaBERT PR): it names the layer ``mlp.up_gated_layer`` and
puts the activated half *second*; that is a different checkpoint family and is rejected here by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from .blocked_attention import BlockedAttention, expand_blocked_attention

__all__ = [
    "JinaBertConfig",
    "JinaBertForSequenceClassification",
    "alibi_slopes",
    "build_tiny",
    "export_onnx",
]

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
TORCH_BIN_NAME = "pytorch_model.bin"
# No token_type_ids, as in upstream's own onnx/model.onnx: segment ids are always zero for JinaBERT (one
# project measured NDCG@10 falling ~3x when it fed BERT-style 0/1 segments; facts §A10), so the graph
# adds segment 0 itself and no caller can feed another.
ONNX_INPUTS = ("input_ids", "attention_mask")

# Buffers that some upstream checkpoints carry beside the parameters; they hold no learned values
# (position/type-id ranges, a precomputed ALiBi table), so dropping them loses nothing.
_TOLERATED_BUFFERS = frozenset(
    {"bert.embeddings.position_ids", "bert.embeddings.token_type_ids", "bert.encoder.alibi"}
)

_REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


@dataclass(frozen=True)
class JinaBertConfig:
    """The architecture facts the forward pass needs, read from an upstream ``config.json``."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: Literal["gelu"] = "gelu"
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 8192  # a length limit only: ALiBi has no position table
    position_embedding_type: Literal["alibi"] = "alibi"
    feed_forward_type: Literal["geglu"] = "geglu"
    pad_token_id: int = 0  # upstream says 0 while its tokenizer pads with 1: take the pad id from the tokenizer
    num_labels: int = 1

    def __post_init__(self) -> None:
        checks = {
            "position_embedding_type": (self.position_embedding_type, ("alibi",)),
            "feed_forward_type": (self.feed_forward_type, ("geglu",)),
            # The GEGLU uses exact (erf) GELU whatever hidden_act says; accept only the value that agrees.
            "hidden_act": (self.hidden_act, ("gelu",)),
        }
        for key, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(
                    f"unsupported JinaBERT config: {key}={value!r}; this port implements only "
                    f"{', '.join(repr(a) for a in allowed)} (jina-reranker-v1 models)"
                )
        sizes = {
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
            "type_vocab_size": self.type_vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "num_labels": self.num_labels,
        }
        bad = [f"{k}={v!r}" for k, v in sizes.items() if not isinstance(v, int) or v < 1]
        if bad:
            raise ValueError(f"unsupported JinaBERT config: {', '.join(bad)} (each must be a positive integer)")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"unsupported JinaBERT config: hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JinaBertConfig:
        """Read the keys of an upstream ``config.json``; unknown keys (auto_map, dropout, ...) are ignored."""
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"JinaBERT config.json lacks required keys: {', '.join(missing)}")
        # Upstream omits num_labels (the card passes num_labels=1 at load time); a saved id2label also counts.
        num_labels = data.get("num_labels") or len(data.get("id2label") or {}) or 1
        return cls(
            vocab_size=data["vocab_size"],
            hidden_size=data["hidden_size"],
            num_hidden_layers=data["num_hidden_layers"],
            num_attention_heads=data["num_attention_heads"],
            intermediate_size=data["intermediate_size"],
            hidden_act=data.get("hidden_act", "gelu"),
            type_vocab_size=data.get("type_vocab_size", 2),
            layer_norm_eps=float(data.get("layer_norm_eps", 1e-12)),
            max_position_embeddings=data.get("max_position_embeddings", 8192),
            # Missing means BERT's default, "absolute": rejected rather than silently assumed to be ALiBi.
            position_embedding_type=data.get("position_embedding_type", "absolute"),
            feed_forward_type=data.get("feed_forward_type", "original"),
            pad_token_id=data.get("pad_token_id", 0),
            num_labels=num_labels,
        )


def alibi_slopes(num_heads: int) -> list[float]:
    """Per-head ALiBi slopes: ``2^(-8k/n)`` for a power of two ``n``, else the power-of-two rule below.

    For ``n`` heads that is not a power of two, take the ``p`` slopes of the largest power of two ``p < n``
    and append every second slope of the ``2p`` series (the 1st, 3rd, ...) until there are ``n``.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be positive, got {num_heads}")

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]

    p = 2 ** int(math.floor(math.log2(num_heads)))
    if p == num_heads:
        return geometric(p)
    return geometric(p) + geometric(2 * p)[0::2][: num_heads - p]


# ---------------------------------------------------------------- modules (names mirror the checkpoint)


class _Embeddings(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        # (B, L) ids -> (B, L, D); no position term: positions enter only through ALiBi
        summed = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        out: torch.Tensor = self.LayerNorm(summed)
        return out


@dataclass(frozen=True)
class _BlockedBias:
    """What blocked attention needs instead of the full bias: (B, 1, 1, L) padding, (H, 1, 1) −slopes."""

    padding: torch.Tensor
    neg_slopes: torch.Tensor
    block: int


class _SelfAttention(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, D) -> (B, H, L, d)
        return x.view(x.size(0), x.size(1), self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | _BlockedBias) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        if isinstance(bias, _BlockedBias):  # query blocks, ALiBi built per block: no (B, H, L, L) tensor
            blocked = BlockedAttention.apply(q, k, v, bias.padding, bias.neg_slopes, bias.block)
            return blocked.transpose(1, 2).flatten(2)
        # softmax(q k^T / sqrt(d) + bias) v, bias = ALiBi + key padding mask. SDPA (upstream's
        # attn_implementation "torch") never holds the (B, H, L, L) scores in eager mode, which at 8k tokens
        # is seconds and gigabytes; the ONNX exporter writes it out as MatMul/Add/Softmax/MatMul.
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, L, d)
        return context.transpose(1, 2).flatten(2)  # (B, L, D)


class _SelfOutput(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.LayerNorm(self.dense(x) + residual)  # post-LN, like BERT
        return out


class _Attention(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)  # "self" because the checkpoint says attention.self.query
        self.output = _SelfOutput(cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | _BlockedBias) -> torch.Tensor:
        out: torch.Tensor = self.output(self.self(x, bias), x)
        return out


class _GegluMLP(nn.Module):
    """GEGLU feed-forward with its own residual and post-LN (replaces BERT's intermediate/output pair)."""

    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.intermediate_size = cfg.intermediate_size
        self.gated_layers = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.wo = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.gated_layers(x)  # (B, L, 2I)
        gated, non_gated = h[..., : self.intermediate_size], h[..., self.intermediate_size :]
        out: torch.Tensor = self.layernorm(self.wo(F.gelu(gated) * non_gated) + x)  # GELU on the first half
        return out


class _Layer(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.mlp = _GegluMLP(cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | _BlockedBias) -> torch.Tensor:
        out: torch.Tensor = self.mlp(self.attention(x, bias))
        return out


class _Encoder(nn.Module):
    alibi_slopes: torch.Tensor  # (H,) buffer

    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))
        # Not persistent: derived from the head count, so it is neither saved nor expected in a checkpoint.
        slopes = torch.tensor(alibi_slopes(cfg.num_attention_heads), dtype=torch.float32)
        self.register_buffer("alibi_slopes", slopes, persistent=False)  # (H,)
        # None: full attention with a (B, H, L, L) bias (the reference); an int: query blocks of that size.
        self.attention_block: int | None = None

    def attention_bias(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """ALiBi for the runtime length plus the key padding mask: (B, 1, 1, L) and (H, L, L) -> (B, H, L, L).

        Built from the input's shape on every call, so the exported graph holds no length-sized table.
        """
        pos = torch.arange(attention_mask.size(1), dtype=dtype, device=attention_mask.device)  # (L,)
        distance = (pos[None, :] - pos[:, None]).abs()  # (L, L); exact in fp32 up to 2^24
        neg_slopes = -self.alibi_slopes.to(dtype)[:, None, None]  # (H, 1, 1)
        keep = attention_mask[:, None, None, :].to(dtype)  # (B, 1, 1, L)
        padding = (1.0 - keep) * torch.finfo(dtype).min  # padded keys get exp(...) == 0
        # padding + neg_slopes * distance in one op: at 8k tokens each (H, L, L) temporary is gigabytes.
        return torch.addcmul(padding, neg_slopes, distance)  # (B, H, L, L)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        bias: torch.Tensor | _BlockedBias
        if self.attention_block is None:
            bias = self.attention_bias(attention_mask, x.dtype)
        else:
            keep = attention_mask[:, None, None, :].to(x.dtype)  # (B, 1, 1, L)
            padding = (1.0 - keep) * torch.finfo(x.dtype).min
            neg_slopes = -self.alibi_slopes.to(x.dtype)[:, None, None]
            bias = _BlockedBias(padding, neg_slopes, self.attention_block)
        for layer in self.layer:
            x = layer(x, bias)
        return x  # (B, L, D)


class _Pooler(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))  # first token, (B, D)


class _JinaBertModel(nn.Module):
    def __init__(self, cfg: JinaBertConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)
        self.pooler = _Pooler(cfg)


class JinaBertForSequenceClassification(nn.Module):
    """The reranker: JinaBERT encoder, BERT pooler, linear head; parameter names equal upstream's."""

    def __init__(self, config: JinaBertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = _JinaBertModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L) int64 ids, mask (1 = token, 0 = padding; pad on the right) -> logits (B, num_labels)."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # the jina tokenizer emits none: segment 0
        h = self.bert.embeddings(input_ids, token_type_ids)  # (B, L, D)
        h = self.bert.encoder(h, attention_mask)  # (B, L, D)
        logits: torch.Tensor = self.classifier(self.bert.pooler(h))  # (B, num_labels)
        return logits

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, num_labels: int | None = None
    ) -> JinaBertForSequenceClassification:
        """Load an upstream checkpoint directory: config.json plus model.safetensors or pytorch_model.bin.

        Only those data files are read; no ``.py`` file in the directory is imported or executed. fp16
        weights become fp32. Every parameter must be present with its shape and nothing else may be left
        over (bar known parameter-free buffers), so a renamed or partial checkpoint fails loudly.
        """
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"no {CONFIG_NAME} in {directory}: not a checkpoint directory")
        data = json.loads(config_path.read_text(encoding="utf-8"))
        if num_labels is not None:
            data = {**data, "num_labels": num_labels}
        model = cls(JinaBertConfig.from_dict(data))
        model.load_state_dict(_strict_state_dict(model, _read_weights(directory)))
        return model.eval()


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """Tensors from model.safetensors (preferred) or pytorch_model.bin (tensors only, no pickled code)."""
    safetensors_path, bin_path = directory / SAFETENSORS_NAME, directory / TORCH_BIN_NAME
    if safetensors_path.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path), device="cpu")
    if bin_path.is_file():
        loaded = torch.load(bin_path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, dict):
            raise ValueError(f"{bin_path} holds a {type(loaded).__name__}, expected a state dict")
        return loaded
    raise FileNotFoundError(f"no {SAFETENSORS_NAME} or {TORCH_BIN_NAME} in {directory}")


def _strict_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Check names and shapes against the model; return the tensors as fp32 ready for load_state_dict."""
    expected = model.state_dict()
    given = {k: v for k, v in tensors.items() if k not in _TOLERATED_BUFFERS}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    problems += [
        f"{k}: shape {tuple(given[k].shape)} in the checkpoint, {tuple(v.shape)} from config.json"
        for k, v in expected.items()
        if k in given and given[k].shape != v.shape
    ]
    if problems:
        raise ValueError(
            "checkpoint does not match the JinaBERT reranker layout (jina-bert-implementation names): "
            + "; ".join(problems)
        )
    return {k: given[k].to(torch.float32) for k in expected}


# ---------------------------------------------------------------- ONNX


# Queries per attention block in the exported graph (export/blocked_attention.py). One 8,192-token pair
# on the full-size config peaked at 564-574 MiB (whole process) with 128, 946-952 MiB with 256 (docs/long-context.md).
DEFAULT_ATTENTION_BLOCK = 128


def export_onnx(
    model: JinaBertForSequenceClassification,
    path: str | Path,
    opset: int = 17,
    attention_block: int | None = DEFAULT_ATTENTION_BLOCK,
) -> Path:
    """Write an fp32 ONNX graph: int64 inputs input_ids, attention_mask -> ``logits`` (segment 0 inside).

    Batch and sequence axes are dynamic; ALiBi is computed in the graph from the input's shape. With
    ``attention_block`` (the default) attention runs in a Loop over blocks of that many queries, with the
    ALiBi bias built per block, so memory grows linearly with length; None writes full attention,
    whose (batch × heads × L × L) tensors need gigabytes at 8k tokens.
    """
    if attention_block is not None and attention_block < 1:
        raise ValueError(f"attention_block must be a positive number of queries, got {attention_block}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Batch 2, length 8 and one padded key: nothing in the trace may specialise on a size of 1 or on
    # an all-ones mask.
    ids = torch.randint(5, model.config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, -1] = 0
    axes = {name: {0: "batch", 1: "sequence"} for name in ONNX_INPUTS}
    axes["logits"] = {0: "batch"}
    encoder = model.bert.encoder
    previous, encoder.attention_block = encoder.attention_block, attention_block
    try:
        _trace(model, ids, mask, path, axes, opset)
    finally:
        encoder.attention_block = previous
    if attention_block is not None:
        import onnx

        graph = onnx.load(str(path))
        head_dim = model.config.hidden_size // model.config.num_attention_heads
        onnx.save(expand_blocked_attention(graph, head_dim), str(path))
    return path


def _trace(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, path: Path,
           axes: dict[str, dict[int, str]], opset: int) -> None:
    with torch.no_grad():
        # dynamo=False: the TorchScript exporter. Tried with torch 2.13: the dynamo exporter (the default)
        # also yields a dynamic graph that matches, but it needs onnxscript (not in the export extra),
        # writes opset 18 and down-converts to 17, and took ~20 s against ~0.5 s here. The tracer records
        # the arange over the input's length symbolically, so dynamic_axes give a graph for any length.
        torch.onnx.export(
            model,
            (ids, mask),
            str(path),
            input_names=list(ONNX_INPUTS),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


# ---------------------------------------------------------------- tiny checkpoint for tests

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, the RoBERTa convention


def build_tiny(
    directory: str | Path,
    seed: int = 0,
    *,
    hidden_size: int = 64,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    intermediate_size: int = 128,
    vocab_size: int = 1000,
    num_texts: int = 3000,
) -> Path:
    """Write a tiny random JinaBERT reranker laid out like upstream: config.json, fp16 model.safetensors
    with upstream tensor names, and a byte-level BPE tokenizer trained on English Debian descriptions.

    Weights are scaled so every block changes the output (BERT's 0.02 init would make logits nearly
    constant and parity tests meaningless).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size, num_texts)
    _save_tokenizer(tokenizer, directory)
    config = JinaBertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=intermediate_size,
    )
    model = JinaBertForSequenceClassification(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith(("LayerNorm.weight", "layernorm.weight")):
                param.copy_(1.0 + 0.1 * noise)
            elif param.ndim == 1:
                param.copy_(0.1 * noise)
            elif "embeddings" in name:
                param.copy_(noise)
            else:
                param.copy_(noise / math.sqrt(param.shape[1]))
    # Upstream stores fp16 (torch_dtype float16); so does this, which exercises the fp32 cast on load.
    state = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / SAFETENSORS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(_upstream_config(config), indent=2) + "\n", encoding="utf-8")
    return directory


def _upstream_config(config: JinaBertConfig) -> dict[str, Any]:
    """config.json in upstream's shape, auto_map included, so the loader is tested on what it will meet."""
    return {
        "_name_or_path": "jinaai/jina-bert-implementation",
        "architectures": ["JinaBertModel"],
        "attention_probs_dropout_prob": 0.1,
        "attn_implementation": "torch",
        "auto_map": {
            "AutoConfig": "configuration_bert.JinaBertConfig",
            "AutoModel": "modeling_bert.JinaBertModel",
            "AutoModelForMaskedLM": "modeling_bert.JinaBertForMaskedLM",
            "AutoModelForSequenceClassification": "modeling_bert.JinaBertForSequenceClassification",
        },
        "classifier_dropout": None,
        "emb_pooler": "mean",
        "feed_forward_type": config.feed_forward_type,
        "gradient_checkpointing": False,
        "hidden_act": config.hidden_act,
        "hidden_dropout_prob": 0.1,
        "hidden_size": config.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": config.intermediate_size,
        "layer_norm_eps": config.layer_norm_eps,
        "max_position_embeddings": config.max_position_embeddings,
        "model_type": "bert",
        "num_attention_heads": config.num_attention_heads,
        "num_hidden_layers": config.num_hidden_layers,
        "pad_token_id": config.pad_token_id,
        "position_embedding_type": config.position_embedding_type,
        "torch_dtype": "float16",
        "transformers_version": "4.30.2",
        "type_vocab_size": config.type_vocab_size,
        "use_cache": True,
        "vocab_size": config.vocab_size,
    }


def _train_tokenizer(vocab_size: int, num_texts: int) -> Any:
    """RoBERTa-style byte-level BPE with pair layout ``<s> q </s></s> p </s>``, trained offline."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from .debian import read_descriptions

    texts = [f"{d.synopsis}\n{d.body}" for d in read_descriptions("en")[:num_texts]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = [AddedToken(t, lstrip=t == "<mask>", special=True) for t in _SPECIALS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    ids = [tokenizer.token_to_id(t) for t in _SPECIALS]
    assert ids == list(range(len(_SPECIALS))), f"special token ids {ids}, expected 0..4"
    tokenizer.post_processor = processors.RobertaProcessing(
        sep=("</s>", 2), cls=("<s>", 0), add_prefix_space=False
    )
    return tokenizer


def _save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """tokenizer.json plus the two small files AutoTokenizer needs to pick the fast RoBERTa class."""
    tokenizer.save(str(directory / "tokenizer.json"))
    mask = {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False}
    specials: dict[str, Any] = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": mask,
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    tokenizer_config = {
        **specials,
        "add_prefix_space": False,
        "errors": "replace",
        "model_max_length": 8192,
        "tokenizer_class": "RobertaTokenizer",
        "trim_offsets": True,
    }
    for name, content in (("special_tokens_map.json", specials), ("tokenizer_config.json", tokenizer_config)):
        (directory / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
