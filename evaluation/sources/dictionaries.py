"""Term → definition tasks from two dictionaries Debian packages for dictd: FOLDOC and WordNet.

A dictd database is an index (headword, base64 offset, base64 length per line) into a gzip-compressed
text file. An entry starts with its headword lines (FOLDOC lists aliases there too); the query is the
headword, the passage the definition body below it, so the passage never just repeats the query line.
Metadata entries (``00-database-*``) and entries whose body is a bare cross-reference are skipped.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from evaluation.sources.debs import Deb, fetch, members
from evaluation.sources.records import Record

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

FOLDOC = Deb("dict-foldoc", "20230119-1", "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3",
             "GFDL-1.1-or-later (Free On-line Dictionary of Computing, Denis Howe)")
WORDNET = Deb("dict-wn", "1:3.0-37", "ed99e0bf162815dc1cc69de3727eedd7112ddf170badf83dbde26209e0724a8c",
              "WordNet 3.0 licence (Princeton University; permissive, BSD-like)")

MIN_BODY_WORDS = 8  # shorter bodies are mostly "See {other term}."


def _b64(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 64 + _B64.index(ch)
    return value


def read_dictd(index: str, data: bytes) -> dict[str, str]:
    """Headword → entry text, first occurrence of each (offset, length) only (aliases share an entry)."""
    entries: dict[str, str] = {}
    seen: set[tuple[int, int]] = set()
    for line in index.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
            continue
        span = (_b64(parts[1]), _b64(parts[2]))
        if span in seen:
            continue
        seen.add(span)
        entries[parts[0]] = data[span[0] : span[0] + span[1]].decode("utf-8", errors="replace")
    return entries


def _paragraphs(lines: list[str]) -> str:
    """Re-flow indented, wrapped lines into paragraphs separated by newlines; drop dictd's {link} braces."""
    text = "\n".join(line.strip() for line in lines)
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text)]
    return re.sub(r"[{}]", "", "\n".join(p for p in paragraphs if p))


def split_entry(entry: str) -> tuple[str, str]:
    """(headword, body): the headword is the entry's first line; the body starts at the first indented line."""
    lines = entry.splitlines()
    body_start = next((i for i, line in enumerate(lines) if line.startswith((" ", "\t"))), len(lines))
    return lines[0].strip(), _paragraphs(lines[body_start:])


def _records(source: str, deb: Deb, stem: str, cache: Path | None) -> list[Record]:
    files = dict(members(fetch(deb, cache), "usr/share/dictd/"))
    index = files[f"usr/share/dictd/{stem}.index"].decode("utf-8")
    data = gzip.decompress(files[f"usr/share/dictd/{stem}.dict.dz"])
    records = []
    for key, entry in read_dictd(index, data).items():
        headword, body = split_entry(entry)
        body = re.sub(r"\(\d{4}-\d{2}-\d{2}\)\s*$", "", body).strip()  # FOLDOC's last-edited stamp
        if len(body.split()) >= MIN_BODY_WORDS and headword:
            records.append(Record(source=source, key=key, group=headword.lower(), query=headword, passage=body))
    return records


def foldoc(cache: Path | None = None) -> list[Record]:
    """Computing terms (keyword queries) against their FOLDOC definitions."""
    return _records("foldoc", FOLDOC, "foldoc", cache)


def wordnet(cache: Path | None = None) -> list[Record]:
    """General English words (keyword queries) against their WordNet senses, glosses and examples."""
    return _records("wordnet", WORDNET, "wn", cache)
