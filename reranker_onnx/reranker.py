"""``Reranker``: load a model directory, pick its variant for this CPU, score pairs like the reference.

The pipeline is short and named: validate → encode (template + truncation) → length-sorted batches
under a token budget → run → activation → caller's order. One instance is safe to share between
threads: after loading nothing in it changes, and onnxruntime sessions run concurrently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from . import cpu
from . import memory
from .batching import make_batches
from .encoding import CHARS_PER_TOKEN_CAP, PairEncoder
from .errors import InputError, RerankerError
from .manifest import FileEntry, Manifest, VerifiedFiles, load_verified, read_manifest
from .store import resolve_model
from .threads import default_threads
from .windows import DEFAULT_MAX_WINDOWS, Windower, max_per_owner

log = logging.getLogger(__name__)

# Rows × padded length per batch: bounds activation memory. 2048 measured as fast as 4096 on 2 cores
# (MiniLM, TinyBERT; bench/) with half the peak; a model longer than this gets its max_length instead.
DEFAULT_TOKEN_BUDGET = 2048
DEFAULT_MAX_ROWS = 64
PAIRS_PER_CHUNK = 1024  # pairs encoded and length-sorted together
CHARS_PER_CHUNK = 4_000_000  # and at most this much text: tokenizers' Encodings cost ~100 B per token


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what} is not valid Unicode (lone surrogate at character {exc.start}); "
            "decode your input as UTF-8 first"
        ) from None
    return value


def _check_passages(passages: object) -> list[str]:
    if isinstance(passages, (str, bytes)):
        raise InputError("passages must be a list of strings, not a single string; wrap it in a list")
    if not isinstance(passages, Sequence):
        raise InputError(f"passages must be a list of strings, got {type(passages).__name__}")
    return [_check_text(p, f"passage {i}") for i, p in enumerate(passages)]


class Reranker:
    """A cross-encoder reranker served by onnxruntime.

    ``model`` is a model directory, a name in the local store, or None for the bundled default.
    ``variant`` forces a graph ("fp32", "avx2", "avx512_vnni", "arm64"); by default the one for this
    CPU is chosen (``RERANKER_ONNX_VARIANT`` overrides). ``max_length`` may lower the model's limit.
    ``token_budget`` (rows × padded length per batch) bounds memory: 2048 tokens by default, or the
    model's max_length if larger. ``session_config`` adds onnxruntime session config entries (experts
    only); idle intra-op threads sleep unless it sets ``session.intra_op.allow_spinning``.

    ``memory_budget`` (bytes or "800M") caps the activation memory of a batch, estimated from the model's
    shape (reranker_onnx/memory.py); by default half of what the process may still use (MemAvailable,
    cgroup, RLIMIT_AS). A pair longer than the budget holds alone is cut to fit (``too_long="cut"``, with a
    warning at load) or the call is refused before anything runs (``too_long="refuse"``).
    ``windows=True`` scores a passage longer than ``window`` tokens (default max_length) as windows whose
    starts are ``stride`` passage tokens apart (default half a window), at most ``max_windows``; the score
    is the best window's (MaxP). A passage that fits is scored exactly as without windows.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        variant: str | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        token_budget: int | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        session_config: dict[str, str] | None = None,
        memory_budget: int | str | None = None,
        too_long: str = "cut",
        windows: bool = False,
        window: int | None = None,
        stride: int | None = None,
        max_windows: int = DEFAULT_MAX_WINDOWS,
    ) -> None:
        self.model_dir = resolve_model(model)
        self.manifest: Manifest = read_manifest(self.model_dir)
        self.cpu = cpu.detect()
        choice = cpu.choose_variant(self.cpu, set(self.manifest.variants), cpu.requested_variant(variant))
        self.variant, self.variant_reason = choice.variant, choice.reason
        if max_length is not None and not 2 <= max_length <= self.manifest.max_length:
            raise InputError(f"max_length must be between 2 and {self.manifest.max_length} for this model")
        self.max_length = max_length or self.manifest.max_length
        if threads is not None and threads < 1:
            raise InputError("threads must be at least 1")
        self.threads = threads or default_threads()
        if token_budget is None:
            token_budget = max(DEFAULT_TOKEN_BUDGET, self.max_length)
        if token_budget < self.max_length:
            raise InputError(f"token_budget must be at least max_length ({self.max_length})")
        self.token_budget, self.max_rows = token_budget, max_rows

        cache = VerifiedFiles()
        tokenizer_source = load_verified(self.model_dir, self.manifest.tokenizer, self._entry(self.manifest.tokenizer), cache)
        tokenizer = (
            Tokenizer.from_file(str(tokenizer_source))
            if isinstance(tokenizer_source, Path)
            else Tokenizer.from_str(tokenizer_source.decode("utf-8"))
        )
        self.encoder = PairEncoder(tokenizer, self.max_length)
        graph_file = self.manifest.variants[self.variant].file
        graph = load_verified(self.model_dir, graph_file, self._entry(graph_file), cache)
        self.session = ort.InferenceSession(
            str(graph) if isinstance(graph, Path) else graph,
            sess_options=self._session_options(session_config or {}),
            providers=["CPUExecutionProvider"],
        )
        self._plan_memory(memory_budget, too_long)
        self.windower = self._windower(tokenizer, windows, window, stride, max_windows)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        unknown = set(self.input_names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise RerankerError(f"{graph_file} takes inputs {sorted(unknown)} this runtime cannot feed; re-export it")
        log.info("loaded %s (%s): %s", self.manifest.name, self.variant, self.variant_reason)

    def _plan_memory(self, memory_budget: int | str | None, too_long: str) -> None:
        """Size batches to the memory budget; a model too long for it is cut or refused (docs/long-context.md)."""
        if too_long not in ("cut", "refuse"):
            raise InputError(f"too_long must be 'cut' or 'refuse', got {too_long!r}")
        self.too_long = too_long
        if isinstance(memory_budget, str):
            try:
                memory_budget = memory.parse_size(memory_budget)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if memory_budget is not None and memory_budget < 1:
            raise InputError("memory_budget must be a positive number of bytes")
        budget = memory_budget if memory_budget is not None else memory.default_budget()
        self.memory_plan = (
            None if budget is None
            else memory.MemoryPlan.build(memory.ModelShape.from_manifest(self.manifest.export), budget, self.max_length)
        )
        if self.memory_plan is not None and self.memory_plan.longest < self.max_length and too_long == "cut":
            log.warning(
                "memory budget %s fits pairs of at most %d tokens: longer pairs are cut to that (max_length was %d)",
                memory.describe(budget), self.memory_plan.longest, self.max_length,
            )
            self.max_length = self.memory_plan.longest
            self.encoder = PairEncoder(self.encoder.tokenizer, self.max_length)

    def _windower(self, tokenizer: Tokenizer, on: bool, window: int | None, stride: int | None,
                  max_windows: int) -> Windower | None:
        if not on:
            if window is not None or stride is not None:
                raise InputError("window and stride apply only with windows=True (--windows)")
            return None
        window = window or self.max_length
        if not 2 <= window <= self.max_length:
            raise InputError(f"window must be between 2 and max_length ({self.max_length}) tokens")
        if stride is not None and stride < 1:
            raise InputError("stride must be at least 1 token")
        if max_windows < 1:
            raise InputError("max_windows must be at least 1")
        if window < self.max_length:  # every window pair, and a passage that fits, is scored at this length
            self.max_length = window
            self.encoder = PairEncoder(self.encoder.tokenizer, window)
        processor = tokenizer.post_processor
        specials = processor.num_special_tokens_to_add(True) if processor is not None else 0
        share = (window - specials) // 2
        return Windower(tokenizer.to_str(), window, stride, specials, share, max_windows, CHARS_PER_TOKEN_CAP)

    def _entry(self, name: str) -> FileEntry:
        return self.manifest.files[name]

    def _needs_exact_int8(self) -> bool:
        """Full-range int8 weights on x86 without VNNI would saturate u8×s8 sums: use exact u8×u8."""
        recipe = self.manifest.variants[self.variant].quantization
        full_range_s8 = recipe.get("weight_type") == "qint8" and not recipe.get("reduce_range", False)
        no_vnni = self.cpu.arch == "x86_64" and not {"avx512_vnni", "avx_vnni"} & self.cpu.features
        return full_range_s8 and no_vnni

    def _session_options(self, extra: dict[str, str]) -> ort.SessionOptions:
        options = ort.SessionOptions()
        if self._needs_exact_int8() and "session.x64quantprecision" not in extra:
            options.add_session_config_entry("session.x64quantprecision", "1")
        # Idle intra-op threads sleep instead of spinning: a spinning pool keeps the cores from the
        # tokenizer and Python that run between batches (bench/: a 4-pair call took 15.7 ms spinning,
        # 1.6 ms not, on 2 cores) and burns an edge device's battery.
        extra = {"session.intra_op.allow_spinning": "0", **extra}
        for key, value in extra.items():
            options.add_session_config_entry(key, value)
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return options

    # -- scoring -----------------------------------------------------------------------------

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Scores of (query, passage) pairs, in the caller's order (shaped like ``CrossEncoder.predict``)."""
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise InputError("pairs must be a list of (query, passage) tuples")
        checked = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InputError(f"pair {i} must be a (query, passage) tuple")
            checked.append((_check_text(pair[0], f"query of pair {i}"), _check_text(pair[1], f"passage of pair {i}")))
        return self._score_pairs(checked)

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Scores of one query against passages, in the passages' order."""
        query = _check_text(query, "query")
        if not query.strip():
            raise InputError("the query is empty: give a non-empty query")
        texts = _check_passages(passages)
        if self.encoder.query_tokens(query) > self.encoder.query_share:
            log.warning(
                "the query has more than %d tokens and is cut to share max_length=%d with each passage",
                self.encoder.query_share, self.max_length,
            )
        return self._score_pairs([(query, p) for p in texts])

    def rank(
        self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False
    ) -> list[dict[str, Any]]:
        """Documents ranked by score, best first: dicts with ``corpus_id``, ``score`` (and ``text``)."""
        if top_k is not None and top_k < 1:
            raise InputError("top_k must be at least 1")
        scores = self.score(query, documents)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]
        return [
            {"corpus_id": i, "score": scores[i], **({"text": documents[i]} if return_documents else {})}
            for i in order
        ]

    def _chunks(self, pairs: list[tuple[str, str]]) -> Iterator[tuple[int, list[tuple[str, str]]]]:
        """Bounded chunks to encode at once: at most PAIRS_PER_CHUNK pairs and CHARS_PER_CHUNK characters
        (each pair counted up to what its encoding can keep), so 1,000 8k-token passages are not all
        tokenized at once."""
        cap = self.max_length * CHARS_PER_TOKEN_CAP
        start = 0
        while start < len(pairs):
            stop, chars = start, 0
            while stop < len(pairs) and stop - start < PAIRS_PER_CHUNK and (stop == start or chars < CHARS_PER_CHUNK):
                chars += min(len(pairs[stop][0]) + len(pairs[stop][1]), cap)
                stop += 1
            yield start, pairs[start:stop]
            start = stop

    def _refuse_too_long(self, pairs: list[tuple[str, str]]) -> None:
        """With too_long='refuse', fail before scoring anything if a pair needs more than the budget holds."""
        plan = self.memory_plan
        if plan is None or self.too_long != "refuse" or plan.longest >= self.max_length:
            return
        for start, chunk in self._chunks(pairs):
            lengths = self.encoder.encode(chunk).lengths()
            over = np.flatnonzero(lengths > plan.longest)
            if over.size:
                raise InputError(
                    f"pair {start + int(over[0])} has {int(lengths[over[0]])} tokens, but the memory budget "
                    f"{memory.describe(plan.budget)} holds at most {plan.longest} per pair: nothing was scored; "
                    "raise memory_budget or use too_long='cut'"
                )

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        owners = None
        if self.windower is not None:
            count = len(pairs)
            pairs, owners, cut = self.windower.expand(pairs)
            if cut:
                log.warning("%d passages longer than %d windows were cut after the last window", cut,
                            self.windower.max_windows)
        self._refuse_too_long(pairs)
        logits = np.empty(len(pairs), dtype=np.float32)
        rows_for = self.memory_plan.rows_for if self.memory_plan is not None else None
        # Encode a bounded chunk at a time, so memory does not grow with the number of pairs.
        for start, chunk in self._chunks(pairs):
            encoded = self.encoder.encode(chunk)
            for batch in make_batches(encoded, self.encoder.pad_id, self.token_budget, self.max_rows, rows_for):
                feed = {
                    "input_ids": batch.input_ids,
                    "attention_mask": batch.attention_mask,
                    "token_type_ids": batch.token_type_ids,
                }
                (out,) = self.session.run([self.manifest.output], {k: feed[k] for k in self.input_names})
                logits[start + batch.rows] = out.reshape(len(batch.rows), -1)[:, 0]  # (n, 1) → (n,)
        if owners is not None:
            logits = max_per_owner(logits, owners, count)  # MaxP: the passage scores as its best window
        if self.manifest.activation == "sigmoid":
            return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).tolist()
        return logits.tolist()

    def __repr__(self) -> str:
        return f"Reranker({str(self.model_dir)!r}, variant={self.variant!r}, threads={self.threads})"

