"""``python -m bench.serving``: the HTTP service under load, beside in-process scoring and a plain peer.

    python -m bench.serving [--quick] [--seconds S]   # load table → results/bench/serve.{md,json}
    python -m bench.serving --soak 600                # RSS of a server under steady load → serve-soak.{md,json}

Every server and every load generator is its own process on 127.0.0.1 (``bench.loadgen``). Points: 1, 4,
16 and 64 concurrent clients sending one query × 20 and × 100 passages (Debian descriptions, queries
are other packages' synopses), each for at least ``--seconds`` and one turn of every client after a
warm-up (``bench.loadgen.load``). ``--quick`` is the smoke: every engine at 1 and 4 clients × 1×20, 2 s
a point (about 2 minutes on a quiet 2-core host). Engines, all on the MiniLM-L6 size of
``bench.models`` (the same weights):

* ``serve`` — ``rerank-onnx serve`` with the variant this CPU picks (int8 with scales fixed at export:
  batch-independent, so waiting requests are merged);
* ``serve fp32`` — the fp32 graph (merged too);
* ``peer`` — plain FastAPI calling sentence-transformers ``CrossEncoder.rank`` per request (torch fp32).
  Its endpoint is a plain ``def``, so FastAPI runs up to 40 requests at once in its thread pool, each
  with torch's own threads: answers come in bursts, one per turn of the clients, which is why a point
  waits for a whole turn (capped at ``max_window``) instead of a fixed window.

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

import numpy as np

from . import models
from .procs import CHILD_ENV, REPO

SOAK_CLIENTS, SOAK_DOCS, SOAK_SAMPLE_S = 16, 20, 10.0
# A load point waits at most this long for every client's first answer, then for a turn of answers.
FULL_CAPS = {"max_warmup": 120.0, "max_window": 120.0}
QUICK_CAPS = {"max_warmup": 30.0, "max_window": 20.0}
# A soak client gives up after this long (counted as an error); the server's own timeout is --timeout.
SOAK_CLIENT_TIMEOUT_S = 120.0
MIN_JUDGED_S = 120.0  # RSS is judged flat or growing over at least this long after the warm-up


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
    """The process's resident set in MB; nan once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rejected(url: str) -> dict[str, float]:
    """The server's own count of refused requests by reason (queue full, timeout, client gone, ...)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("reranker_rejected_total{"):
            out[line.split('reason="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


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
            out: Path, only: tuple[str, ...] = (), caps: dict[str, float] = FULL_CAPS) -> dict[str, Any]:
    """Every engine at every point; the report is rewritten after each engine, so a failure keeps the rest."""
    pools = _pools()
    engines: list[dict[str, Any]] = []
    result = {"engines": engines, "seconds_per_point": seconds, "model": m["label"], "variant_auto": m["variant"],
              **caps}
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
                    point = _child("load", f"{server.url}/v1/rerank",
                                   {**pools, **caps, "docs": n, "clients": c, "seconds": seconds})
                    if engine["inproc"]:
                        point["of_inproc"] = point["pairs_per_s"] / engine["inproc"][str(n)]
                    engine["points"].append(point)
            engine["server_rss_mb"] = _rss_mb(server.proc.pid)
        engines.append(engine)
        result["host"] = _host()
        write_load_report(result, out)
    return result


def soak(m: dict[str, Any], seconds: float) -> dict[str, Any]:
    """16 clients × 1×20 for ``seconds``; the server's RSS sampled from a side thread, its refusals read
    from /metrics at the end, and the clients' own timeouts counted as errors."""
    import threading

    pools, samples = _pools(), []
    every = min(SOAK_SAMPLE_S, max(seconds / 10, 1.0))
    with Server(_serve_argv(m["runtime_dir"], None), "serve") as server:
        done = threading.Event()

        def sample() -> None:
            start = time.monotonic()
            while not done.wait(every):
                samples.append((round(time.monotonic() - start, 1), round(_rss_mb(server.proc.pid), 1)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            result = _child("load", f"{server.url}/v1/rerank", {
                **pools, "docs": SOAK_DOCS, "clients": SOAK_CLIENTS, "seconds": seconds, "max_window": seconds,
                "client_timeout": SOAK_CLIENT_TIMEOUT_S})
        finally:
            done.set()
            sampler.join()
        rejected = _rejected(server.url)
    return {"seconds": seconds, "load": result, "rejected": rejected, "rss_samples": samples,
            "rss": rss_trend(samples, warmup_s=min(60.0, seconds / 5))}


def rss_trend(samples: list[tuple[float, float]], warmup_s: float) -> dict[str, Any]:
    """Is RSS flat after warm-up? The least-squares growth over the run and the last minute's mean
    against the first minute's must both stay within max(5 MB, 2 %): a leak grows steadily, while a
    drop (the kernel trimming pages under pressure) is not one. No verdict (None) on a short smoke:
    the first minutes still grow the allocator's arenas as merged batches get larger."""
    kept = [(t, v) for t, v in samples if t >= warmup_s and v == v] or [(t, v) for t, v in samples if v == v]
    if len(kept) < 2:
        return {"flat": None, "why": f"{len(kept)} samples"}
    t, v = np.array([k[0] for k in kept]), np.array([k[1] for k in kept])
    slope = float(np.polyfit(t, v, 1)[0])  # MB per second
    span = float(t[-1] - t[0])
    minute = min(60.0, span / 3) if span else 0.0
    first, last = float(v[t <= t[0] + minute].mean()), float(v[t >= t[-1] - minute].mean())
    tolerance = max(5.0, 0.02 * first)
    flat = bool(slope * span <= tolerance and last - first <= tolerance) if span >= MIN_JUDGED_S else None
    return {"from_s": float(t[0]), "first_mb": round(first, 1), "last_mb": round(last, 1),
            "min_mb": float(v.min()), "max_mb": float(v.max()), "slope_mb_per_min": round(60 * slope, 3),
            "fitted_growth_mb": round(slope * span, 1), "tolerance_mb": round(tolerance, 1), "flat": flat,
            **({} if flat is not None else {"why": f"{span:.0f} s after warm-up; a verdict needs {MIN_JUDGED_S:g}"})}


def _host() -> str:
    return f"{platform.machine()}, {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} at the end"


def _ms(value: float) -> str:
    return "—" if value != value else f"{value:.0f}"  # nan: no request answered inside the window


def write_load_report(result: dict[str, Any], out: Path) -> Path:
    lines = [
        "# rerank-onnx serve under load", "",
        f"Model: {result['model']} (auto variant here: {result['variant_auto']}). Host: {result['host']}.",
        f"Each point: closed-loop load counted once every client has had an answer (at most "
        f"{result['max_warmup']:g} s; 'not steady' otherwise, or when the window held less than one answer per "
        f"client), for at least {result['seconds_per_point']:g} s and one turn of the clients (at most "
        f"{result['max_window']:g} s); load generator and server are separate processes on the same (shared) "
        "cores, over loopback. '—': no answer inside the window.", "",
        "| engine | request | clients | pairs/s | p50 ms | p99 ms | answered | errors | window s | of in-process |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in result["engines"]:
        for p in e["points"]:
            share = f"{100 * p['of_inproc']:.0f} %" if "of_inproc" in p else ""
            steady = "" if p.get("steady", True) else " (not steady)"
            lines.append(f"| {e['engine']} | 1×{p['docs']} | {p['clients']}{steady} | {p['pairs_per_s']:.1f} | "
                         f"{_ms(p['p50_ms'])} | {_ms(p['p99_ms'])} | {p['requests']} | {p['errors']} | "
                         f"{p['window_s']:.0f} | {share} |")
    lines += ["", "In-process (one Reranker, requests back to back, fresh process), and each server's RSS at the end:", ""]
    for e in result["engines"]:
        for n, v in e["inproc"].items():
            lines.append(f"- {e['engine']}, 1×{n}: {v:.1f} pairs/s")
        lines.append(f"- {e['engine']} server RSS: {e['server_rss_mb']:.0f} MB")
    (out / "serve.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    path = out / "serve.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_soak_report(result: dict[str, Any], out: Path) -> Path:
    rss, load = result["rss"], result["load"]
    statuses = ", ".join(f"{'no answer (connection error or client timeout)' if k == '0' else k}: {v}"
                         for k, v in sorted(load["statuses"].items()))
    refused = ", ".join(f"{k} {v:g}" for k, v in sorted(result["rejected"].items())) or "none"
    lines = [
        "# rerank-onnx serve: soak", "",
        f"{result['seconds']:g} s of {SOAK_CLIENTS} clients × 1×{SOAK_DOCS} on {result['model']}; host: {result['host']}.",
        f"Requests: {load['requests']} answered, {load['errors']} errors ({statuses}); {load['pairs_per_s']:.0f} "
        f"pairs/s; p50 {_ms(load['p50_ms'])} ms, p99 {_ms(load['p99_ms'])} ms. A client gives up after "
        f"{SOAK_CLIENT_TIMEOUT_S:g} s. Refused by the server (/metrics, whole run): {refused}.",
    ]
    verdict = {True: "flat", False: "growing", None: f"no verdict ({rss.get('why')})"}[rss["flat"]]
    if "first_mb" not in rss:
        lines.append(f"Server RSS: {verdict}.")
    else:
        lines.append(
            f"Server RSS from {rss['from_s']:g} s: first minute {rss['first_mb']} MB, last minute {rss['last_mb']} MB "
            f"(min {rss['min_mb']}, max {rss['max_mb']}); fitted slope {rss['slope_mb_per_min']} MB/min, "
            f"{rss['fitted_growth_mb']} MB over the run: **{verdict}** (tolerance {rss['tolerance_mb']} MB).")
    lines += ["", "Samples (s, MB): " + ", ".join(f"{t:g}: {v}" for t, v in result["rss_samples"])]
    (out / "serve-soak.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    path = out / "serve-soak.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke: 2 s per point, 1 and 4 clients, 1×20 only")
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
        path = write_soak_report(result, args.out)
        print(path.read_text(encoding="utf-8"))
        _say(f"wrote {path}")
        return 0
    clients = tuple(int(c) for c in args.clients.split(","))
    docs = tuple(int(d) for d in args.docs.split(","))
    seconds, clients, docs = (2.0, (1, 4), (20,)) if args.quick else (args.seconds, clients, docs)
    only = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    measure(m, seconds, clients, docs, args.out, only, QUICK_CAPS if args.quick else FULL_CAPS)
    print((args.out / "serve.md").read_text(encoding="utf-8"))
    _say(f"wrote {args.out / 'serve.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
