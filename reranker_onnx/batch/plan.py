"""Pure planners, tested on numbers alone: where the input is cut into shards, how many actors and threads.

A shard is the unit of work and of output: it is read, scored in one ``Reranker.predict`` call and
written as one file renamed into place. Its bounds depend only on the input's bytes, never on the
engine or on timing, so a resumed job, the single-process engine and the Ray engine all cut the same
input into the same shards and hand ``predict`` the same lists: the same batches, the same scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Limits:
    """Settings of a batch job, each with the reason for its value."""

    # A shard closes at this many input bytes: its rows, pairs and output stay in memory together, so
    # this bounds the job's memory whatever the input size. It is also what a kill can lose and what
    # Ray balances: 256 KiB is about 250 pairs of real (Debian) passages, some 7 s of a MiniLM-size
    # model on one core (bench/batch.py), or about 1,000 short pairs.
    shard_bytes: int = 256 << 10
    # ... or at this many rows (lines of JSON Lines, rows of Parquet), whichever comes first.
    shard_rows: int = 1024
    # A longer line is a bad row, read past without being held: one corrupt line (a missing newline
    # in a multi-GB file) must not take the whole file into memory.
    max_line_bytes: int = 16 << 20
    # A row with more candidates is a bad row: every candidate of a row is scored in one shard.
    max_candidates: int = 10_000


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based, dense: shard files are named by it
    first_row: int  # 1-based line (JSON Lines) or row (Parquet) number of its first row
    rows: int  # rows it covers, bad ones included
    start: int  # byte offset of its first line (JSON Lines; 0 for Parquet)
    stop: int  # byte offset just past its last line

    @property
    def last_row(self) -> int:
        return self.first_row + self.rows - 1


def plan_shards(row_sizes: Iterable[int], limits: Limits) -> Iterator[Shard]:
    """Cut consecutive rows of the given sizes (bytes, newline included) into shards.

    Every row lands in exactly one shard and shards follow the input order; a shard closes when it
    holds ``shard_rows`` rows or at least ``shard_bytes`` bytes (so a row larger than that is a shard
    of its own).
    """
    index, first, rows, start, offset = 0, 1, 0, 0, 0
    for size in row_sizes:
        assert size >= 0, f"a row size cannot be negative: {size}"
        rows += 1
        offset += size
        if rows >= limits.shard_rows or offset - start >= limits.shard_bytes:
            yield Shard(index, first, rows, start, offset)
            index, first, rows, start = index + 1, first + rows, 0, offset
    if rows:
        yield Shard(index, first, rows, start, offset)


@dataclass(frozen=True)
class ActorPlan:
    actors: int
    threads: int  # onnxruntime threads per actor; actors × threads ≤ the CPUs Ray offers


def plan_actors(cpus: float, actors: int | None, threads: int | None) -> ActorPlan:
    """Actors and threads per actor that never ask for more cores than Ray has.

    By default one actor per CPU with one thread each: a single-threaded actor is the unit a cluster
    scales by, and its batches need no intra-op synchronisation.
    """
    total = int(cpus)
    if total < 1:
        raise InputError(f"Ray offers {cpus} CPUs: start workers with CPUs (ray start --num-cpus N)")
    if actors is not None and actors < 1 or threads is not None and threads < 1:
        raise InputError("--actors and --threads must be at least 1")
    threads = threads or max(1, total // (actors or total))
    actors = actors or max(1, total // threads)
    if actors * threads > total:
        raise InputError(
            f"{actors} actors × {threads} threads = {actors * threads} cores, but Ray offers {total}: "
            f"lower --actors or --threads (at most {max(1, total // threads)} actors of {threads} threads)"
        )
    return ActorPlan(actors, threads)
