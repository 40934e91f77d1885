"""Man pages from Debian packages: the NAME line's summary as the query, the DESCRIPTION as the passage.

Pages are rendered with groff (``groff-base``, on every Debian system) without hyphenation and with very
long lines, then re-flowed into paragraphs, so no word is split by the renderer. A page that only
includes another (``.so``) is skipped; the names it would add are already on the page it includes.
The whole rendered page but its NAME section is kept too (``ManPage.text``): the long-document task
(evaluation/longdoc.py) scores it entire against the NAME summary, which it must therefore not contain.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from evaluation.sources.debs import Deb, cache_dir, fetch, members
from evaluation.sources.records import Record

# Packages of bookworm main whose pages are well written and varied: the Linux man-pages project
# (system calls, library functions, file formats, overviews) and everyday command-line tools.
PACKAGES = (
    Deb("manpages", "6.03-2", "efa1ba4cd19ad7baeae959c9209a7eb74be2ebb858bcabb412597bfc9f588c91",
        "Linux man-pages: verbatim-copying and GPL-2.0+ per page (see each page's copyright header)"),
    Deb("manpages-dev", "6.03-2", "96f55cb5e26231d5567c89b692bced63825a14a2d5bd18fdf16ea2ed44eb9838",
        "Linux man-pages: verbatim-copying and GPL-2.0+ per page (see each page's copyright header)"),
    Deb("coreutils", "9.1-1", "61038f857e346e8500adf53a2a0a20859f4d3a3b51570cc876b153a2d51a3091", "GPL-3.0+"),
    Deb("findutils", "4.9.0-4", "5dd86bd0af4aa73f067dfd6b8339dd868f2dd84056aa79db29d1206d4fbc5e04", "GPL-3.0+"),
    Deb("grep", "3.8-5", "3264acea728df3c48a54f20e9291b965130e306b9d00adac76647049da7196df", "GPL-3.0+"),
    Deb("gzip", "1.12-1", "eabec1dde2834f72540d7b93fc5df2625f52611c06d93d61f5cdb12480e0e6a3", "GPL-3.0+"),
    Deb("iproute2", "6.1.0-3", "1204b29e916e836267096d0b9d778106752f821ebde0d281539008b4386d9070", "GPL-2.0"),
    Deb("procps", "2:4.0.2-3", "d9d0e75779cb79af869181f17b93c5c263a2b89cac6a0193c436160a4483ddc1", "GPL-2.0+, LGPL-2.0+"),
    Deb("man-db", "2.11.2-2", "4134d16ea0233ebe78b2d1d271194fcf49a69eb2850421b0f3d76055e221fcea", "GPL-2.0+"),
)

_SECTION = re.compile(r"^([A-Z][A-Z0-9 ,/&-]*)$")


@dataclass(frozen=True)
class ManPage:
    package: str
    page: str  # e.g. "open.2"
    names: tuple[str, ...]  # the names before " - " on the NAME line
    summary: str  # the NAME line after " - ": what the page is about, in one line
    description: str  # the DESCRIPTION section, re-flowed
    text: str  # the whole page without its NAME section, re-flowed


def render(source: bytes) -> str:
    """groff's plain-text rendering of one page: no hyphenation, no overstrike, lines of 1,000 columns."""
    if shutil.which("groff") is None:
        raise RuntimeError("groff is needed to render man pages: apt-get install groff-base")
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rHY=0", "-rLL=1000n", "-P-c", "-P-b", "-P-u", "-P-o"],
        input=source, capture_output=True, check=False,
    )
    return done.stdout.decode("utf-8", errors="replace")


def _reflow(lines: list[str]) -> str:
    blocks = re.split(r"\n\s*\n", "\n".join(lines))
    return "\n".join(p for p in (" ".join(b.split()) for b in blocks) if p)


def parse(page: str, package: str, rendered: str) -> ManPage | None:
    """Sections by their unindented capitalised headings; None when NAME has no " - " summary."""
    sections: dict[str, list[str]] = {}
    current = None
    body = []  # every line outside NAME, headings included
    for line in rendered.splitlines()[1:-1]:  # groff's header and footer lines
        heading = _SECTION.match(line)
        if heading:
            current = heading.group(1).strip()
            sections.setdefault(current, [])
        elif current is not None:
            sections[current].append(line)
        if current != "NAME":
            body.append(line)
    name_line = " ".join(" ".join(sections.get("NAME", [])).split())
    if " - " not in name_line:
        return None
    names, summary = name_line.split(" - ", 1)
    return ManPage(package, page, tuple(n.strip() for n in names.split(",") if n.strip()), summary.strip(),
                   _reflow(sections.get("DESCRIPTION", [])), _reflow(body))


def _read_package(deb: Deb, cache: Path | None) -> list[ManPage]:
    pages = []
    for path, blob in members(fetch(deb, cache), "usr/share/man/man"):
        if not path.endswith(".gz") or "/man/man" not in path or path.count("/") != 4:
            continue  # translations live under usr/share/man/<lang>/
        source = gzip.decompress(blob)
        if source.lstrip().startswith(b".so "):
            continue
        parsed = parse(Path(path).name.removesuffix(".gz"), deb.package, render(source))
        if parsed is not None:
            pages.append(parsed)
    return pages


def man_pages(cache: Path | None = None) -> list[ManPage]:
    """Every page of ``PACKAGES``, rendered once and cached as JSON keyed by the packages and this code."""
    cache = cache or cache_dir()
    key = hashlib.sha256(("".join(d.sha256 for d in PACKAGES) + Path(__file__).read_text()).encode()).hexdigest()
    stored = cache / f"manpages-{key[:16]}.json"
    if stored.is_file():
        return [ManPage(**{**p, "names": tuple(p["names"])}) for p in json.loads(stored.read_text("utf-8"))]
    pages = [p for deb in PACKAGES for p in _read_package(deb, cache)]
    cache.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(p) for p in pages], ensure_ascii=False), "utf-8")
    tmp.replace(stored)
    return pages


MIN_DESCRIPTION_WORDS = 20


def manpage_records(cache: Path | None = None) -> list[Record]:
    """Synopsis-shaped queries ("open and possibly create a file") against the page's DESCRIPTION."""
    return [
        Record(source="manpages", key=p.page, group=p.names[0] if p.names else p.page,
               query=p.summary, passage=p.description)
        for p in man_pages(cache)
        if len(p.description.split()) >= MIN_DESCRIPTION_WORDS and p.summary
    ]
