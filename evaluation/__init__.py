"""Evaluation harness: Debian retrieval tasks, BM25 candidates, and rerankers scored on them.

Light to import: torch, sentence-transformers, bm25s and matplotlib load only inside the functions
that need them. Run it with ``python -m evaluation --help``.
"""

from evaluation.bm25 import BM25Config
from evaluation.candidates import Candidates, bm25_candidates
from evaluation.harness import Result, ScorerError, evaluate, run
from evaluation.scorers import Scorer, System, bi_encoder_system, bm25_system, reranker_system
from evaluation.tasks import Query, Task, build_task, debian_task

__all__ = [
    "BM25Config",
    "Candidates",
    "Query",
    "Result",
    "Scorer",
    "ScorerError",
    "System",
    "Task",
    "bi_encoder_system",
    "bm25_candidates",
    "bm25_system",
    "build_task",
    "debian_task",
    "evaluate",
    "reranker_system",
    "run",
]
