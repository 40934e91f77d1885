"""The batch job on Ray, started on this machine (2 CPUs, 2 actors): the same scores as one process.

Exactness: both engines score a shard in one ``Reranker.predict`` call, so they form the same batches
and the scores are equal bit for bit, on fp32 and on the int8 variant this host picks (whose per-batch
activation scales would otherwise make a score depend on its batch-mates).
"""

from __future__ import annotations

import os

import pytest

from reranker_onnx import IntegrityError, Reranker
from reranker_onnx.batch import BatchJob, Limits, rerank_dataset, run_batch
from reranker_onnx.batch.ray_engine import bundle_model, unpack_model

from test_batch import read_jsonl, write_rows

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # Ray starts in about 10 s and its actors in about 10 s more


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_ray_with_2_actors_equals_one_process_exactly(exported, tmp_path, local_ray):
    model = exported("bert")
    source = write_rows(tmp_path / "in.jsonl", 60)
    lines = source.read_text().splitlines()
    lines[10] = "{broken"
    source.write_text("\n".join(lines) + "\n")
    limits = Limits(shard_bytes=2_000, shard_rows=8)
    for variant in ("fp32", None):  # None: the int8 variant this CPU picks
        outputs = {}
        for engine in ("local", "ray"):
            out = tmp_path / f"{engine}-{variant}.jsonl"
            job = BatchJob(str(source), str(out), model=str(model), variant=variant, threads=1, top_k=2, limits=limits)
            report = run_batch(job, engine=engine, actors=2 if engine == "ray" else None, progress=False)
            assert report.exit_code == 3 and report.bad == 1
            outputs[engine] = out.read_bytes()
            if engine == "ray":
                assert 1 <= len(report.peak_rss) <= 2, "at most two actors, one Reranker each"
                assert os.getpid() not in report.peak_rss
        assert outputs["ray"] == outputs["local"], f"variant {variant}"
        assert len(read_jsonl(tmp_path / f"ray-{variant}.jsonl")) == 59


def test_rerank_dataset_adds_the_rerankers_scores(exported, local_ray):
    model = exported("bert")
    rows = [{"query": f"file tool {i % 3}", "text": "archive compress " * (i % 7), "n": i} for i in range(50)]
    scored = rerank_dataset(ray.data.from_items(rows), model, variant="fp32", actors=2, threads=1)
    got = sorted(scored.take_all(), key=lambda r: r["n"])
    expected = Reranker(model, variant="fp32").predict([(r["query"], r["text"]) for r in rows])
    assert [r["n"] for r in got] == list(range(50))
    assert [r["score"] for r in got] == pytest.approx(expected, abs=1e-5)


def test_the_model_is_verified_on_the_worker(exported, tmp_path):
    bundle = bundle_model(exported("bert"))
    assert unpack_model(bundle, tmp_path).is_dir()
    name = next(n for n in bundle["files"] if n.endswith(".onnx"))
    damaged = {"files": {**bundle["files"], name: bundle["files"][name][:-1]}, "sha256": bundle["sha256"]}
    with pytest.raises(IntegrityError, match=f"model file {name} on this worker has sha256"):
        unpack_model(damaged, tmp_path / "other")
    (unpack_model(bundle, tmp_path) / name).write_bytes(b"tampered after unpacking")
    with pytest.raises(IntegrityError):
        unpack_model(bundle, tmp_path)


def test_ray_engine_refuses_more_cores_than_it_has(exported, tmp_path, local_ray):
    source = write_rows(tmp_path / "in.jsonl", 3)
    from reranker_onnx.cli import main

    code = main(["batch", str(source), str(tmp_path / "o.jsonl"), "--model", str(exported("bert")), "--engine", "ray",
                 "--actors", "2", "--threads", "2"])
    assert code == 2
