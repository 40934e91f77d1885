"""The domain sources' parsers on small hand-made inputs: no apt, no network."""

from __future__ import annotations

import base64
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from evaluation.sources import debs, dictionaries, faq, manpages
from evaluation.sources.domains import as_descriptions
from evaluation.sources.records import Record
from evaluation.tasks import build_splits


def _b64(n: int) -> str:
    alphabet = dictionaries._B64
    out = ""
    while True:
        out = alphabet[n % 64] + out
        n //= 64
        if n == 0:
            return out


def test_dictd_entries_split_into_headword_and_reflowed_body() -> None:
    entry_a = "kernel\nkernal\n\n   1. <operating system> The essential part of {Unix}\n   or other systems.\n\n   (1996-06-07)\n"
    entry_b = "zip\n\n   A compressed {archive}.\n"
    data = (entry_a + entry_b).encode()
    index = "\n".join([
        "00-database-info\tA\tB",
        f"kernel\t{_b64(0)}\t{_b64(len(entry_a))}",
        f"kernal\t{_b64(0)}\t{_b64(len(entry_a))}",  # an alias: same span, read once
        f"zip\t{_b64(len(entry_a))}\t{_b64(len(entry_b))}",
    ])
    entries = dictionaries.read_dictd(index, data)
    assert list(entries) == ["kernel", "zip"]
    headword, body = dictionaries.split_entry(entries["kernel"])
    assert headword == "kernel"
    assert body == "1. <operating system> The essential part of Unix or other systems.\n(1996-06-07)"


def test_debian_faq_headings_wrap_and_chapters_close_answers() -> None:
    text = (
        "Table of Contents\n    1.1. What is this FAQ?\n\n"
        "Chapter\xa01.\xa0Definitions\n\n"
        "1.1.\xa0What is this FAQ?\n\n    It answers\n    questions.\n\n"
        "1.2.\xa0What is the difference between Debian and other Linux\ndistributions?\n\n    Many things.\n\n"
        "Chapter\xa02.\xa0Next\n\nIntro text that belongs to no question.\n\n"
        "2.1.\xa0Last?\n\n    Yes.\n"
    )
    parsed = faq.parse_debian_faq(text)
    assert parsed == [
        ("1.1", "What is this FAQ?", "It answers questions."),
        ("1.2", "What is the difference between Debian and other Linux distributions?", "Many things."),
        ("2.1", "Last?", "Yes."),
    ]


def test_rst_faq_keeps_question_titles_and_strips_roles() -> None:
    text = (
        "General FAQ\n===========\n\nIntro.\n\n"
        "How do I sort a list?\n---------------------\n\nCall :func:`sorted` or ``list.sort()``.\n\n"
        "Notes\n-----\n\nNot a question.\n"
    )
    assert faq.parse_rst_faq(text) == [("How do I sort a list?", "Call sorted or list.sort().")]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (apt-get install groff-base)")
def test_man_page_sections_come_out_reflowed() -> None:
    source = (
        b'.TH GZIP 1 "2024" "gzip" "User Commands"\n.SH NAME\ngzip, gunzip \\- compress or expand files\n'
        b".SH SYNOPSIS\n.B gzip\n[options]\n.SH DESCRIPTION\n.B Gzip\nreduces the size of the named files\n"
        b"using Lempel-Ziv coding.\n.PP\nWhenever possible, each file is replaced.\n"
    )
    page = manpages.parse("gzip.1", "gzip", manpages.render(source))
    assert page is not None
    assert page.names == ("gzip", "gunzip")
    assert page.summary == "compress or expand files"
    assert page.description == (
        "Gzip reduces the size of the named files using Lempel-Ziv coding.\nWhenever possible, each file is replaced."
    )
    assert "SYNOPSIS" in page.text and "Lempel-Ziv" in page.text
    assert "NAME" not in page.text and "compress or expand" not in page.text  # the query is not in the passage


def test_longdoc_queries_are_unique_test_split_summaries_answered_by_their_page() -> None:
    from evaluation.longdoc import load_task
    from evaluation.split import assign

    def page(i: int, summary: str, length: int = 60) -> manpages.ManPage:
        return manpages.ManPage("pkg", f"p{i}.1", (f"name{i}",), summary, "", f"SYNOPSIS p{i} " + "word " * length)

    pages = [page(i, f"summary {i}") for i in range(300)] + [page(300, "summary 7"), page(301, "too short", 5)]
    queries, passages, targets = load_task(pages)
    assert len(passages) == 301  # every page long enough is a candidate, the short one is not
    tests = {f"summary {i}" for i in range(300) if assign(f"name{i}") == "test" and i != 7}
    assert set(queries) == tests and len(tests) > 10
    for query, target in zip(queries, targets):
        assert passages[target].startswith(f"SYNOPSIS p{query.split()[1]} ")


def _deb(path: Path, files: dict[str, bytes]) -> None:
    """A minimal .deb: an ar archive with debian-binary and a data.tar.gz."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as tar:
        for name, blob in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    out = b"!<arch>\n"
    for name, blob in (("debian-binary", b"2.0\n"), ("data.tar.gz", tar_bytes.getvalue())):
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(blob):<10}`\n".encode() + blob
        out += b"\n" if len(blob) % 2 else b""
    path.write_bytes(out)


def test_deb_members_and_checksum(tmp_path: Path) -> None:
    path = tmp_path / "demo_1.0.deb"
    _deb(path, {"usr/share/doc/demo/FAQ.txt": b"odd", "usr/bin/demo": b"#!/bin/sh\n"})
    assert list(debs.members(path, "usr/share/doc/")) == [("usr/share/doc/demo/FAQ.txt", b"odd")]
    good = debs.Deb("demo", "1.0", debs.sha256_file(path), "MIT")
    assert debs.fetch(good, tmp_path) == path  # cached: apt is not asked
    bad = debs.Deb("demo", "1.0", "0" * 64, "MIT")
    with pytest.raises(RuntimeError, match="expected 0000"):
        debs.fetch(bad, tmp_path)
    (tmp_path / "notdeb.deb").write_bytes(b"hello")
    with pytest.raises(RuntimeError, match="not a .deb"):
        list(debs.members(tmp_path / "notdeb.deb", ""))


def test_a_group_never_spans_two_splits() -> None:
    records = [Record("t", f"k{i}", f"group{i // 3}", f"query {i}", f"passage {i}") for i in range(300)]
    splits = build_splits(as_descriptions(records))
    where = {}
    for split, queries in splits.queries.items():
        for q in queries:
            assert where.setdefault(q.package, split) == split
    assert sum(len(q) for q in splits.queries.values()) == 300
    assert {len(q) > 0 for q in splits.queries.values()} == {True}


def test_encoded_offsets_round_trip() -> None:
    for n in (0, 1, 63, 64, 4095, 123456789):
        assert dictionaries._b64(_b64(n)) == n
    assert base64  # the dictd alphabet is base64's, read as a big-endian number
