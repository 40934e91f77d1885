"""Batch reranking of big files, on one machine or on Ray: a room on top of the runtime's public API.

Modules, one job each:

- ``plan``: pure planners: input cut into shards by bytes and rows; actors × threads within Ray's CPUs.
- ``rows``: one record checked (nested or flat) into a row or a bad row with its reason; scores written back.
- ``sources``: JSON Lines and Parquet (pyarrow) files, scanned for row sizes, read one shard at a time.
- ``work``: one shard scored in one ``Reranker.predict`` call, the same on every engine.
- ``job``: the output's shards, renamed into place, resumed after a kill, assembled in order.
- ``run``: ``run_batch`` ties them together and counts bad rows against ``max_errors``.
- ``ray_engine``: the actor pool on Ray Data, model shipping with sha256 checks, ``rerank_dataset``.
- ``progress``, ``deps``, ``command``: the progress bar, optional imports, the ``rerank-onnx batch`` command.

Nothing here is imported by ``import reranker_onnx``; tqdm, pyarrow and ray are imported only when used.
"""

from .plan import ActorPlan, Limits, Shard, plan_actors, plan_shards
from .run import BatchJob, BatchReport, run_batch


def rerank_dataset(*args, **kwargs):  # type: ignore[no-untyped-def]
    """A Ray Dataset of (query, text) rows with a score column (see ``ray_engine.rerank_dataset``)."""
    from .ray_engine import rerank_dataset as impl

    return impl(*args, **kwargs)


__all__ = [
    "ActorPlan",
    "BatchJob",
    "BatchReport",
    "Limits",
    "Shard",
    "plan_actors",
    "plan_shards",
    "rerank_dataset",
    "run_batch",
]
