"""Print real passages for the demo, one per line: English Debian package descriptions (synopsis and
the first paragraph), a fixed, varied sample of them."""

from __future__ import annotations

import sys

from .debian import read_descriptions

SAMPLE = 300


def main() -> None:
    docs = read_descriptions("en")
    step = max(1, len(docs) // SAMPLE)
    for d in docs[::step][:SAMPLE]:
        first = " ".join(d.body.split("\n\n")[0].split())
        sys.stdout.write(f"{d.package}: {d.synopsis}. {first}\n")


if __name__ == "__main__":
    main()
