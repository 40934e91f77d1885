"""``run_batch``: plan the shards, score the pending ones on an engine, commit each, assemble OUTPUT.

Exit codes (``BatchReport.exit_code``): 0 every row scored; 3 done, but some rows were bad (they are
in the errors file); 4 stopped early because more rows than ``max_errors`` were bad (what was done is
kept: fix the input or raise ``--max-errors`` and run the same command again).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from reranker_onnx import InputError, Reranker

from .deps import need
from .job import JobFiles
from .plan import Limits, Shard, plan_shards
from .progress import Progress
from .sources import Source, open_source
from .work import ShardResult, peak_rss, score_shard

Engine = Literal["local", "ray"]
EXIT_BAD_ROWS, EXIT_TOO_MANY_BAD_ROWS = 3, 4


@dataclass(frozen=True)
class BatchJob:
    """What to do; the same job (input, model, variant, ``top_k``, windows, limits) resumes from its parts."""

    input: str
    output: str
    errors: str | None = None  # default: OUTPUT.errors.jsonl
    model: str | None = None
    variant: str | None = None
    threads: int | None = None
    top_k: int | None = None
    max_errors: int = 100
    input_format: str | None = None
    limits: Limits = field(default_factory=Limits)
    windows: bool = False  # long passages as windows, best window wins (Reranker's windows=)
    window: int | None = None
    stride: int | None = None

    @property
    def scoring(self) -> dict[str, Any]:
        """The Reranker options every worker scores with."""
        return {"windows": self.windows, "window": self.window, "stride": self.stride}

    @property
    def errors_path(self) -> Path:
        return Path(self.errors) if self.errors else Path(self.output + ".errors.jsonl")


@dataclass
class BatchReport:
    shards: int = 0  # in the whole job
    resumed: int = 0  # done by an earlier run, skipped
    rows: int = 0  # scored in this run
    pairs: int = 0
    bad: int = 0  # in the whole job so far
    stopped: bool = False  # more bad rows than max_errors
    seconds: float = 0.0
    variant: str = ""
    first_error: str = ""
    peak_rss: dict[int, int] = field(default_factory=dict)  # worker pid → its peak resident memory, bytes
    first_shard_s: float = 0.0  # from the start to the first shard written: model load, Ray's actors
    first_shard_pairs: int = 0
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def exit_code(self) -> int:
        return EXIT_TOO_MANY_BAD_ROWS if self.stopped else EXIT_BAD_ROWS if self.bad else 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _identity(job: BatchJob, source: Source, reranker: Reranker) -> dict[str, object]:
    return {
        "input": source.identity(),
        "model": {
            "dir": str(reranker.info.model_dir.resolve()),
            "manifest_sha256": _sha256(reranker.info.model_dir / "manifest.json"),
            "variant": reranker.info.variant,
        },
        "top_k": job.top_k,
        "limits": asdict(job.limits),
        **({"scoring": job.scoring} if job.windows else {}),  # absent when off: older jobs still resume
    }


def run_batch(
    job: BatchJob, *, engine: Engine = "local", address: str | None = None, actors: int | None = None,
    progress: bool | None = None,
) -> BatchReport:
    """Run (or resume) ``job``; ``progress`` None shows the bar only on a terminal."""
    if job.max_errors < 0:
        raise InputError("max_errors must be at least 0")
    if job.top_k is not None and job.top_k < 1:
        raise InputError("top_k must be at least 1")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}: use local or ray")
    report = BatchReport()
    source = open_source(job.input, job.input_format)
    need("tqdm", "batch")  # every missing extra is named before any file is written
    if source.format == "parquet":
        need("pyarrow.parquet", "batch")
    if engine == "ray":
        need("ray.data", "ray")
    # On the driver: resolve and verify the model, and fix the variant every worker will use.
    reranker = Reranker(job.model, variant=job.variant, threads=job.threads if engine == "local" else 1, **job.scoring)
    files = JobFiles(Path(job.output).absolute(), job.errors_path, _identity(job, source, reranker))
    try:
        files.open()
        report.variant, report.bad = reranker.info.variant, files.bad_rows_done()
        done = files.done()
        shards = plan_shards(source.row_sizes(), job.limits)
        bar = Progress(source.total_size(), progress)
        try:
            if engine == "local":
                results = _local(reranker, source, job, _pending(shards, done, report, bar))
            else:
                from .ray_engine import score_on_ray

                pending = list(_pending(shards, done, report, bar))
                results = score_on_ray(reranker.info.model_dir, reranker.info.variant, source, pending, job, address, actors, job.threads)
            _collect(results, files, job, report, bar)
        finally:
            bar.close()
        if report.stopped:
            files.write_errors(sorted(files.done()))
        else:
            files.assemble(report.shards)
    finally:
        files.close()
    report.seconds = time.monotonic() - report.started
    return report


def _pending(shards: Iterable[Shard], done: set[int], report: BatchReport, bar: Progress) -> Iterator[Shard]:
    for shard in shards:
        report.shards += 1
        if shard.index in done:
            report.resumed += 1
            bar.skip(shard.stop - shard.start)
        else:
            yield shard


Scored = tuple[ShardResult, int, int, int]  # result, shard size, worker pid, worker peak RSS


def _local(reranker: Reranker, source: Source, job: BatchJob, shards: Iterable[Shard]) -> Iterator[Scored]:
    for shard in shards:
        result = score_shard(reranker, source, shard, job.limits, job.top_k)
        yield result, shard.stop - shard.start, os.getpid(), peak_rss()


def _collect(results: Iterable[Scored], files: JobFiles, job: BatchJob, report: BatchReport, bar: Progress) -> None:
    if report.bad > job.max_errors:
        report.stopped = True
        return
    for result, size, pid, rss in results:
        files.commit(result)
        if not report.first_shard_s:
            report.first_shard_s, report.first_shard_pairs = time.monotonic() - report.started, result.pairs
        report.peak_rss[pid] = max(rss, report.peak_rss.get(pid, 0))
        report.rows += result.rows
        report.pairs += result.pairs
        report.bad += result.bad
        if result.bad and not report.first_error:
            first = json.loads(result.errors.split("\n", 1)[0])
            report.first_error = f"line {first['line']}: {first['reason']}"
        bar.advance(size, result.pairs)
        if report.bad > job.max_errors:
            report.stopped = True
            return
