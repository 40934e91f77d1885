"""One shard's work, the same in every engine: read it, score every pair in one call, write lines.

All pairs of a shard go to one ``Reranker.predict`` call, so the batches the runtime forms depend on
the shard alone: a process, a resumed job and a Ray actor score a shard with the same batches and
give the same scores, bit for bit, whatever the variant.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

from reranker_onnx import InputError, Reranker
from reranker_onnx.jsonl import json_line

from .plan import Limits, Shard
from .rows import BadRow, Row, scored
from .sources import Source


@dataclass(frozen=True)
class ShardResult:
    index: int
    output: str  # JSON Lines of the scored rows, in input order
    errors: str  # JSON Lines of the bad rows
    rows: int  # good rows
    bad: int
    pairs: int


def score_shard(reranker: Reranker, source: Source, shard: Shard, limits: Limits, top_k: int | None) -> ShardResult:
    good: list[Row] = []
    bad: list[BadRow] = []
    refused: dict[str, str | None] = {}
    for parsed in source.read(shard, limits):
        if isinstance(parsed, Row) and _refused(reranker, parsed.query, refused):
            parsed = BadRow(parsed.number, f'"query" {refused[parsed.query]}')
        (good if isinstance(parsed, Row) else bad).append(parsed)
    pairs = [(row.query, text) for row in good for text in row.texts]
    scores = reranker.predict(pairs) if pairs else []
    lines, at = [], 0
    for row in good:
        n = len(row.texts)
        lines.append(json_line(scored(row, scores[at : at + n], top_k), default=str) + "\n")
        at += n
    return ShardResult(
        index=shard.index,
        output="".join(lines),
        errors="".join(b.to_json() + "\n" for b in bad),
        rows=len(good),
        bad=len(bad),
        pairs=len(pairs),
    )


def _refused(reranker: Reranker, query: str, seen: dict[str, str | None]) -> str | None:
    """Why the runtime refuses ``query`` (nothing visible, or no tokens for this model), or None: such
    a row is a bad row, not an error that stops the shard (``score(query, [])`` checks, scoring nothing)."""
    if query not in seen:
        try:
            reranker.score(query, [])
            seen[query] = None
        except InputError:
            seen[query] = "is empty for this model (nothing visible, or no tokens)"
    return seen[query]


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
