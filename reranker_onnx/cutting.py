"""Where a text may be cut so that its tokens begin with the whole text's, reading a bounded prefix.

A pair keeps at most ``max_tokens`` tokens of a text, so the text is cut before it is tokenized: no
more than :func:`char_cap` characters are ever read, whatever the input (memory is bounded by the
token budget). A cut is ``exact`` when the tokens of the prefix begin with the whole text's first
``max_tokens``; the scores are then those of the uncut text. Tokenizers normalize, split the text into
words (pre-tokenize) and tokenize each word alone, so a cut is exact at:

1. a space after a non-blank character: every family's pre-tokenizer ends a word there;
2. any other end of a word the tokenizer itself reports (a CJK character or a punctuation mark in
   BERT), where normalizing the two sides apart changes nothing near the cut;
3. inside one long word of a SentencePiece Unigram model (a run of CJK text, one huge token): the
   best segmentation of a prefix, up to any point it passes through, is the whole text's up to that
   point (Viterbi), so once the prefixes ending at each of the next ``L`` positions (``L``: the longest
   piece) agree on the first tokens, every longer text, the whole one included, has them too;
4. at the read limit inside a WordPiece word longer than ``max_input_chars_per_word``: the word is
   one unknown token, however much longer it goes on.

What stays inexact: fewer than ``max_tokens`` tokens in the characters read (megabytes of blanks,
a 20 MB word followed by more words; callers warn, the model sees those tokens), a WordPiece word cut
by the read limit before its 100th (normalized) character, and the rare word no rule settles (one whose
characters NFKC expands, in a Unigram model). ``tests/test_fuzz.py`` checks every exact cut against
the whole text on every family, and that texts without spaces (CJK runs, one huge token) cut exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from tokenizers import Encoding, Tokenizer, models

# Real text has 2-6 characters per token; the tokenizer's memory is about 60 bytes per character.
CHARS_PER_TOKEN_CAP = 64
SPACE = " "  # every family's pre-tokenizer splits here (whitespace, Metaspace, byte-level)
REACH = 16  # characters on either side of a cut that a normalizer may join or reorder (NFKC, charsmap rules)
WORD_ENDS_TRIED = 4  # of rule 2, after the kept tokens


# ... and at least this many, past the 100 characters beyond which WordPiece calls a word unknown.
MIN_CHARS = 128


def char_cap(max_tokens: int) -> int:
    """The most characters of one text that are tokenized when at most ``max_tokens`` can be kept."""
    return max(max_tokens * CHARS_PER_TOKEN_CAP, MIN_CHARS)


@dataclass(frozen=True)
class Cut:
    text: str  # a prefix of the input
    tokens: int  # tokens (no special tokens) of the whole input, or of its first char_cap characters if longer
    exact: bool  # ``text`` tokenizes to the input's first ``max_tokens`` tokens (or to all of them)


def cut_to_tokens(tokenizer: Tokenizer, text: str, max_tokens: int) -> Cut:
    """A short prefix of ``text`` whose tokens begin with the whole text's first ``max_tokens`` (see the
    module's rules); ``tokenizer`` must not truncate. Every cut is also checked against the tokens it
    must keep."""
    cap = char_cap(max_tokens)
    whole = len(text) <= cap
    if whole:
        head = text
    else:
        k = _word_end(text, 0, cap + 1, last=True)
        head = text[: k if k > 0 else cap]
    exact_head = whole or _word_end(text, len(head), len(head) + 1, last=False) == len(head)
    encoding = tokenizer.encode(head, add_special_tokens=False)  # at most 64 × max_tokens characters
    n = len(encoding.ids)
    if n <= max_tokens:
        return Cut(head, n, exact=whole or n == max_tokens and _unknown_to_the_end(tokenizer, head, encoding))
    keep = encoding.ids[:max_tokens]
    k = _word_end(head, encoding.offsets[max_tokens - 1][1], len(head), last=False)
    if k > 0 and _keeps(tokenizer, head[:k], keep):
        return Cut(head[:k], n, exact=exact_head)
    for k in (*_word_boundaries(tokenizer, head, encoding, max_tokens), _settled(tokenizer, head, encoding, max_tokens)):
        if k is not None and _keeps(tokenizer, head[:k], keep):
            return Cut(head[:k], n, exact=True)
    return Cut(head, n, exact=exact_head)


def _keeps(tokenizer: Tokenizer, text: str, keep: list[int]) -> bool:
    return tokenizer.encode(text, add_special_tokens=False).ids[: len(keep)] == keep


def _word_end(text: str, start: int, stop: int, *, last: bool) -> int:
    """The first (or ``last``) index k in [start, stop) where a space follows a non-blank; -1 if none."""
    k = text.rfind(SPACE, start, stop) if last else text.find(SPACE, start, stop)
    while k >= 0 and (k == 0 or text[k - 1].isspace()):
        k = text.rfind(SPACE, start, k) if last else text.find(SPACE, k + 1, stop)
    return k


def _local(tokenizer: Tokenizer, text: str, k: int) -> bool:
    """Normalizing ``text`` apart at ``k`` gives what normalizing it whole gives, near ``k``."""
    normalizer = tokenizer.normalizer
    if normalizer is None:
        return True
    a, b = text[max(0, k - REACH) : k], text[k : k + REACH]
    return normalizer.normalize_str(a) + normalizer.normalize_str(b) == normalizer.normalize_str(a + b)


def _word_boundaries(tokenizer: Tokenizer, head: str, encoding: Encoding, max_tokens: int) -> list[int]:
    """Rule 2: where the tokenizer's next words begin after the kept tokens, away from the read limit
    (a pre-tokenizer looks a few characters ahead) and where normalizing is local."""
    words, found = encoding.word_ids, []
    for i in range(max_tokens, len(words)):
        if words[i] != words[i - 1]:
            k = encoding.offsets[i][0]
            if k + REACH <= len(head) and _local(tokenizer, head, k):
                found.append(k)
            if len(found) == WORD_ENDS_TRIED:
                break
    return found


@functools.lru_cache(maxsize=8)
def _longest_piece(tokenizer: Tokenizer) -> int:
    return max(map(len, tokenizer.get_vocab()))


def _settled(tokenizer: Tokenizer, head: str, encoding: Encoding, max_tokens: int) -> int | None:
    """Rule 3 (Unigram): a cut ``k`` such that the prefixes ending at k and at the next ``L`` positions
    of the normalized text all hold ``head``'s first ``max_tokens`` tokens and start the next one where
    it does (so their segmentations pass through the end of the kept tokens, and an unknown kept last
    is not fused with what follows). Positions are counted where normalizing is local, each one
    normalized character after the last; a character that normalizes to several ends the search."""
    if not isinstance(tokenizer.model, models.Unigram):
        return None
    span, normalizer = _longest_piece(tokenizer), tokenizer.normalizer
    start = encoding.offsets[max_tokens - 1][1] + span
    want = (encoding.ids[:max_tokens], encoding.offsets[:max_tokens], encoding.offsets[max_tokens][0])
    positions, last = [], start
    for j in range(start, len(head) - REACH):
        if not _local(tokenizer, head, j):
            continue
        grew = len(normalizer.normalize_str(head[last:j])) if normalizer is not None and positions else 1
        if grew > 1:
            return None  # a character that expands: normalized positions would be skipped
        if grew == 1:
            prefix = tokenizer.encode(head[:j], add_special_tokens=False)
            if len(prefix.ids) <= max_tokens or (
                prefix.ids[:max_tokens], prefix.offsets[:max_tokens], prefix.offsets[max_tokens][0]) != want:
                return None
            positions.append(j)
            if len(positions) > span:
                return positions[0]
        last = j
    return None


def _unknown_to_the_end(tokenizer: Tokenizer, head: str, encoding: Encoding) -> bool:
    """Rule 4 (WordPiece): ``head`` ends inside a word already too long to be anything but the unknown
    token, which the whole text's word (longer still) is too."""
    model = tokenizer.model
    if not isinstance(model, models.WordPiece) or encoding.tokens[-1] != model.unk_token or encoding.offsets[-1][1] != len(head):
        return False
    start = encoding.offsets[-1][0]
    if len(encoding.word_ids) > 1 and encoding.word_ids[-2] == encoding.word_ids[-1]:
        return False  # the word has other tokens: it is not one unknown word
    normalizer = tokenizer.normalizer
    word = head[start:] if normalizer is None else normalizer.normalize_str(head[start:])
    return len(word.strip()) > model.max_input_chars_per_word and _local(tokenizer, head, start)


def _running_counts(tokenizer: Tokenizer, text: str, chunk: int) -> Iterator[int]:
    """Running token counts of ``text``, read ``chunk`` characters at a time and cut at spaces after
    non-blanks (rule 1), so the counts add up; returns True at the end of the text, False at a chunk
    without such a space (the count beyond it is unknown)."""
    done = start = 0
    while start < len(text):
        stop = start + chunk
        if stop < len(text):
            stop = _word_end(text, start + 1, stop + 1, last=True)
            if stop < 0:
                return False
        done += len(tokenizer.encode(text[start:stop], add_special_tokens=False).ids)
        yield done
        start = stop
    return True


def longer(tokenizer: Tokenizer, a: str, b: str, chunk: int) -> int | None:
    """1 if ``a`` has more tokens than ``b``, -1 if fewer, 0 if as many; None if a word longer than
    ``chunk`` stops the count. Both are counted in step, ``chunk`` characters at a time, until the
    shorter one ends: the memory of one chunk, the time of the shorter text."""
    counts, n, ended = [_running_counts(tokenizer, a, chunk), _running_counts(tokenizer, b, chunk)], [0, 0], [False, False]
    while not (ended[0] and ended[1]):
        i = 0 if ended[1] or (not ended[0] and n[0] <= n[1]) else 1  # the side behind, while it runs
        if ended[1 - i] and n[i] > n[1 - i]:
            break  # the other side ended shorter: this one is longer, whatever follows
        try:
            n[i] = next(counts[i])
        except StopIteration as stop:
            if not stop.value:
                return None
            ended[i] = True
    return (n[0] > n[1]) - (n[0] < n[1])
