"""The model directory's manifest: the contract between the export stage and the runtime.

A model directory holds ``manifest.json``, ``tokenizer.json`` and ONNX graphs. The runtime trusts only
what the manifest says, and checks every file against the sha256 and size recorded at export before a
byte of it is used. Hashing a large graph on every start would be slow on a small board, so a file
that was verified once is remembered by (size, mtime, ctime, inode) in a per-user cache; a changed
file changes its ctime, which no user-level tool can set back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from .errors import IntegrityError, ManifestError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
Activation = Literal["identity", "sigmoid"]
ACTIVATIONS: tuple[str, ...] = ("identity", "sigmoid")


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Quantization:
    """How an int8 graph was made: the export's recipe, read back as data (``{}`` on disk for fp32)."""

    variant: str  # the preset it was made for
    weight_type: Literal["qint8", "quint8"]
    per_channel: bool = False
    reduce_range: bool = False
    quantize_embeddings: bool = False
    excluded_nodes: tuple[str, ...] = ()  # kept fp32: the head by rule, sensitive nodes by measure
    mode: str = "dynamic"  # activation scales: "dynamic" (per batch tensor) or "static" (fixed at export)
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys of a newer export, kept as read

    @property
    def batch_independent(self) -> bool:
        """Measured at export: a pair's score is the same whatever its batch-mates, within
        ``batch_spread`` (the largest |Δ logit| seen across batch compositions). Only then may a
        server merge requests into one batch. Older exports (dynamic scales) do not say so."""
        return self.extra.get("batch_independent") is True

    @property
    def batch_spread(self) -> float | None:
        return self.extra.get("batch_spread")

    @property
    def saturates_without_vnni(self) -> bool:
        """Full-range s8 weights overflow the 16-bit u8×s8 pair sums of x86 without VNNI (cpu.py)."""
        return self.weight_type == "qint8" and not self.reduce_range

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Quantization | None:
        if not data:
            return None
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["excluded_nodes"] = tuple(values.get("excluded_nodes", ()))
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**data, "excluded_nodes": list(self.excluded_nodes), **self.extra}


@dataclass(frozen=True)
class Variant:
    """One ONNX graph of the model: fp32, or an int8 graph tuned for a CPU family."""

    file: str
    quantization: Quantization | None = None  # None for fp32
    fidelity: dict[str, Any] = field(default_factory=dict)  # measured at export against fp32 / torch


@dataclass(frozen=True)
class Manifest:
    name: str
    family: str
    source: dict[str, Any]  # {"repo": ..., "revision": ...} or {"path": ...} for a local checkpoint
    inputs: tuple[str, ...]  # ONNX input names, in graph order
    max_length: int
    activation: Activation
    tokenizer: str
    files: dict[str, FileEntry]
    variants: dict[str, Variant]
    output: str = "logits"
    export: dict[str, Any] = field(default_factory=dict)  # tool versions, options, timings
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["inputs"] = list(self.inputs)
        for name, variant in self.variants.items():
            data["variants"][name]["quantization"] = variant.quantization.to_dict() if variant.quantization else {}
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    def write(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in data:
        raise ManifestError(f"{where}: missing field {key!r}; re-export the model")
    if not isinstance(data[key], kind):
        raise ManifestError(f"{where}: field {key!r} has the wrong type; re-export the model")
    return data[key]


def read_manifest(directory: Path) -> Manifest:
    """Read and check ``manifest.json`` of a model directory (no file is hashed here)."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{directory} has no {MANIFEST_NAME}: it is not a reranker-onnx model directory "
            "(export one with `python -m export`, or pull one with `rerank-onnx pull NAME`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc}); re-export or re-pull the model") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path} is not a JSON object; re-export or re-pull the model")
    version = _require(data, "format_version", int, path)
    if isinstance(version, bool) or version < 1:
        raise ManifestError(f"{path}: format_version {version!r} is not a manifest format; re-export the model")
    if version > FORMAT_VERSION:
        raise ManifestError(
            f"{path} has manifest format {version}, newer than the {FORMAT_VERSION} this runtime reads: "
            "upgrade reranker-onnx (pip install -U reranker-onnx)"
        )
    activation = _require(data, "activation", str, path)
    if activation not in ACTIVATIONS:
        raise ManifestError(f"{path}: activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    try:
        files = {name: _file_entry(e) for name, e in _require(data, "files", dict, path).items()}
        variants = {name: _variant(v) for name, v in _require(data, "variants", dict, path).items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ManifestError(f"{path}: a file or variant entry is malformed; re-export or re-pull the model") from None
    tokenizer = _require(data, "tokenizer", str, path)
    for name, variant in variants.items():
        if variant.file not in files:
            raise ManifestError(f"{path}: variant {name!r} names {variant.file}, which has no hash entry")
    if tokenizer not in files:
        raise ManifestError(f"{path}: the tokenizer {tokenizer} has no hash entry")
    inputs = tuple(_require(data, "inputs", list, path))
    max_length = _require(data, "max_length", int, path)
    if not all(isinstance(i, str) for i in inputs) or isinstance(max_length, bool) or max_length < 2:
        raise ManifestError(f"{path}: inputs must be names and max_length an integer of at least 2")
    output, export = data.get("output", "logits"), data.get("export", {})
    if not isinstance(output, str) or not isinstance(export, dict):
        raise ManifestError(f"{path}: output must be a name and export an object")
    return Manifest(
        name=_require(data, "name", str, path),
        family=_require(data, "family", str, path),
        source=_require(data, "source", dict, path),
        inputs=inputs,
        max_length=max_length,
        activation=activation,  # type: ignore[arg-type]
        tokenizer=tokenizer,
        files=files,
        variants=variants,
        output=output,
        export=export,
        format_version=version,
    )


def _file_entry(e: Any) -> FileEntry:
    if not isinstance(e["sha256"], str) or type(e["size"]) is not int or e["size"] < 0:
        raise ValueError("sha256 must be a string and size a non-negative integer")
    return FileEntry(sha256=e["sha256"], size=e["size"])


def _variant(v: Any) -> Variant:
    quantization, fidelity = v.get("quantization", {}), v.get("fidelity", {})
    if not isinstance(v["file"], str) or not isinstance(quantization, dict) or not isinstance(fidelity, dict):
        raise TypeError("a variant names its file and has object quantization and fidelity")
    return Variant(file=v["file"], quantization=Quantization.from_dict(quantization), fidelity=fidelity)


def file_entry(path: Path) -> FileEntry:
    """Hash a file as the export stage records it."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(sha256=digest.hexdigest(), size=size)


def _cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(root) / "reranker-onnx" / "verified.json"


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class VerifiedFiles:
    """Remembers files whose sha256 matched, by their stat, so repeated starts skip the hashing."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or _cache_path()
        try:
            self._seen: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._seen = {}

    def is_verified(self, path: Path, entry: FileEntry, st: os.stat_result) -> bool:
        return self._seen.get(str(path)) == [entry.sha256, *_stat_key(st)]

    def remember(self, path: Path, entry: FileEntry, st: os.stat_result) -> None:
        self._seen[str(path)] = [entry.sha256, *_stat_key(st)]
        try:  # best effort: a read-only home only costs a re-hash next time
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".verified-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._seen, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.debug("could not write the verification cache %s: %s", self.path, exc)


def load_verified(directory: Path, name: str, entry: FileEntry, cache: VerifiedFiles | None) -> bytes | Path:
    """Return the file's bytes after checking them, or its path when the cache vouches for it.

    Bytes read for hashing are the very bytes handed to the loader, so nothing unverified is used.
    """
    path = Path(directory) / name
    hint = "re-export the model, or pull it again with `rerank-onnx pull NAME`"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise IntegrityError(f"model file {path} is missing; {hint}") from None
    if cache is not None and cache.is_verified(path.resolve(), entry, st):
        return path
    if st.st_size != entry.size:
        raise IntegrityError(
            f"model file {path} has {st.st_size} bytes, the manifest says {entry.size} "
            f"(truncated or replaced); {hint}"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise IntegrityError(f"model file {path} does not match its sha256 in the manifest (modified); {hint}")
    if cache is not None:
        cache.remember(path.resolve(), entry, st)
    return data
