"""Every engine behind one call: ``score(query, passages) -> list[float]`` in the passages' order.

Each engine is loaded the way its own documentation shows, with its defaults (batch size, threads,
session options), pointed at a local folder prepared by ``bench.models``; nothing is downloaded.
``import_engine`` and ``load_engine`` are separate so a worker can time the import on its own.

Scores are compared by rank only (Spearman), so the activation each engine applies does not matter:
reranker-onnx, sentence-transformers and fastembed return raw logits here, FlashRank a sigmoid.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Scorer = Callable[[str, list[str]], list[float]]

ENGINES = ("reranker-onnx", "st-torch-fp32", "st-onnx-int8", "flashrank", "fastembed", "bare-ort")
PEERS = tuple(e for e in ENGINES if e != "reranker-onnx")
LABELS = {
    "reranker-onnx": "reranker-onnx (auto variant), its defaults",
    "st-torch-fp32": "sentence-transformers CrossEncoder, torch fp32",
    "st-onnx-int8": "sentence-transformers CrossEncoder, backend=onnx, its own int8 file",
    "flashrank": "FlashRank Ranker, local folder, same int8 graph",
    "fastembed": "fastembed TextCrossEncoder, custom local model, same int8 graph",
    "bare-ort": "bare onnxruntime loop, same int8 graph, fixed batches of 32",
}
IMPORTS = {
    "reranker-onnx": ("reranker_onnx",),
    "st-torch-fp32": ("sentence_transformers",),
    "st-onnx-int8": ("sentence_transformers", "optimum.onnxruntime"),
    "flashrank": ("flashrank",),
    "fastembed": ("fastembed",),
    "bare-ort": ("numpy", "onnxruntime", "tokenizers"),
}
BARE_BATCH = 32
ST_BATCH = 32  # CrossEncoder.predict's default
FASTEMBED_BATCH = 64  # TextCrossEncoder.rerank's default


def import_engine(name: str) -> None:
    for module in IMPORTS[name]:
        importlib.import_module(module)


def _reranker_onnx(m: dict[str, Any], options: dict[str, Any]) -> Scorer:
    from reranker_onnx import Reranker

    return Reranker(m["runtime_dir"], **options).score


def _st(m: dict[str, Any], onnx: bool) -> Scorer:
    from sentence_transformers import CrossEncoder

    if onnx:
        model = CrossEncoder(m["st_int8_dir"], device="cpu", backend="onnx",
                             model_kwargs={"file_name": m["st_int8_file"], "provider": "CPUExecutionProvider"})
    else:
        model = CrossEncoder(m["checkpoint"], device="cpu")

    def score(query: str, passages: list[str]) -> list[float]:
        out = model.predict([(query, p) for p in passages], batch_size=ST_BATCH, show_progress_bar=False,
                            convert_to_numpy=True)
        return [float(x) for x in out]

    return score


def _flashrank(m: dict[str, Any]) -> Scorer:
    # FlashRank has no custom-model argument: Ranker(model_name, cache_dir) opens
    # cache_dir/model_name/model_file_map[model_name]. The bench registers its folder's file name there.
    import flashrank.Config
    from flashrank import Ranker, RerankRequest

    flashrank.Config.model_file_map.setdefault(m["flashrank_name"], m["flashrank_file"])
    ranker = Ranker(model_name=m["flashrank_name"], cache_dir=m["flashrank_cache"], max_length=512,
                    log_level="WARNING")

    def score(query: str, passages: list[str]) -> list[float]:
        request = RerankRequest(query=query, passages=[{"id": i, "text": p} for i, p in enumerate(passages)])
        out = [0.0] * len(passages)
        for item in ranker.rerank(request):  # sorted best first; ids map back to the caller's order
            out[item["id"]] = float(item["score"])
        return out

    return score


def _fastembed(m: dict[str, Any]) -> Scorer:
    from fastembed.common.model_description import ModelSource
    from fastembed.rerank.cross_encoder import TextCrossEncoder

    name = m["fastembed_name"]
    if not any(d["model"].lower() == name.lower() for d in TextCrossEncoder.list_supported_models()):
        TextCrossEncoder.add_custom_model(model=name, sources=ModelSource(hf=f"local/{name}"),
                                          model_file=m["fastembed_file"])
    encoder = TextCrossEncoder(name, specific_model_path=m["fastembed_dir"], cuda=False)

    def score(query: str, passages: list[str]) -> list[float]:
        return [float(x) for x in encoder.rerank(query, passages, batch_size=FASTEMBED_BATCH)]

    return score


def _bare_ort(m: dict[str, Any]) -> Scorer:
    """What one writes in ten minutes: fixed batches in the caller's order, padded to each batch's longest."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(m["tokenizer"])
    tokenizer.enable_truncation(512, strategy="longest_first")
    tokenizer.enable_padding(pad_id=0)
    session = ort.InferenceSession(m["int8_graph"], providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def score(query: str, passages: list[str]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(passages), BARE_BATCH):
            encs = tokenizer.encode_batch([(query, p) for p in passages[start:start + BARE_BATCH]])
            feed = {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
            }
            (logits,) = session.run(None, {k: feed[k] for k in names})
            out += logits[:, 0].tolist()
        return out

    return score


def load_engine(name: str, model: dict[str, Any], options: dict[str, Any] | None = None) -> Scorer:
    """``model`` is one size's paths from ``bench.models``; ``options`` go to reranker-onnx's ``Reranker`` only."""
    if name == "reranker-onnx":
        return _reranker_onnx(model, options or {})
    if name in ("st-torch-fp32", "st-onnx-int8"):
        return _st(model, onnx=name == "st-onnx-int8")
    if name == "flashrank":
        return _flashrank(model)
    if name == "fastembed":
        return _fastembed(model)
    if name == "bare-ort":
        return _bare_ort(model)
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
