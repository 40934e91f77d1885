"""``models.lock`` read as data: the pinned list of supported models.

Each entry names the upstream checkpoint at a full revision, how it was exported, and, once exported,
where the model directory is published and the sha256 of each of its files. Nothing here resolves
"latest" at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, ModelNotFoundError
from .manifest import FileEntry

LOCK_NAME = "models.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """How the export runs for a model; the export's flags override it. These defaults are the only ones."""

    languages: tuple[str, ...] = ("en", "ja")  # validation text
    quantize_embeddings: bool | None = None  # None: measure with and without, keep the better
    opset: int = 17
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(**{**data, "languages": tuple(data.get("languages", cls.languages))})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "languages": list(self.languages)}


@dataclass(frozen=True)
class Artifacts:
    """What an export published: where (a URL, or a folder inside the package) and each file's hash."""

    url: str | None = None
    bundled: str | None = None  # path of a model shipped inside the package
    files: dict[str, FileEntry] = field(default_factory=dict)  # every file, manifest.json included
    fidelity: dict[str, Any] = field(default_factory=dict)  # per variant, as measured at export
    tools: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifacts:
        files = {rel: FileEntry(str(e["sha256"]), int(e["size"])) for rel, e in data.get("files", {}).items()}
        return cls(**{**data, "files": files})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass(frozen=True)
class UpstreamPin:
    """The sha256 (and size, where known) a public source gives for one upstream file: the fetch checks it."""

    sha256: str
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, **({"size": self.size} if self.size is not None else {})}


def _pins(data: dict[str, Any]) -> dict[str, UpstreamPin]:
    return {f: UpstreamPin(str(p["sha256"]), p.get("size")) for f, p in data.items()}


@dataclass(frozen=True)
class PullRecord:
    """Where ``rerank-onnx pull`` takes upstream's own ONNX graphs from (upstream.py)."""

    revision: str | None = None  # a commit holding onnx/; None: the first online pull resolves main
    files: dict[str, UpstreamPin] = field(default_factory=dict)  # pins at ``revision``
    languages: tuple[str, ...] = ("en",)  # of the pairs the on-device check scores
    note: str = ""
    onnx: bool = True  # False: upstream publishes no graphs (``note`` says why); export the model instead

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PullRecord:
        return cls(**{**data, "files": _pins(data.get("files", {})),
                      "languages": tuple(data.get("languages") or cls.languages)})

    def to_dict(self) -> dict[str, Any]:
        if not self.onnx:  # nothing to pull: only why
            return {"onnx": False, **({"note": self.note} if self.note else {})}
        files = {f: pin.to_dict() for f, pin in self.files.items()}
        return {"revision": self.revision, "languages": list(self.languages), **({"files": files} if files else {}),
                **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class LockEntry:
    name: str
    repo: str | None  # upstream Hugging Face id; None for a model trained here (see provenance)
    revision: str | None  # full 40-hex commit; None while unknown (the export resolves and records it)
    license: str
    family: str
    max_length: int
    activation: str
    recipe: Recipe | None = None  # None for a model trained here
    artifacts: Artifacts = field(default_factory=Artifacts)
    notes: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)  # base weights, data, script: trained here
    pull: PullRecord | None = None  # where upstream publishes ONNX graphs, if anywhere
    upstream_files: dict[str, UpstreamPin] = field(default_factory=dict)  # at ``revision``
    upstream_files_source: str = ""  # where the pins come from

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("repo", "revision", "license", "family", "max_length", "activation", "notes")}
        if self.recipe is not None:
            data["recipe"] = self.recipe.to_dict()
        if self.provenance:
            data["provenance"] = self.provenance
        if self.pull:
            data["pull"] = self.pull.to_dict()
        if self.upstream_files:
            data["upstream_files"] = {f: pin.to_dict() for f, pin in self.upstream_files.items()}
            data["upstream_files_source"] = self.upstream_files_source
        return {**data, "artifacts": self.artifacts.to_dict()}


def lock_path() -> Path:
    """``$RERANKER_ONNX_LOCK`` (a private registry), else the lock shipped in the package (wheel),
    else the one at the repository root (editable install)."""
    env = os.environ.get("RERANKER_ONNX_LOCK")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / LOCK_NAME, here.parent / LOCK_NAME):
        if candidate.is_file():
            return candidate
    raise ManifestError(f"{LOCK_NAME} not found beside the package; reinstall reranker-onnx")


def parse_lock(data: Any, where: str = LOCK_NAME) -> dict[str, LockEntry]:
    """Entries of a parsed lock; anything malformed is one ManifestError naming ``where``."""
    if not isinstance(data, dict) or data.get("lock_version") != LOCK_VERSION:
        version = data.get("lock_version") if isinstance(data, dict) else None
        raise ManifestError(f"{where}: lock_version {version!r} is not {LOCK_VERSION}")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ManifestError(f'{where}: "models" must be an object of model entries')
    entries = {}
    for name, e in models.items():
        try:
            entries[name] = LockEntry(
                name=name,
                repo=e.get("repo"),
                revision=e.get("revision"),
                license=e["license"],
                family=e["family"],
                max_length=int(e["max_length"]),
                activation=e["activation"],
                recipe=Recipe.from_dict(e["recipe"]) if "recipe" in e else None,
                artifacts=Artifacts.from_dict(e.get("artifacts", {})),
                notes=e.get("notes", ""),
                provenance=e.get("provenance", {}),
                pull=PullRecord.from_dict(e["pull"]) if e.get("pull") else None,
                upstream_files=_pins(e.get("upstream_files", {})),
                upstream_files_source=e.get("upstream_files_source", ""),
            )
        except KeyError as exc:
            raise ManifestError(f"{where}: model {name!r} lacks the field {exc}") from None
        except (AttributeError, TypeError, ValueError, OverflowError):
            raise ManifestError(f"{where}: model {name!r} has a malformed entry") from None
        _check_entry(entries[name], where)
    return entries


def _check_entry(entry: LockEntry, where: str) -> None:
    bad = f"{where}: model {entry.name!r}"
    if not all(isinstance(v, str) for v in (entry.license, entry.family, entry.activation, entry.notes)):
        raise ManifestError(f"{bad}: license, family, activation and notes must be strings")
    if not all(v is None or isinstance(v, str) for v in (entry.repo, entry.revision, entry.artifacts.url,
                                                          entry.artifacts.bundled)):
        raise ManifestError(f"{bad}: repo, revision, url and bundled must be strings")
    if not all(isinstance(f.sha256, str) and f.size >= 0 for f in entry.artifacts.files.values()):
        raise ManifestError(f'{bad}: every file in "artifacts" needs a "sha256" string and a "size" integer')
    pull = entry.pull
    if pull and not (isinstance(pull.onnx, bool) and all(isinstance(v, str) for v in (pull.note, pull.revision or "",
                                                                                        *pull.languages))):
        raise ManifestError(f'{bad}: "pull" needs "onnx" true or false, and strings for revision (or null), note, languages')


def dump_lock(entries: dict[str, LockEntry]) -> str:
    """The lock's text for ``entries``: the one writer of its format (export/lockfile.py writes it to disk)."""
    data = {"lock_version": LOCK_VERSION, "models": {name: e.to_dict() for name, e in entries.items()}}
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def load_lock(path: Path | None = None) -> dict[str, LockEntry]:
    """Read the lock at ``path`` (default :func:`lock_path`); a bad file is one ManifestError."""
    path = Path(path or lock_path())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such models.lock (check RERANKER_ONNX_LOCK)") from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read it ({exc.strerror or exc}); check RERANKER_ONNX_LOCK") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({type(exc).__name__}); check RERANKER_ONNX_LOCK") from None
    return parse_lock(data, str(path))


def lookup(name: str, path: Path | None = None) -> LockEntry:
    entries = load_lock(path)
    if name in entries:
        return entries[name]
    # Accept the upstream id too ("cross-encoder/ms-marco-TinyBERT-L2-v2").
    for entry in entries.values():
        if entry.repo == name:
            return entry
    raise ModelNotFoundError(f"unknown model {name!r}; known models: {', '.join(sorted(entries))}")
