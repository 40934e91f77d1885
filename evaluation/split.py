"""Deterministic train/dev/test assignment by hashing a package name.

A hash, not a random draw, so the split is the same on every machine, in every language and in every
run, and a package added to Debian later never moves an existing one to another split.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")

N_BUCKETS = 100
# Half-open bucket ranges [lo, hi): 80/10/10.
BUCKETS: dict[Split, tuple[int, int]] = {"train": (0, 80), "dev": (80, 90), "test": (90, 100)}


def key_hash(key: str) -> str:
    """sha256 hex of the UTF-8 key: the bucket source and the sampling order."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bucket(key: str) -> int:
    """The first 8 hex digits of sha256(key) as an integer, modulo 100."""
    return int(key_hash(key)[:8], 16) % N_BUCKETS


def assign(key: str) -> Split:
    """The split a key belongs to."""
    b = bucket(key)
    for name, (lo, hi) in BUCKETS.items():
        if lo <= b < hi:
            return name
    raise AssertionError(f"bucket {b} is outside every range in {BUCKETS}")


def definition() -> dict[str, object]:
    """The split rule as data, for the JSON record (so a reader can recompute it)."""
    return {
        "hash": "sha256 of the UTF-8 group key",
        "bucket": f"int(first 8 hex digits) % {N_BUCKETS}",
        "buckets": {name: list(bounds) for name, bounds in BUCKETS.items()},
        "group_key": (
            "smallest package name of the group; a group joins every package that shares a "
            "passage (identical long description) with another, so no package and no passage "
            "is in two splits"
        ),
        "sample_order": "ascending sha256 of the query's package name, then its Description-md5",
    }
