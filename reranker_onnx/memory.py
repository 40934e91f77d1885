"""How much memory a batch needs, how much this process may use, and the longest pair that fits.

The estimate is the activations onnxruntime holds while one encoder layer runs (layers run one after
another, so their temporaries do not add up): the hidden states and their projections, the gated
feed-forward, and attention's (rows × heads × queries × L) scores, where queries is L for a full
attention graph and the block size for a blocked one (export/blocked_attention.py). The coefficients
were fitted to peak RSS measured in fresh processes on the full-size jina replica config and on MiniLM
(bench/long_context.py, notes in docs/long-context.md) and rounded up, so the estimate errs high.

The allowance is what the process may still take: the smallest of the kernel's MemAvailable, the
cgroup (v2 ``memory.max`` − ``memory.current``, or v1 ``limit_in_bytes`` − ``usage_in_bytes``) and
RLIMIT_AS minus what is mapped; the default budget is a share of it, taken when the model is loaded.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOAT = 4  # bytes; activations are fp32 in every variant (int8 graphs quantize weights only)
DEFAULT_SHARE = 0.5  # of the allowance, so the tokenizer, Python and other threads keep room
# Fitted: peak activation bytes ≈ HIDDEN_COPIES·rows·L·D + FFN_COPIES·rows·L·I + copies·rows·H·q·L floats
# (docs/long-context.md), rounded up from the measurement. A full attention graph holds ~6.5 (rows, H, L, L)
# tensors at its peak (the ALiBi/mask bias shared by all layers, scores, their sum, softmax ...); a
# blocked one ~2.7 per block (scores, bias, softmax of the current block only).
HIDDEN_COPIES = 12.0
FFN_COPIES = 4.0
FULL_ATTENTION_COPIES = 7.0
BLOCKED_ATTENTION_COPIES = 4.0
FIXED_OVERHEAD = 32 << 20  # allocator slack and per-run buffers, independent of the batch
# Conservative shape for a manifest that records none (exported before shapes were recorded).
UNKNOWN_SHAPE: dict[str, Any] = {"layers": 12, "heads": 16, "hidden": 1024, "intermediate": 4096, "attention_block": None}


@dataclass(frozen=True)
class ModelShape:
    """What the activation estimate needs to know about a graph."""

    layers: int
    heads: int
    hidden: int
    intermediate: int
    attention_block: int | None = None  # None: full attention, (rows × heads × L × L) scores

    @classmethod
    def from_manifest(cls, export: dict[str, Any]) -> ModelShape:
        data = export.get("architecture") or UNKNOWN_SHAPE
        return cls(
            layers=int(data["layers"]),
            heads=int(data["heads"]),
            hidden=int(data["hidden"]),
            intermediate=int(data["intermediate"]),
            attention_block=data.get("attention_block"),
        )


def batch_bytes(shape: ModelShape, rows: int, length: int) -> int:
    """Estimated peak activation bytes for ``rows`` pairs padded to ``length`` tokens."""
    if shape.attention_block is None:
        queries, copies = length, FULL_ATTENTION_COPIES
    else:
        queries, copies = min(shape.attention_block, length), BLOCKED_ATTENTION_COPIES
    floats = (
        HIDDEN_COPIES * rows * length * shape.hidden
        + FFN_COPIES * rows * length * shape.intermediate
        + copies * rows * shape.heads * queries * length
    )
    return int(floats * FLOAT) + FIXED_OVERHEAD


def rows_that_fit(shape: ModelShape, length: int, budget: int) -> int:
    """How many rows of ``length`` tokens fit in ``budget`` bytes (0 if not even one)."""
    one = batch_bytes(shape, 1, length) - FIXED_OVERHEAD
    room = budget - FIXED_OVERHEAD
    return max(0, room // max(one, 1))


def longest_that_fits(shape: ModelShape, budget: int, limit: int) -> int:
    """The longest single pair (≤ limit tokens) whose batch fits ``budget``; 0 if not even one token."""
    low, high = 0, limit
    while low < high:  # the estimate grows with length: bisect
        mid = (low + high + 1) // 2
        if batch_bytes(shape, 1, mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


# ---------------------------------------------------------------- what this process may use


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) is not a number


def _cgroup_dirs(proc_self_cgroup: Path, root: Path) -> tuple[Path | None, Path | None]:
    """The v2 directory and the v1 memory directory of this process's cgroup, where they exist."""
    v2 = v1 = None
    try:
        lines = proc_self_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            v2 = root / rel.lstrip("/")
        elif "memory" in controllers.split(","):
            v1 = root / "memory" / rel.lstrip("/")
    return v2, v1


def cgroup_room(proc_self_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Bytes the cgroup still allows (limit − usage), or None without a limit."""
    v2, v1 = _cgroup_dirs(proc_self_cgroup, root)
    candidates = []
    for directory, limit_name, usage_name in (
        (v2, "memory.max", "memory.current"),
        (v1, "memory.limit_in_bytes", "memory.usage_in_bytes"),
        (root, "memory.max", "memory.current"),  # a container sees its own cgroup at the root
        (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes"),
    ):
        if directory is None:
            continue
        limit = _read_int(directory / limit_name)
        if limit is None or limit >= 1 << 60:  # v1 says "no limit" with a huge number
            continue
        usage = _read_int(directory / usage_name) or 0
        candidates.append(max(0, limit - usage))
    return min(candidates) if candidates else None


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_room() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        mapped = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        mapped = 0
    return max(0, soft - mapped)


def allowance() -> int | None:
    """Bytes this process may still take (None when nothing can be read, e.g. not Linux)."""
    known = [v for v in (mem_available(), cgroup_room(), _address_space_room()) if v is not None]
    return min(known) if known else None


def default_budget(share: float = DEFAULT_SHARE) -> int | None:
    room = allowance()
    return None if room is None else int(room * share)


def parse_size(text: str) -> int:
    """'512M', '1.5G', '800000000' → bytes (K/M/G/T are powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    clean = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if clean and clean[-1] in units:
            return int(float(clean[:-1]) * units[clean[-1]])
        return int(float(clean))
    except ValueError:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 512M or 2G)") from None


def describe(size: int) -> str:
    return f"{size / (1 << 20):,.0f} MB"


MIN_PAIR_TOKENS = 8  # a pair shorter than this cannot hold a query, a passage and the template


@dataclass(frozen=True)
class MemoryPlan:
    """The budget applied to a model: rows per batch by length, and the longest pair that fits alone."""

    shape: ModelShape
    budget: int
    longest: int  # tokens; ≤ the model's max_length

    @classmethod
    def build(cls, shape: ModelShape, budget: int, max_length: int) -> MemoryPlan:
        from .errors import InputError

        longest = longest_that_fits(shape, budget, max_length)
        if longest < min(MIN_PAIR_TOKENS, max_length):  # a max_length below it is judged by the caller
            need = batch_bytes(shape, 1, MIN_PAIR_TOKENS)
            raise InputError(
                f"memory budget {describe(budget)} is too small for this model: a pair of {MIN_PAIR_TOKENS} tokens "
                f"needs about {describe(need)}; raise memory_budget (--memory-budget)"
            )
        return cls(shape, budget, longest)

    def rows_for(self, length: int) -> int:
        return max(1, rows_that_fit(self.shape, length, self.budget))
