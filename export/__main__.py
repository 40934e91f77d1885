"""``python -m export``: export a model named in models.lock, or a local checkpoint folder.

    python -m export ms-marco-TinyBERT-L2-v2            # fetch at the pinned revision, export to the store
    python -m export path/to/checkpoint --output DIR     # a local checkpoint
    python -m export path/to/random-fixture --no-gate    # record int8 fidelity instead of gating on it
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

REPO_LOCK = Path(__file__).resolve().parents[1] / "models.lock"


EMBEDDING_CHOICES = {"yes": True, "no": False, "measure": None}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description="Export a cross-encoder to a model directory.")
    parser.add_argument("model", help="a name from models.lock, or a local checkpoint folder")
    parser.add_argument("--output", type=Path, help="model directory to write (default: the store)")
    parser.add_argument("--name", help="name recorded in the manifest (default: the model name or folder name)")
    parser.add_argument("--max-length", type=int, help="pair token limit (default: the model's, at most 512)")
    parser.add_argument("--no-gate", action="store_true", help="random-weight fixtures: record int8 fidelity, do not gate")
    parser.add_argument("--lock", type=Path, default=REPO_LOCK, help="models.lock to read and update")
    parser.add_argument("--languages", help="validation text languages, e.g. en,ja (default: the lock's recipe, else en,ja)")
    parser.add_argument("--quantize-embeddings", choices=("yes", "no", "measure"),
                        help="int8 word embeddings (default: the lock's recipe, else measure both and keep the better)")
    parser.add_argument("--validation-queries", type=int, default=12,
                        help="validation queries per language, 16 passages each (default 12)")
    parser.add_argument("--activation-scales", choices=("static", "dynamic"), default="static",
                        help="int8 activation scales: fixed from calibration text (batch independent, default) "
                             "or per batch (the old scheme, for comparisons)")
    parser.add_argument("--report", type=Path, help="also write the export report (JSON) here")
    return parser


def _interrupt(signum, frame):  # SIGTERM unwinds like Ctrl-C, so the temporary folder is removed
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.validation_queries < 4:
        parser.error("--validation-queries must be at least 4 (the sensitivity search probes 4 queries)")
    signal.signal(signal.SIGTERM, _interrupt)
    # Progress from this stage at INFO; the quantizer logs every tensor at INFO on the root logger.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("export").setLevel(logging.INFO)
    try:
        from .pipeline import ExportOptions, export_model
    except ImportError as exc:
        print(f"export: missing {exc.name}: install the export extra: pip install -e '.[export]'", file=sys.stderr)
        return 2
    from reranker_onnx.errors import RerankerError
    from reranker_onnx.registry import lookup
    from reranker_onnx.store import store_dir

    from .families import ExportError
    from .fetch import fetch_checkpoint, resolve_revision
    from .lockfile import record_export

    local = Path(args.model)
    try:
        if local.is_dir():
            checkpoint, revision, entry = local, None, None
            name = args.name or local.resolve().name
            source = {"path": str(local.resolve())}
        else:
            entry = lookup(args.model, args.lock)
            name = entry.name
            if entry.repo is None:
                raise ExportError(f"{name} is trained in this project, not fetched: {entry.notes or 'see models.lock'}")
            revision = entry.revision or resolve_revision(entry.repo)
            checkpoint = fetch_checkpoint(entry.repo, revision)
            source = {"repo": entry.repo, "revision": revision}
        output = args.output or store_dir() / name
        recipe = entry.recipe if entry else {}
        options = ExportOptions(
            name=name, source=source, max_length=args.max_length or (entry.max_length if entry else None),
            gate=not args.no_gate, languages=tuple(args.languages.split(",") if args.languages else recipe.get("languages", ("en", "ja"))),
            quantize_embeddings=EMBEDDING_CHOICES[args.quantize_embeddings] if args.quantize_embeddings
            else recipe.get("quantize_embeddings"),
            queries_per_language=args.validation_queries, static_scales=args.activation_scales == "static",
        )
        result = export_model(checkpoint, output, options)
        if entry is not None:
            record_export(args.lock, entry.name, result.directory, result.manifest, revision)
    except (ExportError, RerankerError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("export: interrupted; nothing was written", file=sys.stderr)
        return 130
    if args.report:
        args.report.write_text(json.dumps(result.report, indent=2) + "\n", encoding="utf-8")
    print(f"exported {name} to {result.directory}")
    for variant, v in sorted(result.manifest.variants.items()):
        print(f"  {variant:<12} {v.file:<40} {json.dumps(v.fidelity, sort_keys=True)[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
