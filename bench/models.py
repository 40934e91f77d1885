"""The two model sizes, built once under ``.cache/bench/`` and laid out for every engine.

Per size: the checkpoint (``python -m export.minilm`` / ``python -m export.fixtures tinybert-l2``), the
runtime model directory (``python -m export ... --no-gate --languages en``), and from them the peers'
folders: a copy of the checkpoint with sentence-transformers' own ONNX export and its int8 file (made
with ``export_dynamic_quantized_onnx_model``), and FlashRank's and fastembed's folder layouts holding
the checkpoint's tokenizer files and the very int8 graph that reranker-onnx picks on this CPU.

Heavy steps run as subprocesses (the export stage, sentence-transformers), so this process stays light.
``python -m bench.models st-int8 CHECKPOINT DEST PRESET`` is that sentence-transformers step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ST_INT8_NAME = "bench-int8-file.txt"  # names the int8 file sentence-transformers wrote (its dtype is in the name)
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class Size:
    key: str
    label: str
    build: tuple[str, ...]  # argv after ``python -m``, the checkpoint folder appended
    languages: str = "en"
    export_flags: tuple[str, ...] = ()  # more ``python -m export`` options


SIZES = (
    Size("tinybert-l2", "TinyBERT-L2 shape (2 layers, 128 hidden, random weights)", ("export.fixtures", "tinybert-l2")),
    # Exported as the bundled default model (a trained MiniLM-L6) is: int8 word embeddings, a 23 MB
    # graph instead of 59 MB, so this size measures what users of the default model run.
    Size("minilm-l6", "MiniLM-L6 (real all-MiniLM-L6-v2 encoder, fixed-seed head; int8 embeddings, as the default model)",
         ("export.minilm",), export_flags=("--quantize-embeddings", "yes")),
)


STAMP = ".bench-stamp"  # in each built folder: the hash of the code that built it


def _code_hash(*globs: str) -> str:
    """Digest of the named source files, so a change in the export stage rebuilds what it made."""
    from export.versions import source_digest

    return source_digest(path for pattern in globs for path in REPO.glob(pattern))


def _fresh(folder: Path, marker: str, stamp: str) -> bool:
    try:
        return (folder / marker).is_file() and (folder / STAMP).read_text(encoding="utf-8").strip() == stamp
    except OSError:
        return False


def _stamp(folder: Path, stamp: str) -> None:
    (folder / STAMP).write_text(stamp + "\n", encoding="utf-8")


def _run(argv: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        done = subprocess.run(argv, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, check=False,
                              env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"bench: `{' '.join(argv)}` failed (exit {done.returncode}); see {log}")


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def st_preset() -> str:
    """sentence-transformers' quantization preset for this CPU, chosen like the runtime chooses."""
    from reranker_onnx import cpu

    host = cpu.detect()
    if host.arch != "x86_64":
        return "arm64"
    return "avx512_vnni" if host.has_vnni else "avx2"


def auto_variant(runtime_dir: Path) -> tuple[str, str]:
    """(variant, graph file) that reranker-onnx picks here with no override."""
    from reranker_onnx import cpu
    from reranker_onnx.manifest import read_manifest

    manifest = read_manifest(runtime_dir)
    choice = cpu.choose_variant(cpu.detect(), set(manifest.variants), cpu.requested_variant(None))
    return choice.variant, manifest.variants[choice.variant].file


def _peer_folder(checkpoint: Path, graph: Path, folder: Path, graph_name: str) -> None:
    for name in TOKENIZER_FILES:
        if (checkpoint / name).is_file():
            _link_or_copy(checkpoint / name, folder / name)
    _link_or_copy(graph, folder / graph_name)


def _drop_call_max_length(folder: Path) -> bool:
    """The checkpoint's tokenizer_config.json carries ``"max_length": 128``, a call default that
    transformers saved along; sentence-transformers, FlashRank and reranker-onnx truncate at
    ``model_max_length`` (512), but fastembed takes the smaller of the two and would cut every pair at
    128 tokens, doing a quarter of the work. Its folder gets the key removed so all engines do the same work."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if "max_length" not in config:
        return False
    del config["max_length"]
    path.unlink()  # a hard link to the checkpoint's file: replace it, never write through it
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return True


def prepare(size: Size, cache: Path, say: Callable[[str], None], rebuild: bool = False) -> dict[str, Any]:
    """Build what is missing for ``size``; return its paths (JSON-able, handed to workers)."""
    ckpt = cache / "ckpt" / size.key
    runtime = cache / "models" / size.key
    st_dir = cache / "peers" / "st-onnx" / size.key
    log = cache / "logs" / f"build-{size.key}.log"
    timings: dict[str, float] = {}
    if rebuild:
        for path in (ckpt, runtime, st_dir):
            shutil.rmtree(path, ignore_errors=True)
    ckpt_stamp = _code_hash("export/minilm.py", "export/fixtures.py")
    export_stamp = _code_hash("export/*.py", "reranker_onnx/manifest.py")
    if not _fresh(ckpt, "config.json", ckpt_stamp):
        say(f"  building the {size.key} checkpoint")
        start = time.perf_counter()
        shutil.rmtree(ckpt, ignore_errors=True)
        _run([sys.executable, "-m", *size.build, str(ckpt)], log)
        _stamp(ckpt, ckpt_stamp)
        timings["checkpoint_s"] = time.perf_counter() - start
    runtime_stamp = "-".join((ckpt_stamp, export_stamp, *size.export_flags))
    if not _fresh(runtime, "manifest.json", runtime_stamp):
        say(f"  exporting {size.key} with the export stage (fp32 + int8 variants; a few minutes)")
        start = time.perf_counter()
        _run([sys.executable, "-m", "export", str(ckpt), "--name", f"bench-{size.key}", "--output", str(runtime),
              "--no-gate", "--languages", size.languages, *size.export_flags], log)
        _stamp(runtime, runtime_stamp)
        timings["export_s"] = time.perf_counter() - start
    preset = st_preset()
    if not _fresh(st_dir, ST_INT8_NAME, ckpt_stamp):
        say(f"  sentence-transformers ONNX export and its {preset} int8 file for {size.key}")
        start = time.perf_counter()
        _run([sys.executable, "-m", "bench.models", "st-int8", str(ckpt), str(st_dir), preset], log)
        _stamp(st_dir, ckpt_stamp)
        timings["st_int8_s"] = time.perf_counter() - start
    st_file = (st_dir / ST_INT8_NAME).read_text(encoding="utf-8").strip()
    variant, graph_rel = auto_variant(runtime)
    graph = runtime / graph_rel
    flash_cache = cache / "peers" / "flashrank" / size.key
    flash_name = f"bench-{size.key}"
    _peer_folder(ckpt, graph, flash_cache / flash_name, "model.onnx")
    fastembed_dir = cache / "peers" / "fastembed" / size.key
    _peer_folder(ckpt, graph, fastembed_dir, "onnx/model.onnx")
    fastembed_fix = _drop_call_max_length(fastembed_dir)
    return {
        "size": size.key, "label": size.label,
        "checkpoint": str(ckpt), "runtime_dir": str(runtime), "variant": variant,
        "int8_graph": str(graph), "tokenizer": str(runtime / "tokenizer.json"),
        "fp32_graph": str(runtime / "onnx" / "model.onnx"),
        "st_int8_dir": str(st_dir), "st_int8_file": st_file, "st_preset": preset,
        "flashrank_cache": str(flash_cache), "flashrank_name": flash_name, "flashrank_file": "model.onnx",
        "fastembed_dir": str(fastembed_dir), "fastembed_name": f"bench/{size.key}", "fastembed_file": "onnx/model.onnx",
        "fastembed_max_length_fix": fastembed_fix,
        "build_timings": timings,
    }


def build_st_int8(checkpoint: Path, dest: Path, preset: str) -> None:
    """sentence-transformers' own path: ONNX export through optimum, then its dynamic int8 export."""
    from sentence_transformers import CrossEncoder, export_dynamic_quantized_onnx_model

    from reranker_onnx.store import staged

    with staged(dest) as tmp:
        shutil.copytree(checkpoint, tmp, dirs_exist_ok=True)
        model = CrossEncoder(str(tmp), device="cpu", backend="onnx", model_kwargs={"provider": "CPUExecutionProvider"})
        model.save_pretrained(str(tmp))
        export_dynamic_quantized_onnx_model(model, preset, str(tmp))
        written = sorted(p.name for p in (tmp / "onnx").glob(f"model_*_{preset}.onnx"))
        assert len(written) == 1, f"expected one int8 file for {preset}, sentence-transformers wrote {written}"
        (tmp / ST_INT8_NAME).write_text(f"onnx/{written[0]}\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "st-int8":
        build_st_int8(Path(argv[1]), Path(argv[2]), argv[3])
        return 0
    print("usage: python -m bench.models st-int8 CHECKPOINT DEST PRESET", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
