"""The job's files: shards renamed into place, so a job killed at any moment resumes with nothing lost
and nothing twice.

While it runs, ``OUTPUT.parts/`` holds ``job.json`` (what the job is: input, model, options) and, for
every finished shard N, ``N.errors.jsonl`` then ``N.jsonl``. When every shard is done they are
concatenated in order into a temporary file renamed to OUTPUT, and the parts are removed.

Why no row is lost or written twice, after a kill at any instant:

1. Every file is written under a temporary name, flushed and fsynced, then renamed (atomic on POSIX):
   a visible shard file is complete, or absent. Leftover temporary files are deleted on restart.
2. ``N.jsonl`` is renamed after ``N.errors.jsonl``, so "N.jsonl exists" means shard N is done, with its
   bad rows recorded; a shard that is not done is scored again from scratch, replacing any half.
3. Shard bounds depend only on the input's bytes (``plan.plan_shards``: contiguous, disjoint, in order,
   tested), and ``job.json`` refuses a changed input or options: a restart cuts the same shards.
4. OUTPUT is one rename of the concatenation of shards 0..n-1, each once, in order; the parts stay until
   after it, so a kill before or after that rename assembles again to the same bytes.

``test_batch.py`` checks this by stopping the job at each of its renames in turn and by kill -9 of a
running job, comparing the resumed OUTPUT with an uninterrupted one byte for byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError, RerankerError
from .work import ShardResult

JOB_FORMAT = 1


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JobFiles:
    """``OUTPUT.parts/`` of one job; one writer at a time (an exclusive lock, released even by kill -9)."""

    def __init__(self, output: Path, errors: Path, identity: dict[str, object]) -> None:
        self.output, self.errors = output, errors
        self.parts = output.with_name(output.name + ".parts")
        self.identity = {"format": JOB_FORMAT, **identity}
        self._lock: int | None = None

    def open(self) -> None:
        """Create or resume the job; refuse a different job's parts or a second writer."""
        if not self.parts.is_dir():
            if self.output.exists():
                raise InputError(f"{self.output} already exists: remove it or choose another OUTPUT")
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.parts.mkdir()
        self._lock = os.open(self.parts, os.O_RDONLY)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RerankerError(f"another rerank-onnx batch is writing {self.output}: wait for it to finish") from None
        recorded = self.parts / "job.json"
        if recorded.is_file():
            before = json.loads(recorded.read_text(encoding="utf-8"))
            changed = sorted(k for k in {*before, *self.identity} if before.get(k) != self.identity.get(k))
            if changed:
                raise InputError(
                    f"{self.parts} belongs to a job with a different {', '.join(changed)}: run the same command "
                    f"to resume it, or remove {self.parts} to start over"
                )
        else:
            _write_atomically(recorded, json.dumps(self.identity, indent=1, sort_keys=True))
        for leftover in self.parts.glob(".*.tmp"):  # a write killed before its rename
            leftover.unlink()

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def done(self) -> set[int]:
        return {int(p.name.split(".")[0]) for p in self.parts.glob("*.jsonl") if p.name.split(".")[1] == "jsonl"}

    def bad_rows_done(self) -> int:
        """Bad rows recorded by finished shards (counted towards ``--max-errors`` on resume)."""
        total = 0
        for index in self.done():
            with (self.parts / f"{index}.errors.jsonl").open("rb") as f:
                total += sum(1 for _ in f)
        return total

    def commit(self, result: ShardResult) -> None:
        """Make one shard durable; its ``.jsonl`` is renamed last, so it marks the shard done."""
        _write_atomically(self.parts / f"{result.index}.errors.jsonl", result.errors)
        _write_atomically(self.parts / f"{result.index}.jsonl", result.output)
        _fsync_dir(self.parts)

    def write_errors(self, shards: Iterable[int]) -> int:
        """The errors file from the given shards' bad rows (only if there are any); returns the count."""
        tmp = self.errors.with_name(f".{self.errors.name}.tmp")
        count = 0
        with tmp.open("wb") as out:
            for index in shards:
                path = self.parts / f"{index}.errors.jsonl"
                if path.is_file():
                    with path.open("rb") as f:
                        for line in f:
                            out.write(line)
                            count += 1
            out.flush()
            os.fsync(out.fileno())
        if count:
            os.replace(tmp, self.errors)
        else:
            tmp.unlink()
        return count

    def assemble(self, shards: int) -> None:
        """Concatenate shards 0..shards-1 into OUTPUT, then remove the parts."""
        missing = set(range(shards)) - self.done()
        assert not missing, f"assembling with shards {sorted(missing)[:5]} not done"
        self.write_errors(range(shards))
        tmp = self.output.with_name(f".{self.output.name}.tmp")
        with tmp.open("wb") as out:
            for index in range(shards):
                with (self.parts / f"{index}.jsonl").open("rb") as f:
                    shutil.copyfileobj(f, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.output)
        _fsync_dir(self.output.parent)
        self.close()
        shutil.rmtree(self.parts)
