"""Start a worker and time it end to end; the worker reports its own peak RSS.

Peak RSS is the child's ``VmHWM`` from ``/proc/self/status``, read as its last act. The kernel's
``ru_maxrss`` (``wait4``, ``getrusage(RUSAGE_CHILDREN)``) is not used: Python starts children with
vfork, and at exec Linux folds the parent's high-water mark into the child's, so every child would
look at least as large as this orchestrator. The spec goes through a file: a list of a thousand
passages does not fit in one command-line argument.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# No hub is reachable: libraries that would ask one are told not to before they try.
CHILD_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


class WorkerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Child:
    out: dict[str, Any]
    t0: float  # time.monotonic() just before the process was started
    wall_s: float  # start to exit


def run_worker(task: str, spec: dict[str, Any], timeout_s: float = 1200.0) -> Child:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        with open(Path(tmp) / "out", "w+b") as out, open(Path(tmp) / "err", "w+b") as err:
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "bench.worker", task, str(spec_path)],
                                    stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO, env=CHILD_ENV)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise WorkerError(f"worker {task} ({spec.get('engine', '?')}) took over {timeout_s:.0f} s") from None
            wall = time.monotonic() - t0
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-12:])
        raise WorkerError(f"worker {task} ({spec.get('engine', '?')}) exited {proc.returncode}:\n{tail}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkerError(f"worker {task} printed no result; stderr:\n{stderr[-2000:]}")
    return Child(out=json.loads(lines[-1]), t0=t0, wall_s=wall)
