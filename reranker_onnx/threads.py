"""How many threads onnxruntime should use: the physical cores this process may really run on.

Hyper-threads share a core's vector units, so int8/fp32 kernels gain little from them; a container's
CPU quota and the process's affinity mask both limit what is usable, and oversubscribing them makes
every thread wait.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)


def _allowed_cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _physical_cores(cpus: set[int]) -> int:
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topo / "physical_package_id").read_text().strip()
            core = (topo / "core_id").read_text().strip()
        except OSError:
            return len(cpus)  # no topology (macOS, Windows, some containers): count logical CPUs
        cores.add((package, core))
    return len(cores) or len(cpus)


def _cgroup_quota() -> float | None:
    try:  # cgroup v2
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def default_threads() -> int:
    """Physical cores in the affinity mask, capped by the cgroup CPU quota; at least 1."""
    threads = _physical_cores(_allowed_cpus())
    quota = _cgroup_quota()
    if quota is not None:
        threads = min(threads, max(1, math.ceil(quota)))
    return max(1, threads)


def usable_cpus() -> int:
    """Logical CPUs this process may run on: more onnxruntime threads than these only wait on each
    other (10,000 threads printed a score, then took 11 minutes to exit)."""
    return max(1, len(_allowed_cpus()))


def resolve_threads(requested: int | None) -> int:
    """``requested`` if usable, capped at :func:`usable_cpus` with a warning; None gives the default."""
    if requested is None:
        return default_threads()
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise InputError(f"threads must be a whole number of at least 1, got {requested!r}")
    limit = usable_cpus()
    if requested > limit:
        log.warning("threads=%d is more than the %d CPUs this process may run on; using %d", requested, limit, limit)
        return limit
    return requested
