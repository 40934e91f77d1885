"""Turn (query, passage) pairs into token ids exactly as the reference cross-encoder does.

The reference (sentence-transformers ``CrossEncoder.predict`` on a fast tokenizer) encodes the pair
with the tokenizer's own template and truncates ``longest_first`` at ``max_length``. With a query no
longer than its share (half of what the template leaves), that removes passage tokens only; a longer
query is cut too, to its share, as the reference does, and we warn, since the ranking then sees only
part of the question. Using the same Rust truncation keeps the ids identical, not merely similar.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Encoding, Tokenizer

log = logging.getLogger(__name__)

# A passage longer than this many characters per kept token is cut before tokenizing, so a 5 MB
# passage costs what a long one does. The cut is used only when it still yields this many tokens
# beyond max_length: pre-tokenization is local, so the kept tokens are then the full text's.
CHARS_PER_TOKEN_CAP = 64
SPARE_TOKENS = 64


@dataclass(frozen=True)
class EncodedPairs:
    """Token ids of pairs, unpadded; one row per pair."""

    ids: list[list[int]]
    type_ids: list[list[int]]

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(row) for row in self.ids), dtype=np.int64, count=len(self.ids))


class PairEncoder:
    """Encodes pairs with the model's tokenizer, its pair template and longest-first truncation."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        tokenizer.no_padding()  # padding is per batch, after sorting by length
        tokenizer.enable_truncation(max_length, strategy="longest_first")
        self.tokenizer = tokenizer
        self.max_length = max_length
        processor = tokenizer.post_processor
        specials = processor.num_special_tokens_to_add(True) if processor is not None else 0
        self.query_share = (max_length - specials) // 2
        self.pad_id = self._pad_id()

    def _pad_id(self) -> int:
        padding = self.tokenizer.padding
        if padding and "pad_id" in padding:
            return int(padding["pad_id"])
        for token in ("<pad>", "[PAD]", "<|padding|>"):
            token_id = self.tokenizer.token_to_id(token)
            if token_id is not None:
                return token_id
        return 0  # the attention mask hides padding, so any id in range is correct

    def _shorten(self, passage: str) -> str:
        cap = self.max_length * CHARS_PER_TOKEN_CAP
        if len(passage) <= cap:
            return passage
        head = passage[:cap]
        tokens = self.tokenizer.encode(head, add_special_tokens=False)
        # Truncation is on, so ask for the untruncated length through overflowing pieces.
        total = len(tokens.ids) + sum(len(o.ids) for o in tokens.overflowing)
        return head if total >= self.max_length + SPARE_TOKENS else passage

    def query_tokens(self, query: str) -> int:
        encoding = self.tokenizer.encode(query, add_special_tokens=False)
        return len(encoding.ids) + sum(len(o.ids) for o in encoding.overflowing)

    def encode(self, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        batch = [(q, self._shorten(p)) for q, p in pairs]
        encodings: list[Encoding] = self.tokenizer.encode_batch(batch)
        return EncodedPairs(ids=[e.ids for e in encodings], type_ids=[e.type_ids for e in encodings])
