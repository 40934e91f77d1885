"""Passages from the command line's sources: arguments, a text file, standard input, JSONL records.

Each passage keeps an id the user can trace back: its position among the arguments, its line number
in a file, or the record's own ``id``. Bad bytes or records are reported with the line they are on.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class Passage:
    id: Any  # int position, int line number, or the record's id
    text: str


def _read_bytes(source: str) -> tuple[str, bytes]:
    if source == "-":
        return "standard input", sys.stdin.buffer.read()
    path = Path(source)
    try:
        return str(path), path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory; give a file with one passage per line") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None


def _decode_lines(name: str, data: bytes) -> list[str]:
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name}: line {line} is not valid UTF-8 (byte offset {exc.start}); "
            "convert the file to UTF-8 (e.g. with iconv) and try again"
        ) from None


def passages_from_lines(source: str) -> list[Passage]:
    """One passage per non-blank line; the id is the 1-based line number."""
    name, data = _read_bytes(source)
    return [Passage(n, line) for n, line in enumerate(_decode_lines(name, data), start=1) if line.strip()]


def passages_from_records(source: str) -> list[Passage]:
    """JSON Lines records ``{"id": ..., "text": ...}``; ``id`` defaults to the line number."""
    name, data = _read_bytes(source)
    passages = []
    for n, line in enumerate(_decode_lines(name, data), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}: line {n} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "text" not in record:
            raise InputError(f'{name}: line {n} must be a JSON object with a "text" field')
        if not isinstance(record["text"], str):
            raise InputError(f'{name}: line {n}: "text" must be a string, got {type(record["text"]).__name__}')
        record_id = record.get("id", n)
        if not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
            raise InputError(f'{name}: line {n}: "id" must be a string or an integer')
        passages.append(Passage(record_id, record["text"]))
    return passages
