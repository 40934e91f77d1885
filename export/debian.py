"""Debian package descriptions: the project's source of real queries and passages.

The files live in ``shared/data/debian`` beside the repository (see its README). Each stanza gives a
package, the md5 of its description, a one-line synopsis and a long description; many packages
share one description, so readers get one record per ``Description-md5``.
"""

from __future__ import annotations

import lzma
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

Language = Literal["en", "ja"]

# sha256 of the uncompressed files, from shared/data/debian/README.md.
EXPECTED_SHA256 = {
    "en": "62f59c3cdca9786e4f7adf9002f9f5729a684adcb4667e58e448dec9b5a46c7f",
    "ja": "642792836c58facc19a735181fc1bc53ac211fc082ff141377fc6be2d2498259",
}


@dataclass(frozen=True)
class Description:
    package: str  # the first package (in file order) that carries this description
    md5: str
    synopsis: str
    body: str  # long description, paragraphs joined by blank lines


def data_dir() -> Path:
    """``$RERANKER_DEBIAN_DATA`` or ``shared/data/debian`` beside the repository."""
    env = os.environ.get("RERANKER_DEBIAN_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "debian"


def _parse(text: str, lang: Language) -> list[Description]:
    field = f"Description-{lang}:"
    records: dict[str, Description] = {}
    for stanza in text.split("\n\n"):
        package = md5 = synopsis = ""
        body_lines: list[str] = []
        in_description = False
        for line in stanza.splitlines():
            if line.startswith("Package:"):
                package = line.split(":", 1)[1].strip()
            elif line.startswith("Description-md5:"):
                md5 = line.split(":", 1)[1].strip()
            elif line.startswith(field):
                synopsis = line[len(field):].strip()
                in_description = True
            elif in_description and line.startswith(" "):
                content = line[1:]
                body_lines.append("" if content.strip() == "." else content.strip())
            else:
                in_description = False
        if not (package and md5 and synopsis) or md5 in records:
            continue
        body = "\n".join(body_lines).strip()
        if body:
            records[md5] = Description(package, md5, synopsis, body)
    return list(records.values())


@lru_cache(maxsize=2)
def read_descriptions(lang: Language = "en") -> tuple[Description, ...]:
    """Every distinct description (deduplicated by md5) with a non-empty body, in file order."""
    path = data_dir() / f"Translation-{lang}.xz"
    if not path.is_file():
        raise FileNotFoundError(
            f"Debian descriptions not found at {path}: put shared/ beside the repository "
            "or set RERANKER_DEBIAN_DATA to the folder holding Translation-en.xz"
        )
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        return tuple(_parse(fh.read(), lang))
