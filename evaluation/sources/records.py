"""One shape for every source: a query, the one passage that answers it, and the key its split hangs on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    source: str  # e.g. "foldoc"
    key: str  # unique within the source: the record's id
    group: str  # records of one group land in one split (a man page's aliases, a headword's spellings)
    query: str
    passage: str

    @property
    def md5(self) -> str:
        """A stable id for the query, like the Description-md5 of the Debian task."""
        return hashlib.md5(f"{self.source}\0{self.key}".encode()).hexdigest()
