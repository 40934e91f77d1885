"""Question → answer tasks from two FAQ documents Debian packages: the Debian FAQ and Python's FAQ.

Questions are real questions people asked, so this is the one domain whose queries are questions. The
Debian FAQ ships as plain text (numbered headings, indented answers), Python's as reStructuredText
sources (a title underlined with punctuation of the same length). Markup is reduced to its words.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from evaluation.sources.debs import Deb, fetch, members
from evaluation.sources.records import Record

DEBIAN_FAQ = Deb("debian-faq", "11.1", "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0",
                 "verbatim and modified copies permitted (Software in the Public Interest)")
PYTHON_FAQ = Deb("python3.11-doc", "3.11.2-6+deb12u9",
                 "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be", "PSF-2.0")

MIN_ANSWER_WORDS = 15
_HEADING = re.compile(r"^(\d+)\.(\d+)\. (.+)$")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def _flow(lines: list[str]) -> str:
    blocks = re.split(r"\n\s*\n", "\n".join(lines))
    return "\n".join(p for p in (" ".join(b.split()) for b in blocks) if p)


def parse_debian_faq(text: str) -> list[tuple[str, str, str]]:
    """(section number, question, answer) from the plain-text FAQ; headings may wrap to a second line."""
    body = text.replace("\xa0", " ").split("\n1.1. ", 1)
    if len(body) != 2:
        return []
    lines = ("1.1. " + body[1]).splitlines()
    out: list[tuple[str, str, str]] = []
    number, question, answer = "", "", []
    i = 0
    while i < len(lines):
        heading = _HEADING.match(lines[i])
        if heading:
            if number:
                out.append((number, question, _flow(answer)))
            number, question, answer = f"{heading.group(1)}.{heading.group(2)}", heading.group(3), []
            while i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1].startswith(" "):
                i += 1
                question += " " + lines[i].strip()  # a wrapped heading continues unindented
        elif re.match(r"^(Chapter|Appendix) \S+\. ", lines[i]):  # a chapter title closes the answer
            if number:
                out.append((number, question, _flow(answer)))
            number, question, answer = "", "", []
        elif number:
            answer.append(lines[i])
        i += 1
    if number:
        out.append((number, question, _flow(answer)))
    return out


def _rst_words(text: str) -> str:
    text = re.sub(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)  # :func:`name` -> name
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`_+", r"\1", text)  # `text <url>`_ -> text
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"^\.\. .*$", "", text, flags=re.M)  # directives and comments
    return text


def parse_rst_faq(text: str) -> list[tuple[str, str]]:
    """(question, answer) for every title that ends with '?' in one reStructuredText FAQ page."""
    lines = text.splitlines()
    titles = [i for i in range(len(lines) - 1)
              if lines[i].strip() and _UNDERLINE.match(lines[i + 1]) and len(lines[i + 1].strip()) >= len(lines[i].strip())]
    out = []
    for n, i in enumerate(titles):
        end = titles[n + 1] if n + 1 < len(titles) else len(lines)
        question = lines[i].strip()
        if question.endswith("?"):
            out.append((_rst_words(question), _flow(_rst_words("\n".join(lines[i + 2 : end])).splitlines())))
    return out


def faq_records(cache: Path | None = None) -> list[Record]:
    records = []
    for path, blob in members(fetch(DEBIAN_FAQ, cache), "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"):
        for number, question, answer in parse_debian_faq(gzip.decompress(blob).decode("utf-8")):
            records.append(Record("faq", f"debian-faq/{number}", f"debian-faq/{number}", question, answer))
    for path, blob in members(fetch(PYTHON_FAQ, cache), "usr/share/doc/python3.11/html/_sources/faq/"):
        page = Path(path).name.split(".")[0]
        for question, answer in parse_rst_faq(blob.decode("utf-8")):
            records.append(Record("faq", f"python-faq/{page}/{question}", f"python-faq/{page}/{question}", question, answer))
    return [r for r in records if len(r.passage.split()) >= MIN_ANSWER_WORDS]
