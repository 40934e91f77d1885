"""``rerank-onnx serve`` as a user runs it: a real process, graceful SIGTERM, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from export.debian import read_descriptions
from reranker_onnx.cli import main

pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, json.loads(response.read())


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly():
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from reranker_onnx.cli import run; run()", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow start"
                time.sleep(0.1)
        docs = [d.body for d in read_descriptions("en")[:60]]
        answer: dict = {}
        thread = threading.Thread(target=lambda: answer.update(
            zip(("status", "body"), _post(f"{base}/v2/rerank", {"query": "archive files", "documents": docs, "top_n": 2}))))
        thread.start()
        time.sleep(0.5)  # the request is being scored (60 passages take about a second on the default model)
        proc.send_signal(signal.SIGTERM)
        thread.join(120)
        assert answer["status"] == 200 and len(answer["body"]["results"]) == 2
        # uvicorn re-raises the signal once it has shut down, so the exit looks like SIGTERM's default
        assert proc.wait(60) in (0, -signal.SIGTERM)
        _, stderr = proc.communicate()
        assert "listening on http://127.0.0.1:" in stderr and "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_missing_extra_is_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "rerank-onnx: error: rerank-onnx serve needs the serve extra: pip install 'reranker-onnx[serve]'"


def test_unknown_model_is_a_one_line_error_before_binding(capsys, tmp_path):
    assert main(["serve", "--model", str(tmp_path / "nothing-here")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rerank-onnx: error:") and err.count("\n") == 1


def test_windows_option_loads_windowed_models_and_window_alone_is_a_usage_error(monkeypatch, capsys):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # built and configured, never bound
    assert main(["serve", "--windows", "--stride", "64", "--port", "0"]) == 0
    assert "; windows)" in capsys.readouterr().err
    assert main(["serve", "--window", "64"]) == 2
    err = capsys.readouterr().err
    assert "window and stride apply only with windows=True (--windows)" in err and err.count("\n") == 1
