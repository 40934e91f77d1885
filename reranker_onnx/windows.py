"""Passages longer than the model, scored as overlapping windows; the passage's score is the best window's.

MaxP (the maximum over a document's passages, from the passage-level BERT ranking work of Dai and
Callan, 2019) is the simplest rule that keeps the calibration of one pair's score: a long page that
answers the query in one section scores as that section does. FirstP is what truncation gives; SumP
and averaging reward length. A window holds the query, the template's special tokens and as many
passage tokens as ``window`` (≤ the model's max length) leaves; consecutive windows start ``stride``
passage tokens apart, so ``window − stride`` tokens are seen twice. A passage that fits in one window is
scored exactly as without windows (same text, same call).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_WINDOWS = 64  # per passage: past it the passage is cut, as it would be without windows


@dataclass(frozen=True)
class WindowPlan:
    """Windows of one passage as character spans, and whether the passage was cut at max_windows."""

    spans: list[tuple[int, int]]
    cut: bool


def window_starts(tokens: int, room: int, stride: int, max_windows: int) -> list[int]:
    """Token index where each window starts: 0, stride, 2·stride, ... until one reaches the end."""
    if room < 1 or stride < 1:
        raise ValueError("window room and stride must be at least one token")
    starts = [0]
    while starts[-1] + room < tokens and len(starts) < max_windows:
        starts.append(starts[-1] + stride)
    return starts


def plan_windows(offsets: list[tuple[int, int]], room: int, stride: int, max_windows: int) -> WindowPlan:
    """Character spans of the windows over a passage tokenized with ``offsets`` (one per token)."""
    if len(offsets) <= room:
        return WindowPlan(spans=[(0, -1)], cut=False)  # the whole passage: plain scoring
    starts = window_starts(len(offsets), room, stride, max_windows)
    spans = [(offsets[s][0], offsets[min(s + room, len(offsets)) - 1][1]) for s in starts]
    return WindowPlan(spans=spans, cut=starts[-1] + room < len(offsets))


def max_per_owner(scores: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """The maximum score of each owner 0..count-1 over its rows (MaxP)."""
    best = np.full(count, -np.inf, dtype=scores.dtype)
    np.maximum.at(best, owners, scores)
    return best


class Windower:
    """Splits (query, passage) pairs into window pairs with the model's tokenizer (truncation off)."""

    def __init__(self, tokenizer_json: str, window: int, stride: int | None, specials: int, query_share: int,
                 max_windows: int = DEFAULT_MAX_WINDOWS, chars_per_token_cap: int = 64) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.window, self.stride, self.specials = window, stride, specials
        self.query_share, self.max_windows, self.cap = query_share, max_windows, chars_per_token_cap

    def room(self, query: str) -> int:
        """Passage tokens per window beside this query (the query is cut to its share if longer); only
        the query's first ``char_cap(query_share)`` characters are read, as in the pair encoder."""
        from .cutting import cut_to_tokens

        query_tokens = cut_to_tokens(self.tokenizer, query, self.query_share).tokens
        return max(1, self.window - self.specials - min(query_tokens, self.query_share))

    def expand(self, pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], np.ndarray, int]:
        """Window pairs, the index of the pair each came from, and how many passages were cut."""
        out: list[tuple[str, str]] = []
        owners: list[int] = []
        cut = 0
        rooms: dict[str, int] = {}
        for i, (query, passage) in enumerate(pairs):
            room = rooms.get(query) or rooms.setdefault(query, self.room(query))
            stride = self.stride or max(1, room // 2)
            # Never tokenize more than max_windows can use: a 10 MB passage costs what a long one does.
            text = passage[: (self.max_windows * stride + room) * self.cap]
            offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
            plan = plan_windows(offsets, room, stride, self.max_windows)
            cut += plan.cut or len(text) < len(passage)
            for start, stop in plan.spans:
                out.append((query, passage if stop < 0 else passage[start:stop]))
                owners.append(i)
        return out, np.asarray(owners, dtype=np.int64), cut
