"""Input files, read in two passes: a cheap scan of row sizes for the planner, then one shard at a time.

JSON Lines splits on ``\\n`` only (not on form feeds or U+2028, which may sit inside a JSON string),
so line numbers match what ``sed -n Np`` shows. A shard is found again by its byte offset, so a
worker on another process or machine reads only its own rows. Parquet goes through pyarrow (the
``batch`` extra); its row sizes are the row group's uncompressed size per row, from the metadata.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InputError
from .deps import need
from .plan import Limits, Shard
from .rows import BadRow, Row, parse_line, parse_record

Format = Literal["jsonl", "parquet"]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    path: Path
    format: Format

    def row_sizes(self) -> Iterator[int]:
        """Size of every row in order (bytes with the newline; Parquet: estimated)."""
        if self.format == "parquet":
            return _parquet_sizes(self.path)
        return _line_sizes(self.path)

    def read(self, shard: Shard, limits: Limits) -> Iterator[Row | BadRow]:
        """The shard's rows, checked; blank lines are skipped (they are not rows)."""
        if self.format == "parquet":
            return _parquet_rows(self.path, shard, limits)
        return _jsonl_rows(self.path, shard, limits)

    def total_size(self) -> int:
        """The sum of the row sizes, without reading the rows."""
        if self.format == "parquet":
            meta = _parquet_file(self.path).metadata
            return sum(_per_row(meta.row_group(g)) * meta.row_group(g).num_rows for g in range(meta.num_row_groups))
        return self.path.stat().st_size

    def identity(self) -> dict[str, object]:
        """What tells a resumed job that its input has not changed."""
        stat = self.path.stat()
        return {"path": str(self.path), "format": self.format, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def open_source(path: str | os.PathLike[str], format: str | None = None) -> Source:
    p = Path(path).resolve()
    if not p.is_file():
        raise InputError(f"{path}: no such file" if not p.exists() else f"{path} is not a file")
    fmt = format or ("parquet" if p.suffix.lower() in (".parquet", ".pq") else "jsonl")
    if fmt not in ("jsonl", "parquet"):
        raise InputError(f"unknown input format {fmt!r}: use jsonl or parquet")
    return Source(p, fmt)  # type: ignore[arg-type]


def _line_sizes(path: Path) -> Iterator[int]:
    pending = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            start = 0
            while (newline := chunk.find(b"\n", start)) != -1:
                yield pending + newline + 1 - start
                pending, start = 0, newline + 1
            pending += len(chunk) - start
    if pending:
        yield pending


def _jsonl_rows(path: Path, shard: Shard, limits: Limits) -> Iterator[Row | BadRow]:
    with path.open("rb") as f:
        f.seek(shard.start)
        for number in range(shard.first_row, shard.first_row + shard.rows):
            line = f.readline(limits.max_line_bytes + 1)
            if len(line) > limits.max_line_bytes and not line.endswith(b"\n"):
                while (rest := f.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass  # read past the long line without keeping it
                yield BadRow(number, f"longer than {limits.max_line_bytes} bytes")
                continue
            parsed = parse_line(number, line, limits)
            if parsed is not None:
                yield parsed
        assert f.tell() == shard.stop, f"shard {shard.index} ended at byte {f.tell()}, planned {shard.stop}"


def _parquet_file(path: Path):
    pq = need("pyarrow.parquet", "batch")
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...: all mean "not a Parquet file"
        raise InputError(f"{path}: cannot read it as Parquet ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    """pyarrow's message on one line (its thrift errors end in a newline), at most 200 characters."""
    return " ".join(str(exc).split())[:200]


def _parquet_sizes(path: Path) -> Iterator[int]:
    meta = _parquet_file(path).metadata
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        per_row = _per_row(group)
        yield from (per_row for _ in range(group.num_rows))


def _per_row(group) -> int:
    return math.ceil(group.total_byte_size / max(group.num_rows, 1))


def _parquet_rows(path: Path, shard: Shard, limits: Limits) -> Iterator[Row | BadRow]:
    """The shard's rows, read one row group at a time; the unread rows of a group that cannot be
    decoded (a damaged page) are bad rows, so one damaged group does not stop the job."""
    file = _parquet_file(path)
    meta = file.metadata
    number = 1  # of the group's first row
    for g in range(meta.num_row_groups):
        size = meta.row_group(g).num_rows
        if number + size > shard.first_row and number <= shard.last_row:
            at = number
            try:
                for batch in file.iter_batches(batch_size=1024, row_groups=[g]):
                    for record in batch.to_pylist():
                        if at == number + size:
                            raise ValueError(f"more rows than the {size} its metadata says")
                        if shard.first_row <= at <= shard.last_row:
                            yield parse_record(at, record, limits)
                        at += 1
                if at < number + size:
                    raise ValueError(f"fewer rows than the {size} its metadata says")
            except Exception as exc:  # pyarrow's OSError, ArrowInvalid, ...: the group's pages are damaged
                reason = f"row group {g} cannot be read as Parquet ({_one_line(exc)})"
                for n in range(max(at, shard.first_row), min(number + size, shard.last_row + 1)):
                    yield BadRow(n, reason)
        number += size
