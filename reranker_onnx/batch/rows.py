"""Rows of a batch job: check one record, and write it back with its scores.

Two shapes are accepted, row by row: nested ``{"id", "query", "candidates": [{"id", "text"}, ...]}``
and flat ``{"id", "query", "text"}``. A row that cannot be scored becomes a :class:`BadRow` with its
line number and a reason, never an exception: one bad row must not stop a million good ones.
Fields the job does not know are kept as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..jsonl import json_line
from .plan import Limits


@dataclass(frozen=True)
class Row:
    number: int  # 1-based line (JSON Lines) or row (Parquet) number
    record: dict[str, Any]  # as read; never modified
    query: str
    texts: tuple[str, ...]  # one per candidate, or the flat row's text
    nested: bool


@dataclass(frozen=True)
class BadRow:
    number: int
    reason: str

    def to_json(self) -> str:
        return json.dumps({"line": self.number, "reason": self.reason}, ensure_ascii=False)


class _Bad(Exception):
    pass


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{what} must be a string, got {_kind(value)}")
    return value


def _writable(record: dict[str, Any]) -> None:
    """The row is written back whole, as strict JSON in UTF-8: no field may hold a lone surrogate
    ("\\ud800"), NaN or Infinity (Python's JSON reader and Parquet floats allow them; JSON does not)."""
    try:
        json_line(record, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(f"holds invalid Unicode (a lone surrogate, character {exc.start} of the row as JSON)") from None
    except ValueError:
        raise _Bad("holds NaN or Infinity, which JSON cannot hold") from None
    except RecursionError:
        raise _Bad("nested too deeply to write back") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_id(value: object, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
        raise _Bad(f'{what} must be a string or an integer, got {_kind(value)}')


def _parse(number: int, record: object, limits: Limits) -> Row:
    if not isinstance(record, dict):
        raise _Bad(f"must be a JSON object, got {_kind(record)}")
    _writable(record)
    _check_id(record.get("id"), '"id"')
    if "query" not in record:
        raise _Bad('"query" is missing')
    query = _text(record["query"], '"query"')
    if not query.strip():
        raise _Bad('"query" is empty')
    has_candidates, has_text = "candidates" in record, "text" in record
    if has_candidates and has_text and (record["text"] is None) != (record["candidates"] is None):
        has_text = record["text"] is not None  # a null beside the other shape is absent: Parquet has every column
        has_candidates = not has_text
    if has_candidates == has_text:
        raise _Bad('needs either "candidates" (a list of {"id", "text"}) or "text", not ' + ("both" if has_text else "neither"))
    if has_text:
        return Row(number, record, query, (_text(record["text"], '"text"'),), nested=False)
    candidates = record["candidates"]
    if not isinstance(candidates, list):
        raise _Bad(f'"candidates" must be a list, got {_kind(candidates)}')
    if len(candidates) > limits.max_candidates:
        raise _Bad(f"{len(candidates)} candidates, more than the limit of {limits.max_candidates}; split the row")
    texts = []
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, dict) or "text" not in candidate:
            raise _Bad(f'candidate {i} must be an object with a "text" field')
        _check_id(candidate.get("id"), f'candidate {i}: "id"')
        texts.append(_text(candidate["text"], f'candidate {i}: "text"'))
    return Row(number, record, query, tuple(texts), nested=True)


def parse_record(number: int, record: object, limits: Limits) -> Row | BadRow:
    """A decoded record (a Parquet row, or a JSON value) as a row to score, or the reason it is bad."""
    try:
        return _parse(number, record, limits)
    except _Bad as exc:
        return BadRow(number, str(exc))


def parse_line(number: int, line: bytes, limits: Limits) -> Row | BadRow | None:
    """One line of JSON Lines; None for a blank line (not a row)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRow(number, f"not valid UTF-8 (byte {exc.start} of the line)")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadRow(number, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except ValueError:  # json.loads refuses to convert an integer of over 4,300 digits
        return BadRow(number, "not usable JSON (a number of over 4,300 digits)")
    except RecursionError:
        return BadRow(number, "JSON nested too deeply")
    return parse_record(number, record, limits)


def _ranks(scores: Sequence[float]) -> list[int]:
    """1 for the best score; ties keep the input order."""
    ranks = [0] * len(scores)
    for rank, i in enumerate(sorted(range(len(scores)), key=lambda i: -scores[i]), start=1):
        ranks[i] = rank
    return ranks


def scored(row: Row, scores: Sequence[float], top_k: int | None) -> dict[str, Any]:
    """A new record: flat rows gain ``score``; nested candidates gain ``score`` and ``rank`` and, with
    ``top_k``, only the best ``top_k`` stay (in their input order)."""
    assert len(scores) == len(row.texts), f"{len(scores)} scores for {len(row.texts)} texts"
    if not row.nested:
        return {**row.record, "score": scores[0]}
    ranks = _ranks(scores)
    candidates = [
        {**candidate, "score": score, "rank": rank}
        for candidate, score, rank in zip(row.record["candidates"], scores, ranks)
        if top_k is None or rank <= top_k
    ]
    return {**row.record, "candidates": candidates}
