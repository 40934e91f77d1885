"""The model families the export stage supports, recognised from a checkpoint's ``config.json``.

Each family fixes what the ONNX graph takes (XLM-R and ModernBERT have no segment embeddings), how it
is converted (optimum for the architectures transformers ships; the project's own module for
JinaBERT, whose upstream code is remote code we never execute), and which onnxruntime fusion applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .convert import jinabert_onnx, optimum_onnx
from .errors import ExportError
from .reference import Reference, cross_encoder_reference, jinabert_reference
from .tokenizer import file_tokenizer, transformers_tokenizer

__all__ = ["FAMILIES", "ExportError", "Family", "detect_family", "max_length_of", "read_config"]


@dataclass(frozen=True)
class Family:
    name: str
    inputs: tuple[str, ...]  # ONNX input names, graph order
    fusion: str | None  # onnxruntime.transformers optimizer model_type, or None to skip fusion
    max_positions_offset: int = 0  # XLM-R reserves padding_idx + 1 positions
    convert: Callable[[Path, Path, int], None] = optimum_onnx  # (checkpoint, output, opset)
    tokenizer: Callable[[Path], Any] = transformers_tokenizer  # checkpoint → tokenizers.Tokenizer
    reference: Callable[..., Reference] = cross_encoder_reference  # (checkpoint, pairs, max_length, batch)


WITH_SEGMENTS = ("input_ids", "attention_mask", "token_type_ids")
# The only list of families: tests, fixtures and the Makefile (python -m export.fixtures --list) read it.
# JinaBERT takes no segment ids, as upstream's own ONNX: its graph feeds segment 0 itself, so a
# nonzero segment id can never reach it.
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("bert", WITH_SEGMENTS, "bert"),
    Family("xlm-roberta", ("input_ids", "attention_mask"), "bert", 2),
    Family("modernbert", ("input_ids", "attention_mask"), None),
    Family("jinabert", ("input_ids", "attention_mask"), None, convert=jinabert_onnx, tokenizer=file_tokenizer,
           reference=jinabert_reference),
)}


def read_config(checkpoint: Path) -> dict[str, Any]:
    path = Path(checkpoint) / "config.json"
    if not path.is_file():
        raise ExportError(f"{checkpoint} has no config.json: it is not a Hugging Face checkpoint")
    return json.loads(path.read_text(encoding="utf-8"))


def detect_family(config: dict[str, Any]) -> Family:
    """Map a config to a family; JinaBERT says model_type "bert" but uses ALiBi and remote code."""
    model_type = config.get("model_type")
    if config.get("position_embedding_type") == "alibi" or "JinaBert" in "".join(config.get("architectures") or []):
        return FAMILIES["jinabert"]
    if model_type in ("xlm-roberta", "roberta"):
        return FAMILIES["xlm-roberta"]
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    raise ExportError(
        f"unsupported architecture {model_type!r} ({', '.join(config.get('architectures') or ['?'])}); "
        f"supported families: {', '.join(FAMILIES)}"
    )


def max_length_of(config: dict[str, Any], family: Family, requested: int | None) -> int:
    """The pair length limit: the requested one, capped by what the position scheme allows."""
    limit = int(config.get("max_position_embeddings", 512)) - family.max_positions_offset
    if requested is not None and requested > limit:
        raise ExportError(f"max_length {requested} exceeds what this model supports ({limit})")
    return requested or min(limit, 512)
