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


def demo_sample(docs: Sequence[Description] | None = None) -> list[Description]:
    """Every len/SAMPLE-th English description: the packages ``make demo`` shows."""
    docs = docs if docs is not None else read_descriptions("en")
    step = max(1, len(docs) // SAMPLE)
    return list(docs[::step][:SAMPLE])


def demo_passages(docs: Sequence[Description] | None = None) -> list[str]:
    """The demo sample as one line each: the passages ``make demo`` reranks."""
    return [demo_line(d) for d in demo_sample(docs)]


def main() -> None:
    for passage in demo_passages():
        sys.stdout.write(passage + "\n")


if __name__ == "__main__":
    main()
