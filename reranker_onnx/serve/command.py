"""The ``serve`` verb: load each model once, build the app, run uvicorn until SIGTERM or Ctrl-C.

FastAPI and uvicorn are imported inside the command, so ``rerank-onnx --help`` works without the
``[serve]`` extra and a missing one is a single line naming it.
"""

from __future__ import annotations

from typing import Optional

import typer

MISSING_EXTRA = "rerank-onnx serve needs the serve extra: pip install 'reranker-onnx[serve]'"


def serve(
    model: Optional[list[str]] = typer.Option(
        None, "--model", "-m", help="Model directory or store name; repeat to serve several (default: the bundled model)."),
    variant: Optional[str] = typer.Option(None, "--variant", help="fp32, avx2, avx512_vnni or arm64 (default: chosen for this CPU)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default is reachable from this machine only."),
    port: int = typer.Option(8080, "--port", min=0, max=65535),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="RERANKER_ONNX_API_KEY", help="Require 'Authorization: Bearer KEY' (prefer the env variable)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads per model (default: physical cores)."),
    max_documents: int = typer.Option(1000, "--max-documents", min=1, help="Documents per request (more: 413)."),
    max_body_bytes: int = typer.Option(4 * 1024 * 1024, "--max-body-bytes", min=1, help="Request body size (more: 413)."),
    max_queue: int = typer.Option(256, "--max-queue", min=1, help="Waiting requests per model (more: 503 + Retry-After)."),
    batch_wait_ms: float = typer.Option(2.0, "--batch-wait-ms", min=0, help="Wait for requests to merge (batch-independent graphs)."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Seconds before a request is answered 503."),
    no_merge: bool = typer.Option(False, "--no-merge", help="Never merge requests into one runtime call."),
    windows: bool = typer.Option(False, "--windows", help="Score long passages as overlapping windows; best window wins (MaxP)."),
    window: Optional[int] = typer.Option(None, "--window", min=2, help="Tokens per window (default: max length)."),
    stride: Optional[int] = typer.Option(None, "--stride", min=1, help="Passage tokens between window starts (default: half a window)."),
) -> None:
    """Serve reranking over HTTP: Cohere /v1/rerank and /v2/rerank (also Jina's shape), TEI /rerank.

    Windows are the server's choice, not a request's: they multiply a request's cost by up to the
    windows per passage, which is the operator's to plan (queue, timeout, max documents), not a client's.
    """
    from reranker_onnx import InputError, Reranker, RerankerError

    try:
        import uvicorn

        from . import Limits, create_app
    except ImportError:
        raise RerankerError(MISSING_EXTRA) from None

    limits = Limits(max_documents=max_documents, max_body_bytes=max_body_bytes, max_queue=max_queue,
                    batch_wait_ms=batch_wait_ms, timeout_s=timeout)
    rerankers = [Reranker(m, variant=variant, threads=threads, windows=windows, window=window, stride=stride)
                 for m in (model or [None])]  # errors: cli.main
    try:
        app = create_app(rerankers, limits=limits, api_key=api_key or None, merge=not no_merge)
    except ValueError as exc:  # two models with one name
        raise InputError(str(exc)) from None
    for s in app.state.served.values():
        how = "merging requests" if s.batcher.merge else "one request per call"
        typer.echo(f"serving {s.card.id} ({s.card.variant}; {how}{'; windows' if s.card.windows else ''})", err=True)
    if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: {host} may be reachable from other machines and no --api-key is set", err=True)
    typer.echo(f"listening on http://{host}:{port} (Ctrl-C or SIGTERM stops after in-flight requests)", err=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=int(timeout) + 1)
    uvicorn.Server(config).run()
