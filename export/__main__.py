"""``rerank-onnx export`` (and ``python -m export`` in a checkout): export a model named in models.lock,
or a local checkpoint folder.

    rerank-onnx export ms-marco-TinyBERT-L2-v2          # fetch at the pinned revision, export to the store
    rerank-onnx export path/to/checkpoint --output DIR   # a local checkpoint
    rerank-onnx export path/to/random-fixture --no-gate  # record int8 fidelity instead of gating on it

Installed from a wheel this package is ``reranker_onnx_export``; its imports are relative, so the same
code runs under either name.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

INSTALL_HINT = "pip install 'reranker-onnx[export]' (in a checkout: make install-dev)"


EMBEDDING_CHOICES = {"yes": True, "no": False, "measure": None}


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Export a cross-encoder to a model directory.")
    parser.add_argument("model", help="a name from models.lock, or a local checkpoint folder")
    parser.add_argument("--output", type=Path, help="model directory to write (default: the store)")
    parser.add_argument("--name", help="name recorded in the manifest (default: the model name or folder name)")
    parser.add_argument("--max-length", type=int, help="pair token limit (default: the model's, at most 512)")
    parser.add_argument("--no-gate", action="store_true", help="random-weight fixtures: record int8 fidelity, do not gate")
    parser.add_argument("--lock", type=Path,
                        help="models.lock to read and update (default: the checkout's, or the installed one, read only)")
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


EXTRA = ("torch", "transformers", "optimum", "onnx", "huggingface_hub", "sentence_transformers", "safetensors", "scipy")


def _missing_extra() -> str | None:
    """The first module of the export extra that is not installed (checked before any work starts)."""
    import importlib.util

    for name in EXTRA:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # ValueError: blocked in sys.modules
            return name
    return None


def main(argv: list[str] | None = None, prog: str = "python -m export") -> int:
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.validation_queries < 4:
        parser.error("--validation-queries must be at least 4 (the sensitivity search probes 4 queries)")
    signal.signal(signal.SIGTERM, _interrupt)
    # Progress from this stage at INFO; the quantizer logs every tensor at INFO on the root logger.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("export").setLevel(logging.INFO)
    missing = _missing_extra()
    if missing:
        print(f"{prog}: missing {missing}: install the export extra: {INSTALL_HINT}", file=sys.stderr)
        return 2
    from .pipeline import ExportOptions, export_model
    from reranker_onnx.errors import RerankerError
    from reranker_onnx.registry import Recipe, lock_path, lookup
    from reranker_onnx.store import store_dir

    from .families import ExportError
    from .fetch import fetch_checkpoint, resolve_revision
    from .lockfile import record_export

    local = Path(args.model)
    lock = args.lock or lock_path()
    # The lock inside an installed package is the registry it shipped with: read it, never rewrite it.
    record = args.lock is not None or lock.parent.name != "reranker_onnx"
    try:
        if local.is_dir():
            checkpoint, revision, entry = local, None, None
            name = args.name or local.resolve().name
            source = {"path": str(local.resolve())}
        else:
            entry = lookup(args.model, lock)
            name = entry.name
            if entry.repo is None:
                raise ExportError(f"{name} is trained in this project, not fetched: {entry.notes or 'see models.lock'}")
            revision = entry.revision or resolve_revision(entry.repo)
            checkpoint = fetch_checkpoint(entry.repo, revision, pins={f: pin.sha256 for f, pin in entry.upstream_files.items()})
            source = {"repo": entry.repo, "revision": revision}
        output = args.output or store_dir() / name
        recipe = (entry.recipe if entry else None) or Recipe()
        if args.languages:
            recipe = replace(recipe, languages=tuple(args.languages.split(",")))
        if args.quantize_embeddings:
            recipe = replace(recipe, quantize_embeddings=EMBEDDING_CHOICES[args.quantize_embeddings])
        options = ExportOptions(
            name=name, source=source, max_length=args.max_length or (entry.max_length if entry else None),
            gate=not args.no_gate, recipe=recipe, queries_per_language=args.validation_queries,
            static_scales=args.activation_scales == "static",
            family=entry.family if entry else None, activation=entry.activation if entry else None,
        )
        result = export_model(checkpoint, output, options)
        if entry is not None and record:
            record_export(lock, entry.name, result.directory, result.manifest, revision)
    except (ExportError, RerankerError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing was written", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"{prog}: error: no space left on the device ({exc.filename or 'writing the export'}); "
              "nothing was written: free some space and run it again", file=sys.stderr)
        return 1
    if args.report:
        args.report.write_text(json.dumps(result.report, indent=2) + "\n", encoding="utf-8")
    print(f"exported {name} to {result.directory}")
    for variant, v in sorted(result.manifest.variants.items()):
        print(f"  {variant:<12} {v.file:<40} {json.dumps(v.fidelity, sort_keys=True)[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
