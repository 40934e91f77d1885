"""``rerank-onnx pull`` of a seed whose upstream repo publishes its own ONNX graphs: no torch, no export.

1. Pin: the revision in models.lock's ``pull`` record (one that holds the graphs; it may differ from the
   export's pin), else the one a first online pull resolved and recorded in the store's ``pull-pins.json``.
2. Download only what this host needs (hub.py: the Hugging Face cache, every file checked): config and
   tokenizer files, the int8 graph for this CPU, and the fp32 graph when validating.
3. Choose by reading each graph (graphs.py), not its name: the name only orders the downloads.
4. Validate on the device: the int8 graph against upstream's fp32 graph on real pairs shipped in the
   package; below the gate nothing is installed, and the message gives the numbers and the fallbacks.
5. Write the manifest from the repo's configuration (repo_files.py) and the graphs, and install the folder
   atomically into the store.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import cpu, hub
from .agreement import INT8_MIN_NDCG, ranking_agreement, shipped_pairs
from .errors import DownloadError
from .graphs import GraphInfo, inspect_graph
from .manifest import MANIFEST_NAME, Manifest, Quantization, Variant, file_entry
from .registry import LockEntry
from .repo_files import activation_of, pair_tokenizer
from .store import staged, store_dir

log = logging.getLogger(__name__)

FP32_GRAPH = "onnx/model.onnx"
TOKENIZER = "tokenizer.json"
REPO_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "config_sentence_transformers.json")
PINS_NAME = "pull-pins.json"
VALIDATION_MAX_LENGTH = 512  # jina's 8192 would need GBs per pair; ranking agreement shows at 512
# Names that never hold a dynamically quantized int8 graph (optimized fp32, fp16, 4-bit): not downloaded.
NOT_INT8 = re.compile(r"_(O[1-4]|fp16|q4f16|q4|bnb4)\.onnx$")
# The order in which graphs are downloaded and read for each host variant. A hint only: what a graph
# holds decides (fit below); upstream names follow sentence-transformers' and transformers.js' habits.
HINTS: dict[str, tuple[str, ...]] = {
    "avx512_vnni": ("model_qint8_avx512_vnni", "model_qint8_avx512", "model_int8", "model_quantized",
                    "model_qint8_arm64", "model_qint8_avx2", "model_quint8_avx2", "model_uint8"),
    "avx2": ("model_quint8_avx2", "model_uint8", "model_qint8_avx2", "model_quantized", "model_int8",
             "model_qint8_arm64", "model_qint8_avx512_vnni", "model_qint8_avx512"),
    "arm64": ("model_qint8_arm64", "model_int8", "model_quantized", "model_qint8_avx512_vnni", "model_qint8_avx512",
              "model_qint8_avx2", "model_uint8", "model_quint8_avx2"),
}
MAX_GRAPHS_READ = 3  # int8 graphs downloaded at most while looking for one that fits without a slower kernel


def fit(info: GraphInfo, variant: str) -> tuple[int, str] | None:
    """How well a graph suits a host variant: (0 best .. 2 usable only with exact kernels, why), or None."""
    if info.kind != "int8":
        return None
    if variant == "avx512_vnni":
        if info.weight_type == "qint8":
            return 0, "int8 weights: VNNI sums u8×s8 products in 32 bits"
        return 1, "uint8 weights run on the slower u8×u8 kernel"
    if variant == "avx2":
        if info.weight_type == "quint8":
            return 0, "uint8 weights take the u8×u8 kernel, which cannot saturate"
        if info.reduce_range:
            return 0, "int8 weights within ±64 cannot saturate the u8×s8 kernel's 16-bit sums"
        return 2, ("full-range int8 weights would saturate the fast u8×s8 kernel of AVX2 without VNNI: "
                   "onnxruntime's exact kernel is used instead (session.x64quantprecision), slower")
    if variant == "arm64":
        if info.weight_type == "qint8" and info.symmetric:
            return 0, "symmetric int8 weights: the ARM int8 kernels sum in 32 bits"
        return 1, "the ARM int8 kernels sum in 32 bits"
    return None


@dataclass
class Candidate:
    rel: str  # path in the repo
    path: Path
    sha256: str
    info: GraphInfo
    fit: tuple[int, str] | None


@dataclass
class PullOptions:
    offline: bool = False
    force: bool = False
    validate: bool = True
    variant: str | None = None  # install this variant (fp32 included) instead of the host's
    graph: str | None = None  # use this upstream graph (repo path) as the int8 graph
    min_ndcg: float = INT8_MIN_NDCG
    progress: bool | None = None  # progress bars; None: when stderr is a terminal
    say: Callable[[str], None] = field(default=lambda message: log.warning("%s", message))


# -- pins ------------------------------------------------------------------------------------------


def _pins_path() -> Path:
    return store_dir() / PINS_NAME


def _recorded_pin(name: str) -> str | None:
    try:
        return json.loads(_pins_path().read_text(encoding="utf-8")).get(name, {}).get("revision")
    except (OSError, ValueError, AttributeError):
        return None


def _record_pin(name: str, repo: str, revision: str) -> None:
    path = _pins_path()
    try:
        pins = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pins = {}
    pins[name] = {"repo": repo, "revision": revision, "resolved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{PINS_NAME}-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(pins, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def pull_revision(entry: LockEntry, offline: bool, say: Callable[[str], None]) -> tuple[str, str]:
    """(commit, where it came from): models.lock's, else the one recorded at a first pull, else main resolved now."""
    if entry.pull and entry.pull.revision:
        return entry.pull.revision, "models.lock pull record"
    recorded = _recorded_pin(entry.name)
    if recorded:
        return recorded, f"resolved at a first pull and recorded in {_pins_path()}"
    if offline:
        raise DownloadError(
            f"{entry.name}: models.lock pins no revision with ONNX graphs and none was recorded by an earlier pull; "
            "pull once online (HF_HUB_OFFLINE unset)"
        )
    revision = hub.resolve(str(entry.repo), "main")
    _record_pin(entry.name, str(entry.repo), revision)
    say(f"{entry.name}: models.lock pins no revision with ONNX graphs; resolved {entry.repo} main to {revision} "
        f"and recorded it in {_pins_path()} (later pulls use it; add it to models.lock's pull record)")
    return revision, f"main resolved at this pull, recorded in {_pins_path()}"


# -- choosing the graph ----------------------------------------------------------------------------


def _order(graphs: list[str], variant: str) -> list[str]:
    hints = HINTS.get(variant, ())
    stem = {rel: Path(rel).name.removesuffix(".onnx") for rel in graphs}
    ranked = [rel for h in hints for rel in graphs if stem[rel] == h]
    return ranked + sorted(rel for rel in graphs if rel not in ranked)


class _Fetcher:
    """Downloads and checks files of one repo at one revision, remembering what it got."""

    def __init__(self, entry: LockEntry, revision: str, remote: dict[str, hub.RemoteFile], opts: PullOptions) -> None:
        self.entry, self.revision, self.remote, self.opts = entry, revision, remote, opts
        self.pins = {rel: pin.sha256 for rel, pin in (entry.pull.files if entry.pull else {}).items() if pin.sha256}
        self.got: dict[str, tuple[Path, str]] = {}

    def __call__(self, rel: str) -> tuple[Path, str]:
        if rel not in self.got:
            remote = None if self.opts.offline else self.remote.get(rel)
            size = self.remote.get(rel).size if self.remote.get(rel) else None
            if size and rel.endswith(".onnx"):
                self.opts.say(f"fetching {rel} ({size / 1e6:.1f} MB, from the Hugging Face cache if it is there)")
            self.got[rel] = hub.download(str(self.entry.repo), self.revision, rel, remote, self.pins.get(rel),
                                         self.opts.offline, self.opts.progress)
        return self.got[rel]

    def provenance(self, rel: str) -> dict[str, Any]:
        remote = self.remote.get(rel)
        checked = ("hub LFS sha256" if remote and remote.sha256 else "hub git blob id" if remote and remote.blob_id
                   else "Hugging Face cache content address")
        return {"sha256": self.got[rel][1], "checked_against": checked + (" and models.lock" if rel in self.pins else "")}


def choose_graph(fetch: _Fetcher, graphs: list[str], variant: str, forced: str | None,
                 say: Callable[[str], None]) -> tuple[Candidate | None, list[Candidate]]:
    """Download and read graphs in hint order until one fits ``variant`` without a slower kernel."""
    tried: list[Candidate] = []
    order = [forced] if forced else [g for g in _order(graphs, variant) if not NOT_INT8.search(g)]
    for rel in order:
        if not forced and len([c for c in tried if c.info.kind == "int8"]) >= MAX_GRAPHS_READ:
            break
        path, sha256 = fetch(rel)
        try:
            info = inspect_graph(path)
        except ValueError as exc:
            raise DownloadError(str(exc)) from None
        candidate = Candidate(rel, path, sha256, info, fit(info, variant))
        tried.append(candidate)
        say(f"read {rel}: {info.describe()}" + (f" -> {variant}: {candidate.fit[1]}" if candidate.fit else
                                                 f" -> not an int8 graph for {variant}"))
        if forced or (candidate.fit and candidate.fit[0] == 0):
            break
    usable = [c for c in tried if c.fit is not None]
    if forced and not usable:
        raise DownloadError(f"{forced} is not an int8 graph this host can use as {variant}: {tried[0].info.describe()}")
    return (min(usable, key=lambda c: c.fit[0]) if usable else None), tried  # type: ignore[index]


# -- the pull ----------------------------------------------------------------------------------------


def _link(source: Path, dest: Path) -> None:
    """Hard-link a file out of the Hugging Face cache (no second copy on a small board), else copy it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source.resolve(), dest)
    except OSError:
        shutil.copyfile(source, dest)


def _read_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DownloadError(f"{path.name} of the upstream repo is not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _max_length(entry: LockEntry, config: dict[str, Any]) -> int:
    """models.lock's limit, capped by the positions the model has (XLM-R reserves two)."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return entry.max_length
    reserved = 2 if config.get("model_type") in ("xlm-roberta", "roberta") else 0
    return min(entry.max_length, positions - reserved)


def _graph_labels(path: Path) -> int:
    import onnxruntime as ort

    shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_outputs()[0].shape
    return shape[-1] if shape and isinstance(shape[-1], int) else 1


def _measure(root: Path, manifest: Manifest, variant: str, languages: tuple[str, ...]) -> dict[str, Any]:
    """int8 against fp32 on the shipped pairs, through the runtime itself (raw logits)."""
    from .reranker import Reranker

    pairs = shipped_pairs(languages)
    length = min(manifest.max_length, VALIDATION_MAX_LENGTH)
    started = time.perf_counter()
    fp32 = np.asarray(Reranker(root, variant="fp32", max_length=length).predict(pairs.pairs))
    int8 = np.asarray(Reranker(root, variant=variant, max_length=length).predict(pairs.pairs))
    return {**ranking_agreement(fp32, int8, pairs.groups), "pairs": len(pairs.pairs), "queries": len(pairs.groups),
            "languages": list(languages), "max_length": length, "seconds": round(time.perf_counter() - started, 1)}


def pull_upstream(entry: LockEntry, opts: PullOptions) -> Path:
    """Pull ``entry`` from upstream's own ONNX graphs into the store; return the installed directory."""
    if not entry.repo or not entry.pull or not entry.pull.onnx:
        why = (entry.pull and entry.pull.note) or "its upstream repo publishes no ONNX graphs"
        raise DownloadError(
            f"{entry.name}: nothing to pull ({why}); export it instead: "
            f"pip install \"reranker-onnx[export]\" and run `rerank-onnx export {entry.name}`"
        )
    target = store_dir() / entry.name
    if (target / MANIFEST_NAME).is_file() and not opts.force:
        log.info("%s is already installed at %s", entry.name, target)
        return target
    repo, say = str(entry.repo), opts.say
    revision, revision_from = pull_revision(entry, opts.offline, say)
    remote = hub.cached_listing(repo, revision) if opts.offline else hub.listing(repo, revision)
    graphs = sorted(rel for rel in remote if re.fullmatch(r"onnx/[^/]+\.onnx", rel))
    if not graphs:
        where = "in the Hugging Face cache (offline)" if opts.offline else "upstream"
        raise DownloadError(
            f"{entry.name}: {repo}@{revision[:12]} has no onnx/ graphs {where}; "
            f"export it instead with `rerank-onnx export {entry.name}` (pip install \"reranker-onnx[export]\")"
        )
    if TOKENIZER not in remote:
        raise DownloadError(f"{entry.name}: {repo}@{revision[:12]} has no tokenizer.json; export it instead")
    fetch = _Fetcher(entry, revision, remote, opts)
    repo_files = {rel: fetch(rel)[0] for rel in REPO_FILES if rel in remote}

    host = cpu.detect()
    wanted = cpu.choose_variant(host, cpu.VARIANTS, cpu.requested_variant(opts.variant)).variant
    chosen, tried = (None, []) if wanted == "fp32" else choose_graph(fetch, graphs, wanted, opts.graph, say)
    variant = wanted if chosen else "fp32"
    if chosen is None and wanted != "fp32":
        say(f"{entry.name}: no upstream int8 graph suits {wanted}; installing the fp32 graph")
    need_fp32 = variant == "fp32" or opts.validate
    if need_fp32 and FP32_GRAPH not in remote:
        raise DownloadError(f"{entry.name}: {repo}@{revision[:12]} has no {FP32_GRAPH} to validate against; "
                            "pull with --no-validate to install the int8 graph unchecked")
    if need_fp32:
        fetch(FP32_GRAPH)

    with staged(target) as tmp:  # installed only if every check passes; a killed pull's folder is swept later
        manifest = _build(tmp, entry, (revision, revision_from), fetch, repo_files, chosen, tried, variant, need_fp32,
                          host, opts)
    say(f"{entry.name}: installed {', '.join(sorted(manifest.variants))} at {target}")
    return target


def _build(root: Path, entry: LockEntry, revision: tuple[str, str], fetch: _Fetcher, repo_files: dict[str, Path],
           chosen: Candidate | None, tried: list[Candidate], variant: str, with_fp32: bool,
           host: cpu.CpuFeatures, opts: PullOptions) -> Manifest:
    config = _read_json(repo_files.get("config.json"))
    tokenizer_text, tokenizer_note = pair_tokenizer(
        repo_files[TOKENIZER].read_text(encoding="utf-8"), _read_json(repo_files.get("tokenizer_config.json")),
        _read_json(repo_files.get("special_tokens_map.json")),
    )
    (root / TOKENIZER).write_text(tokenizer_text, encoding="utf-8")
    variants: dict[str, Variant] = {}
    graphs: dict[str, GraphInfo] = {}
    if with_fp32:
        _link(fetch.got[FP32_GRAPH][0], root / FP32_GRAPH)
        info = inspect_graph(root / FP32_GRAPH)
        if info.kind != "fp32":
            raise DownloadError(f"{FP32_GRAPH} of {entry.repo} is not an fp32 graph ({info.describe()})")
        graphs[FP32_GRAPH] = info
        variants["fp32"] = Variant(FP32_GRAPH)
    if chosen is not None:
        _link(chosen.path, root / chosen.rel)
        graphs[chosen.rel] = chosen.info
        recipe = {**chosen.info.recipe(), "variant": variant, "why": chosen.fit[1]}  # type: ignore[index]
        variants[variant] = Variant(chosen.rel, quantization=Quantization.from_dict(recipe))
    main_graph = graphs[chosen.rel if chosen else FP32_GRAPH]
    inputs = main_graph.inputs
    unknown = set(inputs) - {"input_ids", "attention_mask", "token_type_ids"}
    if unknown or any(g.inputs != inputs for g in graphs.values()):
        raise DownloadError(f"{entry.name}: the upstream graphs take inputs {sorted({i for g in graphs.values() for i in g.inputs})}, "
                            "which this runtime cannot feed consistently; export the model instead")
    activation, activation_why = activation_of(config, _read_json(repo_files.get("config_sentence_transformers.json")),
                                               _graph_labels(root / variants[variant].file))
    if activation != entry.activation:
        opts.say(f"{entry.name}: the repo's configuration gives {activation} scores, models.lock says {entry.activation}; "
                 f"following the repo ({activation_why})")
    files = {rel: file_entry(root / rel) for rel in sorted({TOKENIZER, *(v.file for v in variants.values())})}
    source = {
        "repo": entry.repo, "revision": revision[0], "revision_from": revision[1], "kind": "upstream-onnx",
        "files": {rel: fetch.provenance(rel) for rel in sorted(fetch.got)},
        "hub": hub.environment_note(),
    }
    pull_info: dict[str, Any] = {
        "host": {"arch": host.arch, "features": sorted(host.features), "model": host.model_name},
        "variant": variant,
        "graphs_read": [{"file": c.rel, "read": c.info.describe(), "fit": c.fit[1] if c.fit else None} for c in tried],
        "tokenizer": tokenizer_note,
        "activation": activation_why,
        "tools": _tools(),
    }

    def manifest(activation_now: str) -> Manifest:
        m = Manifest(name=entry.name, family=entry.family, source=source, inputs=inputs,
                     max_length=_max_length(entry, config), activation=activation_now,  # type: ignore[arg-type]
                     tokenizer=TOKENIZER, files=files, variants=variants, output=main_graph.outputs[0],
                     export={"pull": pull_info})
        m.write(root)
        return m

    manifest("identity")
    if chosen is not None and with_fp32 and opts.validate:
        languages = entry.pull.languages if entry.pull else ("en",)
        opts.say(f"validating {chosen.rel} against {FP32_GRAPH} on the device ({', '.join(languages)} pairs)")
        measured = _measure(root, manifest("identity"), variant, languages)
        pull_info["validation"] = {**measured, "gate_ndcg_at_10": opts.min_ndcg, "passed": measured["ndcg_at_10"] >= opts.min_ndcg}
        variants[variant] = Variant(chosen.rel, variants[variant].quantization, fidelity=measured)
        if measured["ndcg_at_10"] < opts.min_ndcg:
            others = [g for g in fetch.remote if re.fullmatch(r"onnx/[^/]+\.onnx", g) and not NOT_INT8.search(g)
                      and g not in (chosen.rel, FP32_GRAPH)]
            raise DownloadError(
                f"{entry.name}: {chosen.rel} keeps NDCG@10 {measured['ndcg_at_10']:.4f} (Spearman "
                f"{measured['spearman']:.4f}, top-1 {measured['top1_agreement']:.3f}) of upstream's fp32 graph on "
                f"{measured['pairs']} real pairs, below the gate {opts.min_ndcg}; nothing installed. Choose "
                f"`rerank-onnx pull {entry.name} --variant fp32` (exact, larger)"
                + (f" or another graph with --graph ({', '.join(sorted(others))})" if others else "")
            )
    elif chosen is not None:
        pull_info["validation"] = {"skipped": "--no-validate" if not opts.validate else "no fp32 graph"}
    return manifest(activation)


def _tools() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in ("onnxruntime", "tokenizers", "huggingface_hub", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return versions


def describe(manifest: Manifest, variant: str) -> list[str]:
    """Lines for ``rerank-onnx info``: where a pulled model's graph came from and why it suits this host."""
    pull = manifest.export.get("pull") if isinstance(manifest.export, dict) else None
    chosen = manifest.variants.get(variant)
    lines = []
    if pull:
        src = manifest.source
        lines.append(f"source: upstream ONNX of {src.get('repo')}@{str(src.get('revision'))[:12]}, pulled for "
                     f"{pull.get('host', {}).get('arch')} ({pull.get('variant')})")
        for tried in pull.get("graphs_read", []):
            lines.append(f"  read {tried['file']}: {tried['read']}" + (f" -> {tried['fit']}" if tried.get("fit") else ""))
        validation = pull.get("validation") or {}
        if "ndcg_at_10" in validation:
            lines.append(f"  validated on this device: NDCG@10 {validation['ndcg_at_10']:.4f}, Spearman "
                         f"{validation['spearman']:.4f}, top-1 {validation['top1_agreement']:.3f} vs fp32 "
                         f"({validation['pairs']} pairs, {', '.join(validation['languages'])})")
        elif validation:
            lines.append(f"  not validated ({validation.get('skipped')})")
    q = chosen.quantization if chosen is not None else None
    if q is not None and q.extra.get("read_from_graph"):
        lines.append(f"graph {chosen.file}: {q.weight_type} weights in {q.extra.get('weight_range')}, "  # type: ignore[union-attr]
                     f"{'reduced' if q.reduce_range else 'full'} range: {q.why}")
    return lines

