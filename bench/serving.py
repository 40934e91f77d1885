"""``python -m bench.serving``: the HTTP service under load, beside in-process scoring and a plain peer.

    python -m bench.serving [--quick] [--seconds S]   # load table → results/bench/serve.{md,json}
    python -m bench.serving --soak 600                # RSS of a server under steady load → serve-soak.{md,json}

Every server and every load generator is its own process on 127.0.0.1 (``bench.loadgen``). Points: 1, 4,
16 and 64 concurrent clients sending one query × 20 and × 100 passages (Debian descriptions, queries
are other packages' synopses), for ``--seconds`` each after a warm-up. Engines, all on the MiniLM-L6
size of ``bench.models`` (the same weights):

* ``serve`` — ``rerank-onnx serve`` with the variant this CPU picks (int8: requests are never merged);
* ``serve fp32`` — the fp32 graph, where requests from different clients are merged;
* ``peer`` — plain FastAPI calling sentence-transformers ``CrossEncoder.rank`` per request (torch fp32).

Each server variant is compared with its own in-process throughput: one ``Reranker`` scoring the same
requests back to back in a fresh process. The target is ≥ 90 % of it at 16 clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import models
from .procs import CHILD_ENV, REPO

SOAK_CLIENTS, SOAK_DOCS, SOAK_SAMPLE_S = 16, 20, 10.0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _pools(seed: int = 0) -> dict[str, list[str]]:
    from export.debian import read_descriptions

    described = list(read_descriptions("en"))
    rng = random.Random(seed)
    rng.shuffle(described)
    return {"queries": [d.synopsis for d in described[:64]], "passages": [d.body for d in described[64:1064]]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """A server process on a free loopback port, stopped with SIGTERM on exit.

    A port found free can be taken by another process before the server binds it (this host runs
    other engineers' services): the server then exits, or something else answers, and it is started
    again on another port.
    """

    def __init__(self, argv: list[str], label: str) -> None:
        self.argv, self.label = argv, label  # argv ends where the port goes

    def _start(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*self.argv, str(self.port)], cwd=REPO, env=CHILD_ENV,
                                     stdout=self.log, stderr=self.log)

    def _ours(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return json.loads(response.read()).get("status") == "ok"
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def __enter__(self) -> Server:
        for _ in range(3):
            self._start()
            deadline = time.monotonic() + 300
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self._ours():
                    return self
                time.sleep(0.2)
            self.__exit__()
        self.log.seek(0)
        raise RuntimeError(f"{self.label} did not start: {self.log.read().decode()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _child(task: str, target: str, spec: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run([sys.executable, "-m", "bench.loadgen", task, target, f.name], cwd=REPO, env=CHILD_ENV,
                             capture_output=True, text=True, timeout=1800)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"bench.loadgen {task} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _serve_argv(runtime_dir: str, variant: str | None) -> list[str]:
    argv = [sys.executable, "-c", "from reranker_onnx.cli import run; run()", "serve", "--model", runtime_dir,
            "--max-queue", "512", "--timeout", "600"]  # the load generator cuts its own stragglers
    return argv + (["--variant", variant] if variant else []) + ["--port"]


def measure(m: dict[str, Any], seconds: float, clients: tuple[int, ...], docs: tuple[int, ...],
            out: Path, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every engine at every point; the report is rewritten after each engine, so a failure keeps the rest."""
    pools = _pools()
    engines: list[dict[str, Any]] = []
    result = {"engines": engines, "seconds_per_point": seconds, "model": m["label"], "variant_auto": m["variant"]}
    setups = [
        ("serve", _serve_argv(m["runtime_dir"], None), None),
        ("serve fp32", _serve_argv(m["runtime_dir"], "fp32"), "fp32"),
        ("peer", [sys.executable, "-m", "bench.loadgen", "peer", m["checkpoint"]], "peer"),
    ]
    for label, argv, variant in setups:
        if only and label not in only:
            continue
        engine: dict[str, Any] = {"engine": label, "points": [], "inproc": {}}
        if variant != "peer":
            for n in docs:
                _say(f"  {label}: in-process, 1×{n}")
                engine["inproc"][str(n)] = _child("inproc", m["runtime_dir"], {
                    **pools, "docs": n, "seconds": seconds, "variant": variant})["pairs_per_s"]
        with Server(argv, label) as server:
            for n in docs:
                for c in clients:
                    _say(f"  {label}: {c} clients × 1×{n}")
                    point = _child("load", f"{server.url}/v1/rerank", {**pools, "docs": n, "clients": c, "seconds": seconds})
                    if engine["inproc"]:
                        point["of_inproc"] = point["pairs_per_s"] / engine["inproc"][str(n)]
                    engine["points"].append(point)
            engine["server_rss_mb"] = _rss_mb(server.proc.pid)
        engines.append(engine)
        result["host"] = _host()
        write_load_report(result, out)
    return result


def soak(m: dict[str, Any], seconds: float) -> dict[str, Any]:
    """16 clients × 1×20 for ``seconds``; the server's RSS sampled every 10 s from a side thread."""
    import threading

    pools, samples = _pools(), []
    with Server(_serve_argv(m["runtime_dir"], None), "serve") as server:
        done = threading.Event()

        def sample() -> None:
            start = time.monotonic()
            while not done.wait(SOAK_SAMPLE_S):
                samples.append((round(time.monotonic() - start, 1), round(_rss_mb(server.proc.pid), 1)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        result = _child("load", f"{server.url}/v1/rerank",
                        {**pools, "docs": SOAK_DOCS, "clients": SOAK_CLIENTS, "seconds": seconds, "warmup": 0})
        done.set()
        sampler.join()
    warm = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
    return {"seconds": seconds, "load": result, "rss_samples": samples,
            "rss_after_warmup_mb": {"first": warm[0], "last": warm[-1], "min": min(warm), "max": max(warm)}}


def _host() -> str:
    return f"{platform.machine()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} at the end"


def write_load_report(result: dict[str, Any], out: Path) -> Path:
    lines = [
        "# rerank-onnx serve under load", "",
        f"Model: {result['model']} (auto variant here: {result['variant_auto']}). Host: {result['host']}.",
        f"Each point: {result['seconds_per_point']:g} s of closed-loop load, counted once every client has had an "
        "answer (steady queue; 'not steady' when that took over 30 s); load generator and server are "
        "separate processes on the same (shared) cores, over loopback.", "",
        "| engine | request | clients | pairs/s | p50 ms | p99 ms | errors | of in-process |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for e in result["engines"]:
        for p in e["points"]:
            share = f"{100 * p['of_inproc']:.0f} %" if "of_inproc" in p else ""
            steady = "" if p.get("steady", True) else " (not steady)"
            lines.append(f"| {e['engine']} | 1×{p['docs']} | {p['clients']}{steady} | {p['pairs_per_s']:.1f} | "
                         f"{p['p50_ms']:.0f} | {p['p99_ms']:.0f} | {p['errors']} | {share} |")
    lines += ["", "In-process (one Reranker, requests back to back, fresh process):", ""]
    for e in result["engines"]:
        for n, v in e["inproc"].items():
            lines.append(f"- {e['engine']}, 1×{n}: {v:.1f} pairs/s")
    (out / "serve.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    path = out / "serve.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_soak_report(result: dict[str, Any], out: Path) -> Path:
    rss, load = result["rss_after_warmup_mb"], result["load"]
    lines = [
        "# rerank-onnx serve: soak", "",
        f"{result['seconds']:g} s of {SOAK_CLIENTS} clients × 1×{SOAK_DOCS} on {result['model']}; host: {result['host']}.",
        f"Requests: {load['requests']} answered, {load['errors']} errors; {load['pairs_per_s']:.0f} pairs/s; "
        f"p50 {load['p50_ms']:.0f} ms, p99 {load['p99_ms']:.0f} ms.",
        f"Server RSS after the first minute: first {rss['first']} MB, last {rss['last']} MB, "
        f"min {rss['min']} MB, max {rss['max']} MB.", "",
        "Samples (s, MB): " + ", ".join(f"{t:g}: {v}" for t, v in result["rss_samples"]),
    ]
    (out / "serve-soak.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    path = out / "serve-soak.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per point, 1 and 16 clients, 1×20 only")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per point")
    parser.add_argument("--soak", type=float, default=0.0, help="run the RSS soak for this many seconds instead")
    parser.add_argument("--soak-model", help="soak this model directory instead of the MiniLM-L6 size (e.g. the default model)")
    parser.add_argument("--engines", default="", help="comma-separated subset of: serve, serve fp32, peer")
    parser.add_argument("--clients", default="1,4,16,64", help="concurrent clients per point")
    parser.add_argument("--docs", default="20,100", help="passages per request")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "bench")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.soak and args.soak_model:
        m = {"runtime_dir": args.soak_model, "label": args.soak_model}
    else:
        size = next(s for s in models.SIZES if s.key == "minilm-l6")
        _say(f"preparing {size.key}")
        m = models.prepare(size, args.cache, _say)
    if args.soak:
        result = soak(m, args.soak)
        result.update(model=m["label"], host=_host())
        _say(f"wrote {write_soak_report(result, args.out)}")
        return 0
    clients = tuple(int(c) for c in args.clients.split(","))
    docs = tuple(int(d) for d in args.docs.split(","))
    seconds, clients, docs = (2.0, (1, 16), (20,)) if args.quick else (args.seconds, clients, docs)
    only = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    measure(m, seconds, clients, docs, args.out, only)
    _say(f"wrote {args.out / 'serve.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
