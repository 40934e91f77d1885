"""The processes ``bench.serving`` starts: the HTTP load generator, the in-process baseline, the peer server.

    python -m bench.loadgen load URL SPEC        # C clients, keep-alive connections, for S seconds → JSON
    python -m bench.loadgen inproc MODEL SPEC    # the same requests through Reranker.score, back to back → JSON
    python -m bench.loadgen peer CHECKPOINT PORT # plain FastAPI + sentence-transformers CrossEncoder.rank

Each runs in its own process so the client's Python never shares an interpreter (or a GIL) with the
server it measures. Clients are threads on stdlib ``http.client``: the lightest load a 2-core host
can generate; the host is shared with the server, which the report says.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .stats import percentile


def bodies(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests of ``spec["docs"]`` passages each, queries and passages rotating through the pools."""
    queries, passages, n = spec["queries"], spec["passages"], spec["docs"]
    out = []
    for k in range(spec.get("distinct", 32)):
        start = (k * n) % len(passages)
        docs = (passages[start:] + passages[:start])[:n]
        out.append({"model": spec.get("model"), "query": queries[k % len(queries)], "documents": docs, "top_n": 5})
    return [{key: v for key, v in b.items() if v is not None} for b in out]


def load(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``clients`` closed-loop threads; measured over a window once every client has had an answer.

    The window opens when the load is steady (each client has completed one request, or after
    ``max_warmup`` seconds), lasts at least ``seconds`` and until ``clients`` requests have completed
    inside it (one turn of the closed loop), at most ``max_window`` seconds. That extension matters for
    a server that runs every request at once (the peer's thread pool): its answers come in bursts, one
    per turn, and a fixed window shorter than a turn would catch none of them. Pairs/s are the requests
    completed inside the window over its length. When the window closes the clients close their
    sockets, and the server drops what they left queued.
    """
    parts = urlsplit(url)
    payloads = [json.dumps(b).encode() for b in bodies(spec)]
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {spec['key']}"} if spec.get("key") else {})}
    clients, seconds = spec["clients"], spec["seconds"]
    max_warmup, max_window = spec.get("max_warmup", 120.0), max(seconds, spec.get("max_window", 120.0))
    lock, records, answered = threading.Lock(), [], set()
    window = {"begin": float("inf"), "stop": float("inf"), "done": 0}

    conns = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=spec.get("client_timeout", 600))
             for _ in range(clients)]

    def client(k: int) -> None:
        conn, mine, i = conns[k], [], k
        while (t0 := time.perf_counter()) < window["stop"]:
            try:
                if conn.sock is None:
                    conn.connect()
                conn.request("POST", parts.path or "/v1/rerank", body=payloads[i % len(payloads)], headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):  # incl. the client's own timeout (client_timeout)
                status = 0 if time.perf_counter() < window["stop"] else -1  # -1: cut when the window closed
                conn.close()
            t1 = time.perf_counter()
            mine.append((t1 - t0, status, t1))
            with lock:
                answered.add(k)
                window["done"] += window["begin"] <= t1 < window["stop"]
            i += clients
        conn.close()
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    while len(answered) < clients and time.perf_counter() - started < max_warmup:
        time.sleep(0.05)
    steady = len(answered) == clients
    window["begin"] = begin = time.perf_counter()
    while (now := time.perf_counter()) - begin < max_window and (now - begin < seconds or window["done"] < clients):
        time.sleep(0.05)
    with lock:
        window["stop"] = now
    for conn in conns:  # cut what is still in flight: the server drops a request whose client left
        if conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    for t in threads:
        t.join()
    length = window["stop"] - begin
    inside = [r for r in records if begin <= r[2] <= window["stop"] and r[1] != -1]
    ok = [r for r in inside if r[1] == 200]
    statuses: dict[str, int] = {}
    for r in inside:
        statuses[str(r[1])] = statuses.get(str(r[1]), 0) + 1
    latencies = [r[0] for r in ok]
    return {
        "clients": clients, "docs": spec["docs"], "requests": len(ok), "errors": len(inside) - len(ok),
        "statuses": statuses, "steady": steady and len(inside) >= clients, "warmup_s": begin - started,
        "window_s": length, "pairs_per_s": len(ok) * spec["docs"] / length,
        "p50_ms": 1000 * percentile(latencies, 50) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else float("nan"),
    }


def inproc(model: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The same requests through one ``Reranker`` in this process, one after another (all cores per call)."""
    from reranker_onnx import Reranker

    reranker = Reranker(model, variant=spec.get("variant"))
    payloads = bodies(spec)
    for b in payloads[:2]:
        reranker.rank(b["query"], b["documents"], top_k=5)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < spec["seconds"]:
        b = payloads[done % len(payloads)]
        reranker.rank(b["query"], b["documents"], top_k=5)
        done += 1
    return {"docs": spec["docs"], "requests": done, "pairs_per_s": done * spec["docs"] / elapsed}


def peer(checkpoint: str, port: int) -> None:
    """What a user would write without reranker-onnx: FastAPI calling CrossEncoder.rank per request."""
    import uvicorn
    from fastapi import Body, FastAPI
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(checkpoint, device="cpu")
    app = FastAPI()

    @app.post("/v1/rerank")
    def rerank(request: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008  (FastAPI's idiom)
        ranked = model.rank(request["query"], request["documents"], top_k=request.get("top_n"))
        return {"results": [{"index": int(r["corpus_id"]), "relevance_score": float(r["score"])} for r in ranked]}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main(argv: list[str]) -> int:
    task = argv[0]
    if task == "peer":
        peer(argv[1], int(argv[2]))
        return 0
    spec = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    out = load(argv[1], spec) if task == "load" else inproc(argv[1], spec)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
