"""``Scorer``: (query, passage) pairs in, scores out, for one onnxruntime session. No manifest.

Named steps, in order: encode (template + truncation) → plan length-sorted batches under a token
budget → build the feed from ``session.get_inputs()`` → run → activate. ``Reranker`` loads and
verifies a model directory and then builds one of these; the export scores candidate graphs, and the
bench times each step, through the very same path. Nothing in a Scorer changes after it is built,
so one instance is safe to share between threads (onnxruntime sessions run concurrently).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from .batching import PAD_SLACK, Batch, make_batches
from .cutting import CHARS_PER_TOKEN_CAP
from .encoding import EncodedPairs, PairEncoder
from .errors import InputError, ManifestError
from .threads import default_threads
from .windows import Windower, max_per_owner

log = logging.getLogger(__name__)

# Rows × padded length per batch: bounds activation memory. 2048 measured as fast as 4096 on 2 cores
# (MiniLM, TinyBERT; bench/) with half the peak; a model longer than this gets its max_length instead.
DEFAULT_TOKEN_BUDGET = 2048
DEFAULT_MAX_ROWS = 64
PAIRS_PER_CHUNK = 1024  # pairs encoded and length-sorted together, so memory does not grow with the input
CHARS_PER_CHUNK = 4_000_000  # and at most this much text per chunk
FEEDABLE = ("input_ids", "attention_mask", "token_type_ids")  # the arrays a Batch carries


@dataclass(frozen=True)
class Batching:
    """How pairs are grouped per run: rows × padded length ≤ ``token_budget``, at most ``max_rows``
    rows, and no row shorter than (1 - ``pad_slack``) × the batch's longest (batching.py)."""

    token_budget: int = DEFAULT_TOKEN_BUDGET
    max_rows: int = DEFAULT_MAX_ROWS
    pad_slack: float = PAD_SLACK
    rows_for: Callable[[int], int] | None = None  # rows a padded length may have (the memory budget)

    @classmethod
    def for_length(cls, max_length: int, token_budget: int | None = None, max_rows: int = DEFAULT_MAX_ROWS,
                   pad_slack: float = PAD_SLACK, rows_for: Callable[[int], int] | None = None) -> Batching:
        """The default budget, raised to ``max_length`` for a long model; a budget below it is refused."""
        if token_budget is None:
            token_budget = max(DEFAULT_TOKEN_BUDGET, max_length)
        if token_budget < max_length:
            raise InputError(f"token_budget must be at least max_length ({max_length})")
        return cls(token_budget, max_rows, pad_slack, rows_for)


def session_options(threads: int, exact_int8: bool = False, extra: Mapping[str, str] | None = None) -> ort.SessionOptions:
    """The runtime's onnxruntime settings; ``extra`` config entries win over its defaults."""
    options = ort.SessionOptions()
    entries = dict(extra or {})
    if exact_int8:  # cpu.needs_exact_int8: u8×u8 instead of saturating u8×s8 sums
        entries.setdefault("session.x64quantprecision", "1")
    # Idle intra-op threads sleep instead of spinning: a spinning pool keeps the cores from the
    # tokenizer and Python that run between batches (bench/: a 4-pair call took 15.7 ms spinning,
    # 1.6 ms not, on 2 cores) and burns an edge device's battery.
    entries.setdefault("session.intra_op.allow_spinning", "0")
    for key, value in entries.items():
        options.add_session_config_entry(key, value)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def best_first(scores: Sequence[float]) -> list[int]:
    """Indices of ``scores``, highest first; ties keep the input order."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


class Scorer:
    """Scores pairs with ``session`` and ``tokenizer``; ``activation`` is "identity" or "sigmoid"."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        session: ort.InferenceSession,
        *,
        max_length: int,
        activation: str = "identity",
        output: str = "logits",
        batching: Batching | None = None,
        windower: Windower | None = None,
        refuse_over: int | None = None,
    ) -> None:
        """``windower`` scores long passages as windows (MaxP, windows.py); ``refuse_over`` refuses a call
        holding a pair longer than that many tokens before anything runs (the memory budget, memory.py)."""
        self.encoder = PairEncoder(tokenizer, max_length)
        self.windower, self.refuse_over = windower, refuse_over
        self.session = session
        self.activation = activation
        self.output = output
        self.batching = batching or Batching.for_length(max_length)
        self.input_names = tuple(i.name for i in session.get_inputs())
        unknown = set(self.input_names) - set(FEEDABLE)
        if unknown:
            raise ManifestError(f"the graph takes inputs {sorted(unknown)} this runtime cannot feed; re-export it")

    @classmethod
    def from_files(
        cls,
        graph: bytes | str | os.PathLike[str],
        tokenizer: bytes | str | os.PathLike[str],
        *,
        max_length: int,
        activation: str = "identity",
        output: str = "logits",
        threads: int | None = None,
        exact_int8: bool = False,
        session_config: Mapping[str, str] | None = None,
        batching: Batching | None = None,
        refuse_over: int | None = None,
    ) -> Scorer:
        """A scorer from a graph and a ``tokenizer.json``, each a path or its bytes (checked by the caller,
        if at all: nothing is hashed here)."""
        options = session_options(threads or default_threads(), exact_int8, session_config)
        session = ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), sess_options=options,
                                       providers=["CPUExecutionProvider"])
        tok = (Tokenizer.from_str(tokenizer.decode("utf-8")) if isinstance(tokenizer, bytes)
               else Tokenizer.from_file(str(tokenizer)))
        return cls(tok, session, max_length=max_length, activation=activation, output=output, batching=batching,
                   refuse_over=refuse_over)

    def with_batching(self, batching: Batching) -> Scorer:
        """The same session and tokenizer, batched otherwise (a bench option, a caller's memory cap)."""
        return Scorer(self.encoder.tokenizer, self.session, max_length=self.encoder.max_length,
                      activation=self.activation, output=self.output, batching=batching,
                      windower=self.windower, refuse_over=self.refuse_over)

    # -- the steps, in order -----------------------------------------------------------------

    def encode(self, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        return self.encoder.encode(pairs)

    def batches(self, encoded: EncodedPairs) -> Iterator[Batch]:
        b = self.batching
        return make_batches(encoded, self.encoder.pad_id, b.token_budget, b.max_rows, b.pad_slack, b.rows_for)

    def feed(self, batch: Batch) -> dict[str, np.ndarray]:
        """The arrays the graph asks for, by name (each (n, L) int64)."""
        return {name: getattr(batch, name) for name in self.input_names}

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        (out,) = self.session.run([self.output], feed)
        return out.reshape(out.shape[0], -1)[:, 0]  # (n, 1) → (n,)

    def activate(self, logits: np.ndarray) -> list[float]:
        if self.activation == "sigmoid":
            return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).tolist()
        return logits.tolist()

    # -- the whole path ----------------------------------------------------------------------

    def chunks(self, pairs: Sequence[tuple[str, str]]) -> Iterator[tuple[int, Sequence[tuple[str, str]]]]:
        """Bounded chunks to encode at once: at most PAIRS_PER_CHUNK pairs and CHARS_PER_CHUNK characters
        (a pair counted up to what its encoding can keep), so 1,000 8k-token passages are not all
        tokenized at once: tokenizers' Encodings cost ~100 bytes per token."""
        cap = self.encoder.max_length * CHARS_PER_TOKEN_CAP
        start = 0
        while start < len(pairs):
            stop, chars = start, 0
            while stop < len(pairs) and stop - start < PAIRS_PER_CHUNK and (stop == start or chars < CHARS_PER_CHUNK):
                chars += min(len(pairs[stop][0]) + len(pairs[stop][1]), cap)
                stop += 1
            yield start, pairs[start:stop]
            start = stop

    def refuse_too_long(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Fail before scoring anything if a pair is longer than ``refuse_over`` tokens."""
        if self.refuse_over is None or self.refuse_over >= self.encoder.max_length:
            return
        for start, chunk in self.chunks(pairs):
            lengths = self.encode(chunk).lengths()
            over = np.flatnonzero(lengths > self.refuse_over)
            if over.size:
                raise InputError(
                    f"pair {start + int(over[0])} has {int(lengths[over[0]])} tokens, but the memory budget holds "
                    f"at most {self.refuse_over} per pair: nothing was scored; raise memory_budget or use "
                    "too_long='cut'"
                )

    def logits(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw model outputs of ``pairs`` in their order, (n,) float32, before the activation."""
        owners, count = None, len(pairs)
        if self.windower is not None:
            pairs, owners, cut = self.windower.expand(list(pairs))
            if cut:
                log.warning("%d passages longer than %d windows were cut after the last window", cut,
                            self.windower.max_windows)
        self.refuse_too_long(pairs)
        logits = np.empty(len(pairs), dtype=np.float32)
        for start, chunk in self.chunks(pairs):
            for batch in self.batches(self.encode(chunk)):
                logits[start + batch.rows] = self.run(self.feed(batch))
        if owners is not None:
            logits = max_per_owner(logits, owners, count)  # MaxP: a passage scores as its best window
        return logits

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Scores of ``pairs`` (plain floats) in their order; the caller has checked the input."""
        return self.activate(self.logits(pairs))
