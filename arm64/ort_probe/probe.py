"""Probe one onnxruntime install on this (possibly emulated) CPU: import it, then run each tiny graph
from make_models.py in its own child process, so that a crash (SIGILL, SIGSEGV) is attributed to one
graph and does not hide the others. Prints one JSON object.

    python probe.py MODELS_DIR
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

RUN_ONE = r"""
import json, sys
import numpy as np
import onnxruntime as ort
case = json.loads(open(sys.argv[2]).read())[sys.argv[1]]
so = ort.SessionOptions()
so.intra_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[3], so, providers=["CPUExecutionProvider"])
feed = {k: np.asarray(v, dtype=case["dtype"]) for k, v in case["inputs"].items()}
got = sess.run(None, feed)[0].astype(np.float64)
err = float(np.abs(got - np.asarray(case["expected"], dtype=np.float64)).max())
print(json.dumps({"max_abs_err": err, "ok": err <= case["atol"]}))
"""


def _describe(returncode: int) -> str:
    if returncode < 0:
        return signal.Signals(-returncode).name
    return f"exit {returncode}"


def probe(models: Path) -> dict[str, object]:
    result: dict[str, object] = {}
    imp = subprocess.run(
        [sys.executable, "-c", "import onnxruntime as o; print(o.__version__)"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if imp.returncode != 0:
        result["import"] = _describe(imp.returncode)
        result["stderr"] = imp.stderr.strip().splitlines()[-3:]
        return result
    result["version"] = imp.stdout.strip()
    result["import"] = "ok"
    cases = json.loads((models / "cases.json").read_text())
    for name in sorted(cases):
        run = subprocess.run(
            [sys.executable, "-c", RUN_ONE, name, str(models / "cases.json"), str(models / f"{name}.onnx")],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if run.returncode != 0:
            tail = run.stderr.strip().splitlines()[-1:] if run.stderr.strip() else []
            result[name] = {"status": _describe(run.returncode), "stderr": tail}
        else:
            out = json.loads(run.stdout)
            result[name] = {"status": "ok" if out["ok"] else "WRONG", "max_abs_err": out["max_abs_err"]}
    return result


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]))))
