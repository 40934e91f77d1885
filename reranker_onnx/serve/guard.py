"""The ASGI layer in front of the routes: body size limit, timing and counting, no stack traces.

It reads the body before the app does, so an oversized request is refused (413) before any parsing,
and it answers any failure it sees as one JSON line: a bug becomes a 500 with no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from .metrics import Metrics

log = logging.getLogger(__name__)

ROUTES = {"/v1/rerank", "/v2/rerank", "/rerank", "/health", "/v1/models", "/metrics", "/openapi.json", "/docs"}


def error_body(message: str, kind: str) -> bytes:
    line = " ".join(message.split())
    return json.dumps({"message": line, "error": line, "error_type": kind}).encode()


async def send_json(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: Any, *, max_body_bytes: int, body_timeout_s: float, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started, status, responded = time.perf_counter(), [500], [False]

        async def counted_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0], responded[0] = message["status"], True
            await send(message)

        try:
            try:
                body = await asyncio.wait_for(self._read_body(scope, receive), self.body_timeout_s)
            except asyncio.TimeoutError:  # a client that stalls mid-body does not hold its slot forever
                self.metrics.rejected.labels("body_timeout").inc()
                await send_json(counted_send, 408, error_body(
                    f"the request body did not arrive within {self.body_timeout_s:g} s", "Validation"))
                return
            if body is None:
                self.metrics.rejected.labels("body_too_large").inc()
                await send_json(counted_send, 413, error_body(
                    f"the request body is larger than {self.max_body_bytes} bytes (--max-body-bytes)", "Validation"))
                return
            await self.app(scope, _replay(body, receive), counted_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            if not responded[0]:
                await send_json(counted_send, 500, error_body("internal server error", "Backend"))
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    async def _read_body(self, scope: dict, receive: Any) -> bytes | None:
        """The whole body, or None once it passes the limit (by its Content-Length or as it streams)."""
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """A receive channel that gives the buffered body once, then waits on the client as before."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
