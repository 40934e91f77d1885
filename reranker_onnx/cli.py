"""``rerank-onnx``: score passages against a query from the shell; inspect the CPU; pull models.

Exit codes: 0 success, 2 usage error (bad arguments or input), 1 runtime error (model missing,
tampered, download failed). Errors are one line on stderr; a user mistake never prints a traceback.
"""

from __future__ import annotations

import logging
import shutil
import sys
from typing import Optional

import typer

from .errors import CALLER_ERRORS, InputError, RerankerError
from .inputs import gather, inert
from .jsonl import json_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Rerank passages with a cross-encoder on the CPU (onnxruntime).",
)

ModelOption = typer.Option(None, "--model", "-m", help="Model directory or name in the store (default: the bundled model).")
VariantOption = typer.Option(None, "--variant", help="fp32, avx2, avx512_vnni or arm64 (default: chosen for this CPU).")


def _print_table(rows: list[dict], width: int) -> None:
    ids = [inert(str(r["id"])) for r in rows]
    id_width = max([2] + [len(i) for i in ids])
    text_width = max(20, width - id_width - 20)
    typer.echo(f"{'rank':>4}  {'score':>10}  {'id':<{id_width}}  passage")
    for r, shown_id in zip(rows, ids):
        text = inert(" ".join(r["text"].split()))
        if len(text) > text_width:
            text = text[: text_width - 1] + "…"
        typer.echo(f"{r['rank']:>4}  {r['score']:>10.4f}  {shown_id:<{id_width}}  {text}")


@app.command()
def score(
    query: str = typer.Argument(..., help="The query."),
    passages: Optional[list[str]] = typer.Argument(None, help="Passages to score (or use --file, --records, stdin)."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="Text file, one passage per line ('-' = stdin)."),
    records: Optional[str] = typer.Option(None, "--records", help='JSON Lines file of {"id": ..., "text": ...} (\'-\' = stdin).'),
    top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=1, help="Show only the best K."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array."),
    as_jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON object per line."),
    with_text: bool = typer.Option(False, "--with-text", help="Include passage text in JSON output."),
    keep_order: bool = typer.Option(False, "--keep-order", help="Keep the input order instead of ranking."),
    model: Optional[str] = ModelOption,
    variant: Optional[str] = VariantOption,
    max_length: Optional[int] = typer.Option(None, "--max-length", min=2, help="Lower the model's max tokens per pair."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="onnxruntime threads (default: physical cores)."),
    memory_budget: Optional[str] = typer.Option(None, "--memory-budget", help="Activation memory per batch, e.g. 800M (default: half of what is free)."),
    too_long: str = typer.Option("cut", "--too-long", help="A pair the budget cannot hold: 'cut' it to fit or 'refuse' the call."),
    windows: bool = typer.Option(False, "--windows", help="Score long passages as overlapping windows; best window wins (MaxP)."),
    window: Optional[int] = typer.Option(None, "--window", min=2, help="Tokens per window (default: max length)."),
    stride: Optional[int] = typer.Option(None, "--stride", min=1, help="Passage tokens between window starts (default: half a window)."),
) -> None:
    """Score PASSAGES against QUERY, best first."""
    if as_json and as_jsonl:
        raise InputError("choose one of --json and --jsonl")
    from .reranker import Reranker
    from .scoring import best_first

    gathered = gather(passages or [], file, records, stdin_is_terminal=sys.stdin.isatty())
    if not gathered:
        raise InputError("no passages given: pass them as arguments, with --file or --records, or on stdin")
    reranker = Reranker(model, variant=variant, max_length=max_length, threads=threads, memory_budget=memory_budget,
                        too_long=too_long, windows=windows, window=window, stride=stride)
    scores = reranker.score(query, [p.text for p in gathered])
    best = best_first(scores)
    ranks = {i: r for r, i in enumerate(best, start=1)}
    order = range(len(scores)) if keep_order else best
    rows = [{"id": gathered[i].id, "rank": ranks[i], "score": scores[i], "text": gathered[i].text} for i in order]
    rows = rows[:top_k] if top_k and not keep_order else rows
    if as_json or as_jsonl:
        public = [{k: v for k, v in r.items() if k != "text" or with_text} for r in rows]
        if as_json:
            typer.echo(json_line(public))
        else:
            for r in public:
                typer.echo(json_line(r))
    else:
        _print_table(rows, shutil.get_terminal_size((100, 20)).columns)


@app.command()
def info(model: Optional[str] = ModelOption, variant: Optional[str] = VariantOption) -> None:
    """Show the CPU features, onnxruntime, and the variant a model would use here, and why."""
    import onnxruntime

    from . import cpu
    from .reranker import describe
    from .store import default_model, store_dir
    from .threads import default_threads

    host = cpu.detect()
    typer.echo(f"cpu: {host.arch}, {host.model_name or 'unknown model'}" + (f" ({host.core_name})" if host.core_name else ""))
    typer.echo(f"features: {', '.join(sorted(host.features)) or 'none detected'} (from {host.source})")
    typer.echo(f"onnxruntime: {onnxruntime.__version__}")
    typer.echo(f"threads: {default_threads()} (physical cores available to this process)")
    typer.echo(f"store: {store_dir()}")
    if model is None and default_model() is None:
        typer.echo("model: none given and no bundled default model")
        return
    found = describe(model, variant, host)
    typer.echo(f"model: {found.name} ({found.family}) at {found.model_dir}")
    typer.echo(f"variants: {', '.join(found.variants)}")
    typer.echo(f"chosen: {found.variant}: {found.variant_reason}")
    from .upstream import describe as describe_pull

    for line in describe_pull(found.manifest, found.variant):
        typer.echo(line)


@app.command(name="list")
def list_models() -> None:
    """List the models pinned in models.lock and whether each is in the local store."""
    from .registry import load_lock
    from .store import store_dir, sweep_leftovers

    entries = load_lock()
    sweep_leftovers()  # folders of pulls killed mid-way
    for name, entry in sorted(entries.items()):
        if entry.artifacts.bundled:
            where = "bundled (the default)"
        elif (store_dir() / name / "manifest.json").is_file():
            where = "installed"
        else:
            upstream = entry.pull and entry.pull.onnx
            where = "pullable" if entry.artifacts.url or upstream else "export locally"
        typer.echo(f"{name:<48} {entry.family:<12} {entry.license:<11} {where}")


@app.command()
def pull(
    name: str = typer.Argument(..., help="Model name from `rerank-onnx list`, or its upstream id."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (also HF_HUB_OFFLINE=1)."),
    force: bool = typer.Option(False, "--force", help="Download again even if installed."),
    no_validate: bool = typer.Option(False, "--no-validate", help="Upstream graphs: skip the fp32 download and the on-device check (recorded)."),
    variant: Optional[str] = VariantOption,
    graph: Optional[str] = typer.Option(None, "--graph", help="Upstream graphs: use this int8 file (e.g. onnx/model_int8.onnx)."),
) -> None:
    """Download a model (an exported directory, or upstream's own ONNX graphs), verify every sha256, install it atomically."""
    from .pull import pull_model

    options = {"validate": not no_validate, "variant": variant, "graph": graph, "say": lambda m: typer.echo(m, err=True)}
    directory = pull_model(name, offline=offline, force=force, **options)
    typer.echo(f"{name}: ready at {directory}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def export(ctx: typer.Context) -> None:
    """Export a checkpoint (a models.lock name or a folder) to a model directory; needs the export extra."""
    from .export_command import export_main

    raise typer.Exit(export_main(list(ctx.args)))


# `batch` is a room of its own (reranker_onnx/batch); its extras are imported only when it runs.
from .batch.command import batch as _batch  # noqa: E402

app.command(name="batch")(_batch)

# `serve` likewise (reranker_onnx/serve): FastAPI and uvicorn are imported only when it runs.
from .serve.command import serve as _serve  # noqa: E402

app.command(name="serve")(_serve)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (testable without a subprocess)."""
    logging.basicConfig(level=logging.WARNING, format="rerank-onnx: %(message)s")
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="rerank-onnx", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except RerankerError as exc:  # the one place errors become exit codes
        typer.echo(f"rerank-onnx: error: {exc}", err=True)
        return 2 if isinstance(exc, CALLER_ERRORS) else 1
    except KeyboardInterrupt:
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
