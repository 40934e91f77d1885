"""``rerank-onnx batch INPUT OUTPUT``: the typer command, registered by ``reranker_onnx.cli``."""

from __future__ import annotations

from typing import Optional

import typer

from ..errors import InputError


def batch(
    input: str = typer.Argument(..., metavar="INPUT", help="JSON Lines or Parquet (.parquet) file of rows."),
    output: str = typer.Argument(..., metavar="OUTPUT", help="JSON Lines file to write; OUTPUT.parts/ holds finished shards until the end."),
    errors: Optional[str] = typer.Option(None, "--errors", help="Where bad rows go, with line number and reason (default: OUTPUT.errors.jsonl)."),
    max_errors: int = typer.Option(100, "--max-errors", min=0, help="Stop after more bad rows than this."),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=1, help="Keep only the best K candidates of each nested row."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model directory or name in the store (default: the bundled model)."),
    variant: Optional[str] = typer.Option(None, "--variant", help="fp32, avx2, avx512_vnni or arm64 (default: chosen for this CPU)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads (per actor on Ray)."),
    input_format: Optional[str] = typer.Option(None, "--format", help="jsonl or parquet (default: from INPUT's extension)."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (e.g. auto, or ray://head:10001); default: start Ray here."),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help="Ray actors (default: Ray's CPUs / threads)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: only on a terminal)."),
    windows: bool = typer.Option(False, "--windows", help="Score long passages as overlapping windows; best window wins (MaxP)."),
    window: Optional[int] = typer.Option(None, "--window", min=2, help="Tokens per window (default: max length)."),
    stride: Optional[int] = typer.Option(None, "--stride", min=1, help="Passage tokens between window starts (default: half a window)."),
) -> None:
    """Score every row of INPUT into OUTPUT (JSON Lines), resuming where a killed run stopped.

    Rows are {"id", "query", "candidates": [{"id", "text"}, ...]} (candidates gain score and rank) or
    {"id", "query", "text"} (gains score). Exit codes: 0 all rows scored, 3 some rows bad (see the
    errors file), 4 stopped after more than --max-errors bad rows, 2 usage error, 1 runtime error.
    """
    from .run import BatchJob, run_batch

    if engine == "local" and (address or actors):
        raise InputError("--address and --actors need --engine ray")
    job = BatchJob(input, output, errors=errors, model=model, variant=variant, threads=threads, top_k=top_k,
                   max_errors=max_errors, input_format=input_format, windows=windows, window=window, stride=stride)
    report = run_batch(job, engine=engine, address=address, actors=actors, progress=progress)  # type: ignore[arg-type]
    rate = report.pairs / report.seconds if report.seconds else 0.0
    resumed = f" ({report.resumed} of {report.shards} shards done earlier)" if report.resumed else ""
    typer.echo(f"rerank-onnx: {report.rows:,} rows, {report.pairs:,} pairs scored in {report.seconds:.1f} s "
               f"({rate:,.0f} pairs/s, {report.variant}){resumed}", err=True)
    if report.bad:
        stop = f"stopped: more than --max-errors {max_errors}; " if report.stopped else ""
        typer.echo(f"rerank-onnx: {stop}{report.bad} bad rows in {job.errors_path} (first: {report.first_error})", err=True)
    if report.exit_code:
        raise typer.Exit(report.exit_code)

