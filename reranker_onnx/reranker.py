"""``Reranker``: load a model directory, pick its variant for this CPU, score pairs like the reference.

The pipeline is short and named: validate → encode (template + truncation) → length-sorted batches
under a token budget → run → activation → caller's order. One instance is safe to share between
threads: after loading nothing in it changes, and onnxruntime sessions run concurrently.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from . import cpu
from .batching import make_batches
from .encoding import PairEncoder
from .errors import InputError, RerankerError
from .manifest import FileEntry, Manifest, VerifiedFiles, load_verified, read_manifest
from .store import resolve_model
from .threads import default_threads

log = logging.getLogger(__name__)

# Rows × padded length per batch: bounds activation memory. 2048 measured as fast as 4096 on 2 cores
# (MiniLM, TinyBERT; bench/) with half the peak; a model longer than this gets its max_length instead.
DEFAULT_TOKEN_BUDGET = 2048
DEFAULT_MAX_ROWS = 64
PAIRS_PER_CHUNK = 1024  # pairs encoded and length-sorted together


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
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        unknown = set(self.input_names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise RerankerError(f"{graph_file} takes inputs {sorted(unknown)} this runtime cannot feed; re-export it")
        log.info("loaded %s (%s): %s", self.manifest.name, self.variant, self.variant_reason)

    def _entry(self, name: str) -> FileEntry:
        return self.manifest.files[name]

    def _needs_exact_int8(self) -> bool:
        """Full-range int8 weights on x86 without VNNI would saturate u8×s8 sums: use exact u8×u8."""
        recipe = self.manifest.variants[self.variant].quantization
        full_range_s8 = recipe.get("weight_type") in ("qint8", "mixed") and not recipe.get("reduce_range", False)
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

    def _score_pairs(self, pairs: list[tuple[str, str]]) -> list[float]:
        logits = np.empty(len(pairs), dtype=np.float32)
        # Encode a bounded chunk at a time, so memory does not grow with the number of pairs.
        for start in range(0, len(pairs), PAIRS_PER_CHUNK):
            chunk = pairs[start : start + PAIRS_PER_CHUNK]
            encoded = self.encoder.encode(chunk)
            for batch in make_batches(encoded, self.encoder.pad_id, self.token_budget, self.max_rows):
                feed = {
                    "input_ids": batch.input_ids,
                    "attention_mask": batch.attention_mask,
                    "token_type_ids": batch.token_type_ids,
                }
                (out,) = self.session.run([self.manifest.output], {k: feed[k] for k in self.input_names})
                logits[start + batch.rows] = out.reshape(len(batch.rows), -1)[:, 0]  # (n, 1) → (n,)
        if self.manifest.activation == "sigmoid":
            return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).tolist()
        return logits.tolist()

    def __repr__(self) -> str:
        return f"Reranker({str(self.model_dir)!r}, variant={self.variant!r}, threads={self.threads})"

