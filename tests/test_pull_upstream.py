"""``rerank-onnx pull`` of upstream's own ONNX graphs, against the hub stand-in serving small seed replicas.

The replicas (``testing.replicas``) publish the ``onnx/`` sets upstream publishes (facts §C), made the way
upstream made them; the stand-in (``testing.hub``) serves them under the real repo ids, with faults on
demand. A test lock copies models.lock's seed entries and their pull records, with the file pins replaced
by the replica's hashes (the real pins are of the real files, which no test has).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reranker_onnx import DownloadError, Reranker, cpu
from reranker_onnx.agreement import shipped_pairs
from reranker_onnx.manifest import read_manifest
from reranker_onnx.pull import pull_model
from reranker_onnx.registry import load_lock
from reranker_onnx.store import store_dir

replicas = pytest.importorskip("testing.replicas")
from testing.hub import Fault, HubServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ["ms-marco-TinyBERT-L2-v2", "mmarco-mMiniLMv2-L12-H384-v1", "japanese-reranker-xsmall-v2",
         "jina-reranker-v1-tiny-en"]
TINYBERT, JINA, JA_V2 = SEEDS[0], SEEDS[3], SEEDS[2]
REPLICA_MAIN = "5" * 40  # the commit the stand-in's main points to for a seed the lock pins no pull revision for
CONFIG_FILES = {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "config_sentence_transformers.json"}


def replica(name: str) -> Path:
    return replicas.cached(name, "small", with_onnx=True)


class StandIn:
    """The stand-in and a test lock: ``publish(name)`` serves a seed's replica at the pull revision
    models.lock gives it (or, with none, as main) and re-points the lock's pins at the replica's bytes."""

    def __init__(self, server: HubServer, lock: Path) -> None:
        self.server, self.lock = server, lock
        self.real = load_lock(ROOT / "models.lock")

    def publish(self, *names: str) -> HubServer:
        data = json.loads(self.lock.read_text(encoding="utf-8"))
        for name in names:
            pull = self.real[name].pull.to_dict()
            blobs = self.server.add_folder(str(self.real[name].repo), replica(name), pull.get("revision") or REPLICA_MAIN)
            pinned = set(pull.get("files") or {}) & set(blobs)  # the real pins, re-pointed at the replica's bytes
            pull["files"] = {rel: {"sha256": blobs[rel].sha256} for rel in sorted(pinned | {"tokenizer.json"})}
            data["models"][name]["pull"] = pull
        self.lock.write_text(json.dumps(data), encoding="utf-8")
        return self.server


@pytest.fixture()
def stand_in(tmp_path, monkeypatch):
    server = HubServer()
    server.patch_client(monkeypatch, tmp_path / "hf-home")
    lock = tmp_path / "models.lock"
    lock.write_text((ROOT / "models.lock").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(lock))
    yield StandIn(server, lock)
    server.stop()


@pytest.fixture()
def hub(stand_in):
    """The stand-in serving jina's replica (the smallest set with two-input graphs)."""
    return stand_in.publish(JINA)


def _store_is_clean(name: str) -> bool:
    root = store_dir()
    return not (root / name).exists() and not list(root.glob(f".{name}.*"))


def _gets(server: HubServer) -> set[str]:
    return {path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in server.requests
            if method == "GET" and "/resolve/" in path}


def _host_variant() -> str:
    return cpu.choose_variant(cpu.detect(), cpu.VARIANTS).variant


@pytest.mark.parametrize("name", SEEDS)
def test_pull_downloads_what_this_host_needs_validates_and_scores(stand_in, name):
    hub = stand_in.publish(name)
    directory = pull_model(name, min_ndcg=0.0)  # random replica weights: the gate is tested on its own below
    manifest = read_manifest(directory)
    variant = _host_variant()
    assert set(manifest.variants) == {"fp32", variant}
    chosen = manifest.variants[variant]
    assert chosen.quantization.extra["read_from_graph"] and chosen.fidelity["pairs"] == len(
        shipped_pairs(load_lock()[name].pull.languages).pairs)
    assert {"spearman", "ndcg_at_10", "top1_agreement"} <= set(chosen.fidelity)
    assert manifest.export["pull"]["validation"]["passed"]
    graphs = {f for f in _gets(hub) if f.endswith(".onnx")}
    assert graphs == {"onnx/model.onnx", chosen.file} or (
        "onnx/model.onnx" in graphs and chosen.file in graphs and len(graphs) <= 4)  # read at most 3 int8 graphs
    assert _gets(hub) - graphs <= CONFIG_FILES
    assert manifest.source["repo"] == load_lock()[name].repo and len(manifest.source["revision"]) == 40
    from reranker_onnx.graphs import inspect_graph

    assert manifest.inputs == inspect_graph(replica(name) / chosen.file).inputs  # fed what the graph takes
    if name == JINA:  # upstream's graphs take no segment ids; where a graph does, jina's must all be zero
        encoded = Reranker(name).scorer.encoder.encode([("what is gzip", "gzip compresses files")])
        assert "token_type_ids" not in manifest.inputs or not any(encoded.type_ids[0])
    scores = Reranker(name).score("compress files", ["gzip compresses files", "a web browser"])
    assert len(scores) == 2 and all(np.isfinite(scores))
    assert not list(store_dir().glob(f".{name}.*"))  # no leftovers beside the installed directory


def test_the_seed_without_upstream_onnx_points_to_export(stand_in):
    hub = stand_in.server
    with pytest.raises(DownloadError, match=r"rerank-onnx export japanese-reranker-cross-encoder-xsmall-v1"):
        pull_model("japanese-reranker-cross-encoder-xsmall-v1")
    assert not hub.requests


def test_an_upstream_id_pulls_too(stand_in):
    stand_in.publish(TINYBERT)
    assert pull_model("cross-encoder/ms-marco-TinyBERT-L2-v2", min_ndcg=0.0) == store_dir() / TINYBERT


def test_a_lock_without_a_pull_revision_resolves_main_once_and_records_it(stand_in):
    hub = stand_in.publish(TINYBERT)
    assert load_lock()[TINYBERT].pull.revision is None  # the export pin predates onnx/ (facts)
    messages: list[str] = []
    pull_model(TINYBERT, min_ndcg=0.0, say=messages.append)
    assert read_manifest(store_dir() / TINYBERT).source["revision"] == REPLICA_MAIN
    assert any(f"resolved cross-encoder/ms-marco-TinyBERT-L2-v2 main to {REPLICA_MAIN}" in m for m in messages)
    pins = json.loads((store_dir() / "pull-pins.json").read_text())
    assert pins[TINYBERT]["revision"] == REPLICA_MAIN
    hub.requests.clear()
    pull_model(TINYBERT, force=True, min_ndcg=0.0)
    assert not any(path.endswith("/revision/main") for _, path in hub.requests)


def test_below_the_gate_nothing_is_installed_and_the_fallbacks_are_named(hub):
    with pytest.raises(DownloadError) as caught:
        pull_model(JINA, min_ndcg=1.01)
    message = str(caught.value)
    assert "NDCG@10" in message and "Spearman" in message and "below the gate 1.01" in message
    assert f"rerank-onnx pull {JINA} --variant fp32" in message and "--graph" in message
    assert _store_is_clean(JINA)
    directory = pull_model(JINA, variant="fp32")
    assert set(read_manifest(directory).variants) == {"fp32"}


def test_no_validate_skips_the_fp32_graph_and_says_so(hub):
    directory = pull_model(JINA, validate=False)
    manifest = read_manifest(directory)
    assert "onnx/model.onnx" not in _gets(hub) and "fp32" not in manifest.variants
    assert manifest.export["pull"]["validation"] == {"skipped": "--no-validate"}


def test_an_avx2_host_never_gets_the_saturating_kernel(stand_in, monkeypatch):
    """ja-v2 publishes full-range int8 graphs only: on AVX2 without VNNI they run on the exact kernel."""
    stand_in.publish(JA_V2, TINYBERT)
    avx2 = cpu.CpuFeatures("x86_64", frozenset({"avx2", "fma"}), source="test")
    monkeypatch.setattr(cpu, "detect", lambda: avx2)
    directory = pull_model(JA_V2, min_ndcg=0.0)
    variant = read_manifest(directory).variants["avx2"]
    assert variant.quantization.weight_type == "qint8" and not variant.quantization.reduce_range
    assert "exact kernel" in variant.quantization.why
    assert Reranker(JA_V2).info.exact_int8
    directory = pull_model(TINYBERT, min_ndcg=0.0)  # the sentence-transformers set has a uint8 graph for AVX2
    variant = read_manifest(directory).variants["avx2"]
    assert variant.quantization.weight_type == "quint8" and not Reranker(TINYBERT).info.exact_int8


def test_an_arm64_host_gets_an_int8_graph_for_arm(stand_in, monkeypatch):
    stand_in.publish(JA_V2)
    pi5 = cpu.CpuFeatures("arm64", frozenset({"asimd", "asimddp"}), core_name="Cortex-A76", source="test")
    monkeypatch.setattr(cpu, "detect", lambda: pi5)
    manifest = read_manifest(pull_model(JA_V2, min_ndcg=0.0, validate=False))
    quantization = manifest.variants["arm64"].quantization
    assert quantization.extra["symmetric"] and quantization.per_channel


def test_a_models_lock_pin_that_does_not_match_refuses_the_file(hub, monkeypatch, tmp_path):
    lock = json.loads(Path(os.environ["RERANKER_ONNX_LOCK"]).read_text())
    lock["models"][JINA]["pull"]["files"]["tokenizer.json"] = {"sha256": "0" * 64}
    Path(os.environ["RERANKER_ONNX_LOCK"]).write_text(json.dumps(lock))
    with pytest.raises(DownloadError, match=r"not models\.lock's pin"):
        pull_model(JINA, min_ndcg=0.0)
    assert _store_is_clean(JINA)


# -- faults: the store stays as it was, and the next pull succeeds --------------------------------------


@pytest.mark.parametrize("fault", [
    Fault("corrupt", match="onnx/model.onnx", after=100),
    Fault("drop", match="onnx/model.onnx", after=1000),
    Fault("status", match="onnx/model.onnx", status=404),
    Fault("status", match="tokenizer.json", status=403),
])
def test_a_broken_download_installs_nothing_and_the_next_pull_succeeds(hub, fault):
    hub.faults.append(fault)
    with pytest.raises(DownloadError) as caught:
        pull_model(JINA, min_ndcg=0.0)
    assert "\n" not in str(caught.value) and "run pull again" in str(caught.value) or "404" in str(caught.value)
    assert _store_is_clean(JINA)
    hub.faults.clear()
    assert Reranker(pull_model(JINA, min_ndcg=0.0)).score("q", ["p"])


def test_a_connection_dropped_once_is_resumed(hub):
    hub.faults.append(Fault("drop", match="onnx/model.onnx", after=5000, times=1))
    assert Reranker(pull_model(JINA, min_ndcg=0.0)).score("q", ["p"])  # and the bytes matched the hub's sha256
    assert [m for m, p in hub.requests if p.endswith("/onnx/model.onnx")].count("GET") >= 2


def test_a_trickle_past_the_read_timeout_fails_cleanly(hub, monkeypatch):
    from huggingface_hub import constants

    from reranker_onnx import hub as client

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    monkeypatch.setattr(client, "ATTEMPTS", 1)  # the client's own retries already make it slow
    hub.faults.append(Fault("trickle", match="onnx/model_int8.onnx", chunk=256, delay=1.0))
    with pytest.raises(DownloadError, match="run pull again"):
        pull_model(JINA, min_ndcg=0.0)
    assert _store_is_clean(JINA)
    hub.faults.clear()
    pull_model(JINA, min_ndcg=0.0)


def test_kill_9_mid_pull_leaves_the_store_as_it_was(hub, tmp_path):
    hub.faults.append(Fault("trickle", match="onnx/model.onnx", chunk=2048, delay=0.05))
    env = hub.environ(tmp_path / "hf-home", dict(os.environ))
    code = f"from reranker_onnx.pull import pull_model; pull_model({JINA!r}, min_ndcg=0.0)"
    child = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(p.endswith("onnx/model.onnx") for _, p in hub.requests):
        time.sleep(0.05)
    time.sleep(0.3)  # mid-file
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert _store_is_clean(JINA)
    hub.faults.clear()
    assert Reranker(pull_model(JINA, min_ndcg=0.0)).score("q", ["p"])


# -- offline --------------------------------------------------------------------------------------------


def _refuse(self, address, *args, **kwargs):
    raise AssertionError(f"an offline pull opened a socket to {address}")


@pytest.fixture()
def no_sockets(monkeypatch):
    """Any attempt to open a connection fails the test (and is remembered, should the error be swallowed)."""
    opened: list[object] = []

    def refuse(self, address, *args, **kwargs):
        opened.append(address)
        _refuse(self, address)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return opened


def test_offline_without_a_cached_copy_says_so_and_opens_no_socket(hub, monkeypatch, no_sockets):
    HubServer.go_offline(monkeypatch)
    with pytest.raises(DownloadError, match="offline"):
        pull_model(JINA, min_ndcg=0.0)
    assert not no_sockets and not hub.requests and _store_is_clean(JINA)


def test_offline_pull_reuses_what_an_online_pull_cached(hub, monkeypatch):
    pull_model(JINA, min_ndcg=0.0)
    installed = read_manifest(store_dir() / JINA)
    hub.stop()
    HubServer.go_offline(monkeypatch)
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    again = read_manifest(pull_model(JINA, force=True, min_ndcg=0.0))
    assert again.files == installed.files and again.source["revision"] == installed.source["revision"]


# -- info --------------------------------------------------------------------------------------------------


def test_info_explains_the_choice_for_a_pulled_model(hub, capsys):
    from reranker_onnx.cli import main

    assert main(["pull", JINA]) in (0, 1)  # the replica's random weights may miss the real gate
    capsys.readouterr()
    pull_model(JINA, force=True, min_ndcg=0.0)
    assert main(["info", "--model", JINA]) == 0
    out = capsys.readouterr().out
    variant = _host_variant()
    assert f"chosen: {variant}" in out and "source: upstream ONNX of jinaai/jina-reranker-v1-tiny-en" in out
    assert "read onnx/" in out and "validated on this device" in out


# -- the same scores as our own export ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", SEEDS)
def test_pulled_upstream_scores_equal_our_export_of_the_same_replica(stand_in, name, tmp_path):
    """Per family: upstream's fp32 graph, with the template, truncation and activation read from the repo,
    scores the shipped pairs as the project's export of the same checkpoint does (fp32 within 1e-4)."""
    from export.pipeline import ExportOptions, export_model

    stand_in.publish(name)
    pulled = pull_model(name, variant="fp32")
    ours = tmp_path / "ours"
    export_model(replica(name), ours, ExportOptions(name=name, source={"path": "replica"}, gate=False,
                                                    queries_per_language=2, group_size=4, threads=2))
    pairs = shipped_pairs(("en", "ja")).pairs
    a = Reranker(pulled, variant="fp32", max_length=512)
    b = Reranker(ours, variant="fp32", max_length=512)
    assert a.info.activation == b.info.activation
    diff = np.max(np.abs(np.asarray(a.predict(pairs)) - np.asarray(b.predict(pairs))))
    assert diff <= 1e-4, f"{name}: pulled fp32 differs from our export by {diff:.2e}"


@pytest.mark.slow
def test_pulled_modernbert_scores_equal_transformers_pair_by_pair(stand_in):
    """ModernBERT (ja-v2): the pair template transformers builds from tokenizer_config.json (Llama-style)
    and upstream's fp32 graph give transformers' own scores. Compared one pair at a time: the Llama
    tokenizer pads on the left, where ModernBERT's CLS pooling reads, so a left-padded batch is not a
    reference (the export's reference pads on the right for that reason); the runtime pads on the
    right too, which leaves every pair's score as it is alone."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    stand_in.publish(JA_V2)
    pulled = Reranker(pull_model(JA_V2, variant="fp32"), variant="fp32", max_length=512)
    folder = replica(JA_V2)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    pairs = shipped_pairs(("ja", "en")).pairs[::4]
    expected = []
    with torch.no_grad():
        for query, passage in pairs:
            features = tokenizer(query, passage, truncation=True, max_length=512, return_tensors="pt")
            assert features["input_ids"][0].tolist() == pulled.scorer.encoder.encode([(query, passage)]).ids[0]
            expected.append(torch.sigmoid(model(**features).logits[0, 0]).item())
    assert pulled.info.activation == "sigmoid"
    assert np.max(np.abs(np.asarray(pulled.predict(pairs)) - np.asarray(expected))) <= 1e-4


def test_the_cli_pulls_and_refuses_in_one_line(stand_in, capsys):
    from reranker_onnx.cli import main

    stand_in.publish(JINA)
    assert main(["pull", JINA, "--no-validate"]) == 0
    captured = capsys.readouterr()
    assert f"{JINA}: ready at" in captured.out and "read onnx/" in captured.err
    assert main(["list"]) == 0
    listing = {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()}
    assert listing[JINA] == "installed" and listing[TINYBERT] == "pullable"
    assert listing["japanese-reranker-cross-encoder-xsmall-v1"] == "locally"  # "export locally"
    assert main(["pull", "japanese-reranker-cross-encoder-xsmall-v1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rerank-onnx export japanese-reranker-cross-encoder-xsmall-v1" in err[0]
