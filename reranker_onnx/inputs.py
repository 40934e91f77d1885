"""Passages from the command line's sources: arguments, a text file, standard input, JSONL records.

One numbering, so every output row maps back to exactly one input: the n-th argument and the passage
on line n of a file or of standard input have id n, counting from 1 (as ``nl``, ``sed -n Np`` and
editors count); a record has its own ``id``, or its line number when it has none. Passages come from
one source per call, and a repeated record id is refused, so no two rows share an id. Lines end at
``\\n`` only (``\\r\\n`` too): a form feed, ``\\x0b``, ``\\x1c``-``\\x1e``, U+0085, U+2028 or U+2029 is
an ordinary character inside a line, as in JSON Lines; ``str.splitlines`` would break there and
shift every later id. Bad bytes or records are reported with the line they are on.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

STDIN = "-"


@dataclass(frozen=True)
class Passage:
    id: Any  # int: 1-based argument position or line number; or the record's own str/int id
    text: str


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split at ``\\n`` only, a trailing ``\\r`` dropped (the count ``wc -l`` gives)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_blank(text: str) -> bool:
    """True when ``text`` has nothing visible: only whitespace, control (Cc) or format (Cf) characters
    such as NUL or zero-width spaces, which tokenizers drop or the reader cannot see."""
    return all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def inert(text: str) -> str:
    """``text`` safe to print on a terminal: control and format characters (escape sequences, bidi
    overrides, C1 controls such as CSI) shown as ``\\x1b``-style escapes instead of acting."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch == " " or unicodedata.category(ch) not in _UNSAFE else ascii(ch)[1:-1] for ch in text
    )


_UNSAFE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _read_bytes(source: str) -> tuple[str, bytes]:
    if source == STDIN:
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
        return split_lines(data.decode("utf-8-sig"))  # a leading byte-order mark is not text
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name}: line {line} is not valid UTF-8 (byte offset {exc.start}); "
            "convert the file to UTF-8 (e.g. with iconv) and try again"
        ) from None


def passages_from_arguments(texts: Sequence[str]) -> list[Passage]:
    """The n-th argument has id n (from 1), like line n of a file."""
    return [Passage(n, text) for n, text in enumerate(texts, start=1)]


def passages_from_lines(source: str) -> list[Passage]:
    """One passage per non-blank line; the id is the 1-based line number."""
    name, data = _read_bytes(source)
    return [Passage(n, line) for n, line in enumerate(_decode_lines(name, data), start=1) if line.strip()]


def parse_record(line: str, where: str, default_id: Any) -> Passage:
    """One JSON Lines record ``{"id": ..., "text": ...}``; ``where`` names it in errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4,300 digits; nesting too deep
        reason = "nested too deep" if isinstance(exc, RecursionError) else "a number too large"
        raise InputError(f"{where} is not usable JSON ({reason})") from None
    if not isinstance(record, dict) or "text" not in record:
        raise InputError(f'{where} must be a JSON object with a "text" field')
    if not isinstance(record["text"], str):
        raise InputError(f'{where}: "text" must be a string, got {type(record["text"]).__name__}')
    record_id = record.get("id", default_id)
    if not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
        raise InputError(f'{where}: "id" must be a string or an integer')
    return Passage(record_id, record["text"])


def unique_ids(passages: Iterable[tuple[str, Passage]]) -> list[Passage]:
    """The passages, or an error naming the first id given twice and both places (``where`` strings)."""
    seen: dict[Any, str] = {}
    out = []
    for where, passage in passages:
        key = (type(passage.id), passage.id)  # the id 2 and the id "2" print apart in JSON, so both may stand
        if key in seen:
            raise InputError(
                f"{where}: id {passage.id!r} is already used by {seen[key]}; "
                "give every record a unique id, so each result maps back to one input"
            )
        seen[key] = where
        out.append(passage)
    return out


def passages_from_records(source: str) -> list[Passage]:
    """JSON Lines records; ``id`` defaults to the line number; a repeated id is refused."""
    name, data = _read_bytes(source)
    return unique_ids(
        (f"{name}: line {n}", parse_record(line, f"{name}: line {n}", n))
        for n, line in enumerate(_decode_lines(name, data), start=1)
        if line.strip()
    )


def gather(arguments: Sequence[str], file: str | None, records: str | None, stdin_is_terminal: bool) -> list[Passage]:
    """Passages from the one source given: arguments, ``file``, ``records``, or else standard input."""
    if file == STDIN and records == STDIN:
        raise InputError("--file - and --records - both ask for standard input: give it to one of them")
    given = [what for what, given in (("arguments", bool(arguments)), ("--file", file is not None),
                                      ("--records", records is not None)) if given]
    if len(given) > 1:
        raise InputError(
            f"passages come from one source per call, got {' and '.join(given)}: "
            "ids count from 1 in each source, so mixing them would repeat ids"
        )
    if arguments:
        return passages_from_arguments(arguments)
    if file is not None:
        return passages_from_lines(file)
    if records is not None:
        return passages_from_records(records)
    return [] if stdin_is_terminal else passages_from_lines(STDIN)
