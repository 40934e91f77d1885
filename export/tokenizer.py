"""Write the ``tokenizer.json`` the runtime loads: the checkpoint's fast tokenizer with its pair
template, and no truncation or padding baked in (the runtime sets both per call)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExportError

if TYPE_CHECKING:
    from .families import Family


def file_tokenizer(checkpoint: Path) -> Any:
    """The checkpoint's own ``tokenizer.json`` (JinaBERT: its config points AutoTokenizer at remote code)."""
    from tokenizers import Tokenizer

    source = Path(checkpoint) / "tokenizer.json"
    if not source.is_file():
        raise ExportError(f"{checkpoint} has no tokenizer.json")
    return Tokenizer.from_file(str(source))


def transformers_tokenizer(checkpoint: Path) -> Any:
    """The fast tokenizer transformers builds for the checkpoint."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    if not hf.is_fast:
        raise ExportError(f"{checkpoint}: no fast tokenizer could be built (install sentencepiece?)")
    return Tokenizer.from_str(hf.backend_tokenizer.to_str())


def write_tokenizer(checkpoint: Path, family: Family, output: Path) -> None:
    tokenizer = family.tokenizer(checkpoint)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    single = len(tokenizer.encode("a").ids) - len(tokenizer.encode("a", add_special_tokens=False).ids)
    pair = len(tokenizer.encode("a", "b").ids) - 2 * len(tokenizer.encode("a", add_special_tokens=False).ids)
    if tokenizer.post_processor is None or pair <= single:
        raise ExportError(f"{checkpoint}: the tokenizer has no pair template; a cross-encoder needs one")
    output.write_text(json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False), encoding="utf-8")
