"""Turn (query, passage) pairs into token ids exactly as the reference cross-encoder does.

The reference (sentence-transformers ``CrossEncoder.predict`` on a fast tokenizer) encodes the pair
with the tokenizer's own template and truncates ``longest_first`` at ``max_length``. With a query no
longer than its share (half of what the template leaves), that removes passage tokens only; a longer
query is cut too, to its share, as the reference does, and we warn, since the ranking then sees only
part of the question. Using the same Rust truncation keeps the ids identical, not merely similar.

Texts are cut before tokenizing (``cutting.cut_to_tokens``), where the cut provably keeps every token
the pair can hold, so neither a 10,000-word query nor a 20 MB passage costs more than a long pair does;
``tests/test_fuzz.py`` checks the ids against the uncut texts' on every family's tokenizer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

from .cutting import Cut, char_cap, cut_to_tokens, longer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedPairs:
    """Token ids of pairs, unpadded; one row per pair."""

    ids: list[list[int]]
    type_ids: list[list[int]]

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(row) for row in self.ids), dtype=np.int64, count=len(self.ids))


class PairEncoder:
    """Encodes pairs with the model's tokenizer, its pair template and longest-first truncation.

    Before pairing, a query is cut once to the most tokens it can keep in any pair (all of
    ``max_length`` but the template's, when the passage is empty), and a passage longer than
    :func:`char_cap` characters likewise; both cuts are exact (see :func:`cut_to_tokens`), so a
    10,000-word query costs what a 500-token one does, and memory stays bounded for any passage.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        tokenizer.no_padding()  # padding is per batch, after sorting by length
        self.plain = Tokenizer.from_str(tokenizer.to_str())  # counts and cuts single texts: no truncation
        self.plain.no_truncation()
        tokenizer.enable_truncation(max_length, strategy="longest_first")
        self.tokenizer = tokenizer
        self.max_length = max_length
        processor = tokenizer.post_processor
        specials = processor.num_special_tokens_to_add(True) if processor is not None else 0
        self.min_length = specials + 2  # the template and one token of each text
        self.text_tokens = max(1, max_length - specials)  # the most one side of a pair can keep
        self.query_share = (max_length - specials) // 2
        self.pad_id = self._pad_id()
        self.template = PairTemplate.read(self.plain)

    def _pad_id(self) -> int:
        padding = self.tokenizer.padding
        if padding and "pad_id" in padding:
            return int(padding["pad_id"])
        for token in ("<pad>", "[PAD]", "<|padding|>"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return token_id
        return 0  # the attention mask hides padding, so any id in range is correct

    def cut(self, text: str) -> Cut:
        """``text`` cut once to what any pair can keep of it (exact unless it is pathological)."""
        return cut_to_tokens(self.plain, text, self.text_tokens)

    def fit_passage(self, passage: str) -> tuple[str, int]:
        """A passage longer than :func:`char_cap` characters, cut (shorter ones are never touched),
        and the fewest tokens the whole passage has (0: not counted)."""
        if len(passage) <= char_cap(self.text_tokens):
            return passage, 0
        cut = self.cut(passage)
        if not cut.exact and cut.tokens < self.text_tokens:
            log.warning(
                "a passage of %d characters holds only %d tokens in its first %d; it is scored on those",
                len(passage), cut.tokens, len(cut.text),
            )
        return cut.text, cut.tokens

    def encode(self, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        """Token ids of pairs, as the reference's truncation gives them, from texts cut first.

        A query within its share is not cut (unless its first :func:`char_cap` characters hold no
        more tokens than that: then it is scored on those) and pairs go through the tokenizer's own
        truncation.
        A longer query is cut once; its pairs are truncated here by the same rule on the texts' whole
        token counts, since which side of a pair is longer decides who keeps the odd token.
        """
        cuts = {q: self.cut(q) for q in dict.fromkeys(q for q, _ in pairs)}
        fitted = [self.fit_passage(p) for _, p in pairs]
        ids: list[list[int]] = [[] for _ in pairs]
        type_ids: list[list[int]] = [[] for _ in pairs]
        short = [i for i, (q, _) in enumerate(pairs) if cuts[q].tokens <= self.query_share]
        encodings: list[Encoding] = self.tokenizer.encode_batch([(cuts[pairs[i][0]].text, fitted[i][0]) for i in short])
        for i, e in zip(short, encodings):
            ids[i], type_ids[i] = e.ids, e.type_ids
        long = [i for i, (q, _) in enumerate(pairs) if cuts[q].tokens > self.query_share]
        queries = {q: self.plain.encode(cuts[q].text, add_special_tokens=False).ids for q in {pairs[i][0] for i in long}}
        for start in range(0, len(long), LONG_QUERY_ROWS):  # passages untruncated: few at a time
            rows = long[start : start + LONG_QUERY_ROWS]
            passages = self.plain.encode_batch([fitted[i][0] for i in rows], add_special_tokens=False)
            for i, passage in zip(rows, passages):
                query = pairs[i][0]
                n_q, n_p = self._whole_counts(query, pairs[i][1], cuts[query].tokens, max(len(passage.ids), fitted[i][1]))
                keep_q, keep_p = longest_first(n_q, n_p, self.text_tokens)
                ids[i], type_ids[i] = self.template.pair(queries[query][:keep_q], passage.ids[:keep_p])
        return EncodedPairs(ids=ids, type_ids=type_ids)


    def _whole_counts(self, query: str, passage: str, n_q: int, n_p: int) -> tuple[int, int]:
        """Token counts that order the pair's texts as their whole counts do, where it matters: both
        are cut to half the room and the room is odd, so the longer whole text keeps the odd token.
        A text longer than :func:`char_cap` characters was counted on those only; then both are
        counted in step, a bounded chunk at a time, until the shorter ends (make fuzz found the odd
        token on the wrong side when both texts ran past the limit)."""
        cap = char_cap(self.text_tokens)
        if not self.text_tokens % 2 or 2 * min(n_q, n_p) <= self.text_tokens or max(len(query), len(passage)) <= cap:
            return n_q, n_p
        order = longer(self.plain, query, passage, cap)
        if order is None:  # a word longer than the chunk: the counts read so far decide
            return n_q, n_p
        return (max(n_q, n_p + 1), n_p) if order > 0 else (n_q, max(n_p, n_q))


LONG_QUERY_ROWS = 32  # passages tokenized at once beside a long query, whole: bounds their memory


@dataclass(frozen=True)
class PairTemplate:
    """The special tokens the tokenizer's post-processor puts around a pair, and each side's type id.

    A long query's pairs are assembled from it rather than by post-processing truncated Encodings:
    those keep what they cut as overflowing parts, and post-processing pairs every part of one side
    with every part of the other (make fuzz found 20,000 CJK characters on both sides taking 2.2 GB).
    """

    ids: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # before the query, between, after the passage
    type_ids: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    query_type: int
    passage_type: int

    @classmethod
    def read(cls, tokenizer: Tokenizer) -> PairTemplate:
        """From a sample pair post-processed by ``tokenizer`` (which must not truncate)."""
        a, b = (tokenizer.encode(text, add_special_tokens=False) for text in ("a", "b"))
        e = tokenizer.post_process(a, b, add_special_tokens=True)
        content = [k for k, special in enumerate(e.special_tokens_mask) if not special]
        at = [content[: len(a.ids)], content[len(a.ids) :]]
        assert [e.ids[k] for k in content] == a.ids + b.ids and all(at) and all(len(x) == x[-1] - x[0] + 1 for x in at), \
            f"unexpected pair layout {e.tokens}: specials, query, specials, passage, specials"
        cuts = ((0, at[0][0]), (at[0][-1] + 1, at[1][0]), (at[1][-1] + 1, len(e.ids)))
        return cls(ids=tuple(tuple(e.ids[x:y]) for x, y in cuts), type_ids=tuple(tuple(e.type_ids[x:y]) for x, y in cuts),
                   query_type=e.type_ids[at[0][0]], passage_type=e.type_ids[at[1][0]])

    def pair(self, query: list[int], passage: list[int]) -> tuple[list[int], list[int]]:
        """Token ids and type ids of the pair, as the post-processor gives them."""
        (head, mid, tail), (head_t, mid_t, tail_t) = self.ids, self.type_ids
        ids = [*head, *query, *mid, *passage, *tail]
        return ids, [*head_t, *[self.query_type] * len(query), *mid_t, *[self.passage_type] * len(passage), *tail_t]


def longest_first(n1: int, n2: int, room: int) -> tuple[int, int]:
    """Tokens kept of two texts of ``n1`` and ``n2`` tokens sharing ``room``, by the rule of the
    tokenizers library's ``longest_first`` truncation: the shorter keeps all it can, and when both
    are long they split the room, the longer one (the second on a tie) taking the odd token."""
    swap = n1 > n2
    short, long = (n2, n1) if swap else (n1, n2)
    long = short if short > room else max(short, room - short)
    if short + long > room:
        short = room // 2
        long = short + room % 2
    kept = (long, short) if swap else (short, long)
    return min(n1, kept[0]), min(n2, kept[1])
