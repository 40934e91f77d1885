"""Print real passages for the demo, one per line: English Debian package descriptions (synopsis and
the first paragraph), a fixed, varied sample of them."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .debian import Description, read_descriptions

SAMPLE = 300


def demo_line(d: Description) -> str:
    first = " ".join(d.body.split("\n\n")[0].split())
    return f"{d.package}: {d.synopsis}. {first}"


def demo_passages(docs: Sequence[Description] | None = None) -> list[str]:
    """Every len/SAMPLE-th description as one line: the passages ``make demo`` reranks."""
    docs = docs if docs is not None else read_descriptions("en")
    step = max(1, len(docs) // SAMPLE)
    return [demo_line(d) for d in docs[::step][:SAMPLE]]


def main() -> None:
    for passage in demo_passages():
        sys.stdout.write(passage + "\n")


if __name__ == "__main__":
    main()
