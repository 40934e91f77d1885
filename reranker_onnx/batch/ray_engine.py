"""The same job on Ray Data: an actor pool with one ``Reranker`` per actor (the ``ray`` extra).

The driver plans the shards and writes them (see ``job.py``); actors read their shard from the input
(a path every worker sees: this machine, or shared storage on a cluster), score it with
``work.score_shard`` (the same call, so the same batches and scores as one process) and send the lines
back. The model directory travels through Ray's object store, not a shared disk: each node unpacks it
once into a folder named by its content and checks every file's sha256 there before loading it.
``rerank_dataset`` is the same actor pool for a Ray Dataset of (query, text) rows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reranker_onnx import IntegrityError, Reranker, RerankerError
from reranker_onnx.store import staged

from .deps import need
from .plan import Limits, Shard, plan_actors
from .sources import Source
from .work import ShardResult, peak_rss, score_shard

if TYPE_CHECKING:
    from .run import BatchJob

ModelBundle = dict[str, dict[str, Any]]  # {"files": {relative path: bytes}, "sha256": {relative path: hex}}


def bundle_model(model_dir: Path) -> ModelBundle:
    """Every file of a model directory, with the sha256 the workers must find."""
    files = {p.relative_to(model_dir).as_posix(): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}
    return {"files": files, "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}


def unpack_model(bundle: ModelBundle, root: Path | None = None) -> Path:
    """Write the model once per node (atomically, named by its content) and verify every file there."""
    digest = hashlib.sha256(repr(sorted(bundle["sha256"].items())).encode()).hexdigest()[:20]
    root = root or Path(tempfile.gettempdir()) / "reranker-onnx-ray"
    target = root / digest
    if not target.is_dir():
        with staged(target, keep_existing=True) as tmp:  # another actor on this node may install it first
            for name, data in bundle["files"].items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
    for name, expected in bundle["sha256"].items():
        path = target / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if actual != expected:
            raise IntegrityError(
                f"model file {name} on this worker has sha256 {actual[:12]}, the driver sent {expected[:12]}: "
                f"remove {target} on this node and run again"
            )
    return target


class _Actor:
    def __init__(self, bundle: Any, variant: str, threads: int, scoring: dict[str, Any] | None = None) -> None:
        ray = need("ray", "ray")
        if isinstance(bundle, ray.ObjectRef):
            bundle = ray.get(bundle)
        self.reranker = Reranker(unpack_model(bundle), variant=variant, threads=threads, **(scoring or {}))


class ShardScorer(_Actor):
    """Ray Data callable: a batch of shard descriptors in, their scored lines out."""

    def __init__(self, bundle: Any, variant: str, threads: int, source: dict[str, str], limits: dict[str, int],
                 top_k: int | None, scoring: dict[str, Any] | None = None) -> None:
        super().__init__(bundle, variant, threads, scoring)
        self.source = Source(Path(source["path"]), source["format"])  # type: ignore[arg-type]
        self.limits, self.top_k = Limits(**limits), top_k

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for i in range(len(batch["index"])):
            shard = Shard(*(int(batch[k][i]) for k in ("index", "first_row", "rows", "start", "stop")))
            result = asdict(score_shard(self.reranker, self.source, shard, self.limits, self.top_k))
            result.update(size=shard.stop - shard.start, pid=os.getpid(), peak_rss=peak_rss())
            for key, value in result.items():
                out.setdefault(key, []).append(value)
        return out


class PairScorer(_Actor):
    """Ray Data callable for ``rerank_dataset``: adds a score column to (query, text) rows."""

    def __init__(self, bundle: Any, variant: str, threads: int, query: str, text: str, score: str) -> None:
        super().__init__(bundle, variant, threads)
        self.query, self.text, self.score = query, text, score

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        np = need("numpy", "ray")
        pairs = [(str(q), str(t)) for q, t in zip(batch[self.query], batch[self.text])]
        return {**batch, self.score: np.asarray(self.reranker.predict(pairs), dtype=np.float64)}


def _ray(address: str | None):
    """Ray, connected: to ``address`` if given, else a running instance, else a new one on this machine."""
    ray = need("ray", "ray")
    need("ray.data", "ray")
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        started = True
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray, started


def _user_error(exc: BaseException) -> RerankerError | None:
    """The RerankerError an actor raised, found through Ray's wrappers."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RerankerError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return None


def score_on_ray(
    model_dir: Path, variant: str, source: Source, shards: Sequence[Shard], job: BatchJob, address: str | None,
    actors: int | None, threads: int | None,
) -> Iterator[tuple[ShardResult, int, int, int]]:
    """Score ``shards`` on an actor pool; results arrive in completion order (the driver orders them)."""
    ray, started = _ray(address)
    try:
        plan = plan_actors(ray.cluster_resources().get("CPU", 0), actors, threads)
        if not shards:
            return
        dataset = ray.data.from_items([asdict(s) for s in shards], override_num_blocks=len(shards))
        scored = dataset.map_batches(
            ShardScorer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=plan.actors), num_cpus=plan.threads,
            fn_constructor_kwargs=dict(
                bundle=ray.put(bundle_model(model_dir)), variant=variant, threads=plan.threads,
                source={"path": str(source.path), "format": source.format}, limits=asdict(job.limits), top_k=job.top_k,
                scoring=job.scoring,
            ),
        )
        fields = set(ShardResult.__dataclass_fields__)
        try:
            for row in scored.iter_rows():
                result = ShardResult(**{k: v for k, v in row.items() if k in fields})
                yield replace(result, index=int(result.index)), int(row["size"]), int(row["pid"]), int(row["peak_rss"])
        except Exception as exc:
            user = _user_error(exc)
            if user is None:
                raise
            raise user from None
    finally:
        if started:
            ray.shutdown()


def rerank_dataset(
    dataset: Any, model: str | os.PathLike[str] | None = None, *, variant: str | None = None, actors: int | None = None,
    threads: int | None = None, query: str = "query", text: str = "text", score: str = "score", batch_size: int = 256,
) -> Any:
    """A Ray Dataset of (query, text) rows with a ``score`` column, from an actor pool of Rerankers.

    ``actors`` × ``threads`` never exceeds the CPUs of the connected Ray cluster (call ``ray.init``
    first). The model is verified here, shipped through the object store and verified again on every
    node. Scores equal ``Reranker.predict`` on the same batches; on fp32 they equal it whatever the
    batches.
    """
    ray = need("ray", "ray")
    if not ray.is_initialized():
        raise RerankerError("call ray.init() (or ray.init(address=...)) before rerank_dataset")
    plan = plan_actors(ray.cluster_resources().get("CPU", 0), actors, threads)
    local = Reranker(model, variant=variant, threads=1)
    return dataset.map_batches(
        PairScorer, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.threads,
        fn_constructor_kwargs=dict(bundle=ray.put(bundle_model(local.info.model_dir)), variant=local.info.variant,
                                   threads=plan.threads, query=query, text=text, score=score),
    )
