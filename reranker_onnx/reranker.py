"""``Reranker``: load and verify a model directory, pick its variant for this CPU, score like the reference.

Loading is: resolve the directory, read its manifest, choose the variant, check every file it uses
against its sha256, then build a :class:`~reranker_onnx.scoring.Scorer` (encode → batches → feed →
run → activation). Scoring is: check the input, score, return plain floats in the caller's order.
One instance is safe to share between threads: after loading nothing in it changes, and its state
is private; ``info`` describes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from . import cpu, memory
from .cutting import CHARS_PER_TOKEN_CAP
from .errors import InputError, ManifestError, RerankerError
from .inputs import is_blank
from .manifest import Manifest, VerifiedFiles, load_verified, read_manifest
from .scoring import DEFAULT_MAX_ROWS, Batching, Scorer, best_first
from .store import resolve_model
from .threads import default_threads, resolve_threads
from .windows import DEFAULT_MAX_WINDOWS, Windower

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What a model directory is and what would run here: the answer of :func:`describe` and ``Reranker.info``."""

    name: str
    family: str
    model_dir: Path
    variant: str
    variant_reason: str  # one sentence, as ``rerank-onnx info`` shows it
    variants: tuple[str, ...]  # what the directory ships
    graph: str  # the chosen variant's file
    max_length: int
    activation: str
    threads: int
    exact_int8: bool  # cpu.needs_exact_int8: the session uses the u8×u8 kernels
    manifest: Manifest = field(repr=False, compare=False)
    windows: bool = False  # long passages scored as windows, best window wins (Reranker's windows=)


def describe(model: str | os.PathLike[str] | None = None, variant: str | None = None,
             host: cpu.CpuFeatures | None = None) -> ModelInfo:
    """Resolve ``model`` (as ``Reranker`` does), read its manifest and choose its variant for ``host``
    (this CPU by default), without hashing or loading anything."""
    directory = resolve_model(model)
    manifest = read_manifest(directory)
    host = host or cpu.detect()
    choice = cpu.choose_variant(host, set(manifest.variants), cpu.requested_variant(variant))
    chosen = manifest.variants[choice.variant]
    return ModelInfo(
        name=manifest.name, family=manifest.family, model_dir=directory, variant=choice.variant,
        variant_reason=choice.reason, variants=tuple(sorted(manifest.variants)), graph=chosen.file,
        max_length=manifest.max_length, activation=manifest.activation, threads=default_threads(),
        exact_int8=cpu.needs_exact_int8(host, chosen.quantization), manifest=manifest,
    )


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _memory_plan(manifest: Manifest, budget: int | str | None, too_long: str,
                 max_length: int) -> memory.MemoryPlan | None:
    """The memory budget applied to this model (None where the free memory cannot be read)."""
    if too_long not in ("cut", "refuse"):
        raise InputError(f"too_long must be 'cut' or 'refuse', got {too_long!r}")
    if isinstance(budget, str):
        try:
            budget = memory.parse_size(budget)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if budget is not None and budget < 1:
        raise InputError("memory_budget must be a positive number of bytes")
    budget = budget if budget is not None else memory.default_budget()
    if budget is None:
        return None
    return memory.MemoryPlan.build(memory.ModelShape.from_manifest(manifest.export), budget, max_length)


def _windower(tokenizer: Tokenizer, max_length: int, on: bool, window: int | None, stride: int | None,
              max_windows: int) -> Windower | None:
    if not on:
        if window is not None or stride is not None:
            raise InputError("window and stride apply only with windows=True (--windows)")
        return None
    window = window or max_length
    if not 2 <= window <= max_length:
        raise InputError(f"window must be between 2 and max_length ({max_length}) tokens")
    if stride is not None and stride < 1:
        raise InputError("stride must be at least 1 token")
    if max_windows < 1:
        raise InputError("max_windows must be at least 1")
    processor = tokenizer.post_processor
    specials = processor.num_special_tokens_to_add(True) if processor is not None else 0
    return Windower(tokenizer.to_str(), window, stride, specials, (window - specials) // 2, max_windows,
                    CHARS_PER_TOKEN_CAP)


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
        info = describe(model, variant)
        manifest = info.manifest
        if max_length is not None and not 2 <= max_length <= manifest.max_length:
            raise InputError(f"max_length must be between 2 and {manifest.max_length} for this model")
        self._info = info = replace(info, max_length=max_length or info.max_length, threads=resolve_threads(threads))
        plan = _memory_plan(manifest, memory_budget, too_long, info.max_length)
        if plan is not None and plan.longest < info.max_length and too_long == "cut":
            log.warning("memory budget %s fits pairs of at most %d tokens: longer pairs are cut to that "
                        "(max_length was %d)", memory.describe(plan.budget), plan.longest, info.max_length)
            self._info = info = replace(info, max_length=plan.longest)
        if windows and window is not None and 2 <= window < info.max_length:
            self._info = info = replace(info, max_length=window)  # window pairs, and passages that fit, at this length
        batching = Batching.for_length(info.max_length, token_budget, max_rows,
                                       rows_for=plan.rows_for if plan is not None else None)

        cache = VerifiedFiles()  # each file is hash-checked, or vouched for by the cache, before it is used
        tokenizer = load_verified(info.model_dir, manifest.tokenizer, manifest.files[manifest.tokenizer], cache)
        graph = load_verified(info.model_dir, info.graph, manifest.files[info.graph], cache)
        try:
            self._scorer = Scorer.from_files(
                graph, tokenizer, max_length=info.max_length, activation=manifest.activation, output=manifest.output,
                threads=info.threads, exact_int8=info.exact_int8, session_config=session_config, batching=batching,
                refuse_over=plan.longest if plan is not None and too_long == "refuse" else None)
        except RerankerError:
            raise
        except Exception as exc:  # onnxruntime's and tokenizers' load errors derive from Exception directly
            files = f"{info.graph} or {manifest.tokenizer}"
            raise ManifestError(f"{files} matches its hash but cannot be loaded ({_first_line(exc)}); "
                                "re-export the model") from None
        if info.max_length < self._scorer.encoder.min_length:  # else pairs would hold the template and no text
            raise InputError(f"max_length must be between {self._scorer.encoder.min_length} and "
                             f"{manifest.max_length} for this model")
        self._scorer.windower = _windower(self._scorer.encoder.tokenizer, info.max_length, windows, window, stride,
                                          max_windows)
        self._info = replace(info, windows=windows)
        if set(self._scorer.input_names) != set(manifest.inputs):
            raise ManifestError(f"{info.graph} takes inputs {list(self._scorer.input_names)}, the manifest says "
                                f"{list(manifest.inputs)}; re-export the model")
        log.info("loaded %s (%s): %s", info.name, info.variant, info.variant_reason)

    @property
    def info(self) -> ModelInfo:
        """What was loaded and why (read-only)."""
        return self._info

    @property
    def scorer(self) -> Scorer:
        """The scoring steps under this model, for callers that time or drive them (bench, batch jobs)."""
        return self._scorer

    # -- scoring -----------------------------------------------------------------------------

    def predict(self, pairs: Sequence[tuple[str, str]], *, raw: bool = False) -> list[float]:
        """Scores of (query, passage) pairs, in the caller's order (shaped like ``CrossEncoder.predict``);
        ``raw=True`` gives the model's logits, before the manifest's activation (TEI's ``raw_scores``)."""
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise InputError("pairs must be a list of (query, passage) tuples")
        checked = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InputError(f"pair {i} must be a (query, passage) tuple")
            checked.append((_check_text(pair[0], f"query of pair {i}"), _check_text(pair[1], f"passage of pair {i}")))
        seen: set[str] = set()
        for i, (query, _) in enumerate(checked):
            if query not in seen:
                seen.add(self._check_query(query, f"the query of pair {i}"))
        return self._scorer.logits(checked).tolist() if raw else self._scorer.scores(checked)

    def score(self, query: str, passages: Sequence[str], *, raw: bool = False) -> list[float]:
        """Scores of one query against passages, in the passages' order (``raw``: as in ``predict``)."""
        pairs = self.pairs(query, passages)
        return self._scorer.logits(pairs).tolist() if raw else self._scorer.scores(pairs)

    def pairs(self, query: str, passages: Sequence[str]) -> list[tuple[str, str]]:
        """The checks ``score`` and ``rank`` run on their input, and the pairs they then score."""
        query = self._check_query(_check_text(query, "query"), "the query")
        if isinstance(passages, (str, bytes)):
            raise InputError("passages must be a list of strings, not a single string; wrap it in a list")
        if not isinstance(passages, Sequence):
            raise InputError(f"passages must be a list of strings, got {type(passages).__name__}")
        return [(query, _check_text(p, f"passage {i}")) for i, p in enumerate(passages)]

    def _check_query(self, query: str, what: str) -> str:
        """One rule for score, rank and predict: a query with nothing visible, or no tokens for this
        model (only NULs, zero-width or blank characters), is refused. A long one is cut once per
        1,024 pairs when they are encoded (encoding.py), so it costs what a 500-token one does."""
        encoder = self._scorer.encoder
        cut = encoder.cut(query)
        if is_blank(query) or cut.tokens == 0:
            raise InputError(f"{what} is empty (nothing visible, or no tokens for this model): give a non-empty query")
        if not cut.exact and cut.tokens < encoder.text_tokens:
            log.warning("%s holds only %d tokens in its first %d characters; it is scored on those",
                        what, cut.tokens, len(cut.text))
        elif cut.tokens > encoder.query_share:
            log.warning(
                "%s has more than %d tokens and is cut to share max_length=%d with each passage",
                what, encoder.query_share, encoder.max_length,
            )
        return query

    def rank(
        self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False
    ) -> list[dict[str, Any]]:
        """Documents ranked by score, best first: dicts with ``corpus_id``, ``score`` (and ``text``)."""
        if top_k is not None and top_k < 1:
            raise InputError("top_k must be at least 1")
        scores = self.score(query, documents)
        order = best_first(scores)[:top_k]
        return [
            {"corpus_id": i, "score": scores[i], **({"text": documents[i]} if return_documents else {})}
            for i in order
        ]

    def __repr__(self) -> str:
        return f"Reranker({str(self._info.model_dir)!r}, variant={self._info.variant!r}, threads={self._info.threads})"

