"""`rerank-onnx batch` on one machine: planners on numbers, rows, faults, resume after kill -9, memory."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reranker_onnx import Reranker, RerankerError
from reranker_onnx.batch import BatchJob, Limits, plan_actors, plan_shards, run_batch
from reranker_onnx.batch import job as job_module
from reranker_onnx.batch.deps import need
from reranker_onnx.batch.rows import BadRow, Row, parse_line
from reranker_onnx.cli import main

WORDS = "the a archive compress file tool editor web browser network mail server client library image".split()


def _text(rng: random.Random, most: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, most)))


def write_rows(path: Path, rows: int, per_row: int = 3, seed: int = 0, flat_every: int = 4, words: int = 25) -> Path:
    """Nested rows, with a flat row every ``flat_every`` lines."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            if flat_every and i % flat_every == flat_every - 1:
                record = {"id": f"r{i}", "query": _text(rng, 5), "text": _text(rng, words)}
            else:
                record = {"id": f"r{i}", "query": _text(rng, 5), "extra": i,
                          "candidates": [{"id": j, "text": _text(rng, words)} for j in range(per_row)]}
            f.write(json.dumps(record) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


SMALL = Limits(shard_bytes=2_000, shard_rows=7)


# -- planners, on numbers alone ----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_shards_cover_every_row_once_in_order_within_the_limits(seed):
    rng = random.Random(seed)
    sizes = [rng.choice([1, 5, 80, 400, 3_000]) for _ in range(rng.randint(0, 300))]
    limits = Limits(shard_bytes=rng.choice([1, 500, 2_000]), shard_rows=rng.choice([1, 3, 50]))
    shards = list(plan_shards(iter(sizes), limits))
    assert [s.index for s in shards] == list(range(len(shards)))
    assert sum(s.rows for s in shards) == len(sizes)
    row, offset = 1, 0
    for s in shards:
        assert (s.first_row, s.start) == (row, offset)  # contiguous: no gap, no overlap
        assert s.stop - s.start == sum(sizes[s.first_row - 1 : s.last_row])
        assert 1 <= s.rows <= limits.shard_rows
        assert s.stop - s.start - sizes[s.last_row - 1] < limits.shard_bytes  # closes as soon as it is full
        row, offset = s.last_row + 1, s.stop
    assert list(plan_shards(iter(sizes), limits)) == shards  # the same input, the same plan


@pytest.mark.parametrize(
    ("cpus", "actors", "threads", "expected"),
    [(2, None, None, (2, 1)), (2, 2, None, (2, 1)), (2, 1, None, (1, 2)), (2, None, 2, (1, 2)), (8, 3, None, (3, 2)),
     (4.5, None, None, (4, 1)), (2, 1, 1, (1, 1))],
)
def test_actors_times_threads_never_exceed_the_cpus(cpus, actors, threads, expected):
    plan = plan_actors(cpus, actors, threads)
    assert (plan.actors, plan.threads) == expected
    assert plan.actors * plan.threads <= cpus


def test_asking_for_more_cores_than_ray_has_is_refused_with_the_fix():
    with pytest.raises(RerankerError, match=r"2 actors × 2 threads = 4 cores, but Ray offers 2: .*at most 1 actors"):
        plan_actors(2, 2, 2)
    with pytest.raises(RerankerError, match="ray start --num-cpus"):
        plan_actors(0, None, None)


# -- rows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"text": "t"}', '"query" is missing'),
        (b'{"query": 3, "text": "t"}', '"query" must be a string, got int'),
        (b'{"query": "  ", "text": "t"}', '"query" is empty'),
        (b'{"query": "q"}', 'not neither'),
        (b'{"query": "q", "text": "t", "candidates": []}', "not both"),
        (b'{"query": "q", "text": null}', '"text" must be a string, got null'),
        (b'{"query": "q", "candidates": {"text": "t"}}', '"candidates" must be a list, got dict'),
        (b'{"query": "q", "candidates": [{"text": "t"}, {"id": 1}]}', 'candidate 1 must be an object with a "text"'),
        (b'{"query": "q", "candidates": [{"text": "t", "id": [1]}]}', 'candidate 0: "id" must be a string or an integer'),
        (b'{"id": true, "query": "q", "text": "t"}', '"id" must be a string or an integer, got bool'),
        (b'{"query": "\\ud800", "text": "t"}', "lone surrogate"),
        (b'{"query": "q", "text": "t", "note": "\\udfff"}', "lone surrogate"),
        (b'{"query": "q", "candidates": [' + b",".join([b'{"text": "t"}'] * 11) + b"]}", "11 candidates, more than the limit of 10"),
    ],
)
def test_a_bad_row_gets_its_line_and_reason(line, reason):
    parsed = parse_line(7, line, Limits(max_candidates=10))
    assert isinstance(parsed, BadRow) and parsed.number == 7
    assert reason in parsed.reason


def test_good_rows_and_blank_lines():
    assert parse_line(1, b"  \n", Limits()) is None
    row = parse_line(2, '{"query": "q", "candidates": [{"text": "ä"}, {"id": "x", "text": ""}]}\n'.encode(), Limits())
    assert isinstance(row, Row) and row.texts == ("ä", "") and row.nested


# -- the job on one machine -------------------------------------------------------------------


@pytest.fixture()
def model(exported):
    return exported("bert")


def test_scores_equal_the_reranker_and_rows_keep_their_order_and_fields(model, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 40)
    out = tmp_path / "out.jsonl"
    report = run_batch(BatchJob(str(source), str(out), model=str(model), variant="fp32", top_k=2), progress=False)
    assert report.exit_code == 0 and report.rows == 40
    reranker = Reranker(model, variant="fp32")
    rows_in, rows_out = read_jsonl(source), read_jsonl(out)
    assert [r["id"] for r in rows_out] == [r["id"] for r in rows_in]
    for before, after in zip(rows_in, rows_out):
        if "text" in before:
            assert after == {**before, "score": pytest.approx(reranker.score(before["query"], [before["text"]])[0], abs=1e-5)}
            continue
        scores = reranker.score(before["query"], [c["text"] for c in before["candidates"]])
        best = sorted(range(len(scores)), key=lambda i: -scores[i])[:2]
        assert [c["id"] for c in after["candidates"]] == [before["candidates"][i]["id"] for i in sorted(best)]
        for c in after["candidates"]:
            assert c["score"] == pytest.approx(scores[c["id"]], abs=1e-5) and c["rank"] == best.index(c["id"]) + 1
        assert after["extra"] == before["extra"]
    assert not (tmp_path / "out.jsonl.parts").exists() and not (tmp_path / "out.jsonl.errors.jsonl").exists()


def test_windows_score_like_the_windowed_reranker_and_plainly_when_passages_fit(model, tmp_path, capsys):
    source = write_rows(tmp_path / "in.jsonl", 8, words=6)
    long_text = "compress archive files with gzip and tar " * 60
    with source.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "long", "query": "compress archive", "text": long_text}) + "\n")
    out = tmp_path / "out.jsonl"
    command = ["batch", str(source), str(out), "--model", str(model), "--variant", "fp32", "--window", "32",
               "--stride", "16", "--no-progress"]
    assert main(command) == 2
    assert "window and stride apply only with windows=True (--windows)" in capsys.readouterr().err
    assert main([*command, "--windows"]) == 0
    windowed = Reranker(model, variant="fp32", windows=True, window=32, stride=16)
    plain = Reranker(model, variant="fp32", max_length=32)
    assert len(windowed.scorer.windower.expand([("compress archive", long_text)])[0]) > 10
    for before, after in zip(read_jsonl(source), read_jsonl(out)):
        texts = [before["text"]] if "text" in before else [c["text"] for c in before["candidates"]]
        got = [after["score"]] if "text" in before else [c["score"] for c in after["candidates"]]
        assert got == pytest.approx(windowed.score(before["query"], texts), abs=1e-5)
        if before["id"] != "long":  # six words fit one window: the plain score
            assert got == pytest.approx(plain.score(before["query"], texts), abs=1e-5)


def test_ray_actors_take_the_jobs_windows(model, tmp_path, monkeypatch):
    """The Ray engine's actor, built in this process (no cluster started): it scores with the job's options."""
    pytest.importorskip("ray")
    import tempfile
    from dataclasses import asdict

    from reranker_onnx.batch.ray_engine import ShardScorer, bundle_model

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the actor unpacks the model
    job = BatchJob("in.jsonl", "out.jsonl", windows=True, window=32, stride=16)
    actor = ShardScorer(bundle_model(model), "fp32", 1, {"path": "in.jsonl", "format": "jsonl"}, asdict(job.limits),
                        None, scoring=job.scoring)
    windower = actor.reranker.scorer.windower
    assert windower is not None and (windower.window, windower.stride) == (32, 16)


def test_corrupted_rows_go_to_the_errors_file_and_the_exit_code_says_so(model, tmp_path, capsys):
    good = write_rows(tmp_path / "good.jsonl", 12).read_text().splitlines()
    lines = good[:3] + ["{broken", '{"id": 9, "query": "", "text": "t"}'] + good[3:] + ['{"query": "q", "text": 5}']
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(source), str(out), "--model", str(model), "--no-progress"])
    assert code == 3
    assert [r["id"] for r in read_jsonl(out)] == [json.loads(line)["id"] for line in good]
    errors = read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["line"] for e in errors] == [4, 5, 15]
    assert "not valid JSON" in errors[0]["reason"] and errors[1]["reason"] == '"query" is empty'
    assert "3 bad rows" in capsys.readouterr().err


def test_too_many_bad_rows_stop_the_job_and_a_higher_limit_resumes_it(model, tmp_path):
    lines = write_rows(tmp_path / "good.jsonl", 30).read_text().splitlines()
    for i in (5, 6, 20):
        lines[i] = "{broken"
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    job = BatchJob(str(source), str(out), model=str(model), variant="fp32", max_errors=1, limits=SMALL)
    stopped = run_batch(job, progress=False)
    assert stopped.exit_code == 4 and stopped.stopped and not out.exists()
    assert [e["line"] for e in read_jsonl(tmp_path / "out.jsonl.errors.jsonl")] == [6, 7]
    again = run_batch(BatchJob(**{**job.__dict__, "max_errors": 5}), progress=False)
    assert again.exit_code == 3 and again.resumed >= 1 and again.bad == 3
    assert len(read_jsonl(out)) == 27
    assert [e["line"] for e in read_jsonl(tmp_path / "out.jsonl.errors.jsonl")] == [6, 7, 21]


def test_an_empty_input_gives_an_empty_output(model, tmp_path):
    for content in ("", "\n  \n"):
        source = tmp_path / "in.jsonl"
        source.write_text(content)
        out = tmp_path / "out.jsonl"
        assert main(["batch", str(source), str(out), "--model", str(model)]) == 0
        assert out.read_bytes() == b""
        out.unlink()


def test_an_existing_output_or_another_jobs_parts_are_refused(model, tmp_path, capsys):
    source = write_rows(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    out.write_text("keep me")
    assert main(["batch", str(source), str(out), "--model", str(model)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    out.unlink()
    (tmp_path / "out.jsonl.parts").mkdir()
    (tmp_path / "out.jsonl.parts" / "job.json").write_text(json.dumps({"format": 1, "top_k": 9}))
    assert main(["batch", str(source), str(out), "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert "belongs to a job with a different" in err and "top_k" in err and err.count("\n") == 1


def test_a_missing_extra_names_it_before_any_file_is_written(model, tmp_path, monkeypatch, capsys):
    with pytest.raises(RerankerError, match=r"pip install 'reranker-onnx\[ray\]'"):
        need("no_such_module_here", "ray")
    source = write_rows(tmp_path / "in.jsonl", 3)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail
    assert main(["batch", str(source), str(tmp_path / "out.jsonl"), "--model", str(model)]) == 1
    err = capsys.readouterr().err
    assert err == "rerank-onnx: error: tqdm is not installed: pip install 'reranker-onnx[batch]' (tqdm, pyarrow)\n"
    assert not (tmp_path / "out.jsonl.parts").exists()


def test_parquet_input_scores_like_the_same_rows_in_json_lines(model, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    source = write_rows(tmp_path / "in.jsonl", 20, flat_every=0)
    rows = read_jsonl(source)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet", row_group_size=6)
    for name in ("in.jsonl", "in.parquet"):
        run_batch(BatchJob(str(tmp_path / name), str(tmp_path / f"{name}.out"), model=str(model), limits=SMALL),
                  progress=False)
    assert read_jsonl(tmp_path / "in.parquet.out") == read_jsonl(tmp_path / "in.jsonl.out")


# -- nothing lost, nothing twice -----------------------------------------------------------------


class _Crash(BaseException):
    pass


def test_a_crash_at_any_rename_resumes_to_the_same_output(model, tmp_path, monkeypatch):
    """Stop the job at each of its renames in turn (every point where a file appears), then resume."""
    source = write_rows(tmp_path / "in.jsonl", 20)
    job = BatchJob(str(source), str(tmp_path / "ref.jsonl"), model=str(model), limits=SMALL)
    real_replace = os.replace
    renamed = []
    def mine(dst):  # the job's files, not the runtime's verification cache
        return Path(dst).parent == tmp_path or Path(dst).parent.name.endswith(".parts")

    monkeypatch.setattr(job_module.os, "replace", lambda src, dst: (mine(dst) and renamed.append(dst), real_replace(src, dst)))
    run_batch(job, progress=False)
    expected = (tmp_path / "ref.jsonl").read_bytes()
    assert len(renamed) >= 2 + 2 * 3, "job.json, at least 3 shards × (errors, rows), OUTPUT"
    for crash_at in range(1, len(renamed) + 1):
        out = tmp_path / f"out{crash_at}.jsonl"
        calls = iter(range(1, 1000))

        def replace(src, dst):
            if mine(dst) and next(calls) == crash_at:
                raise _Crash
            real_replace(src, dst)

        monkeypatch.setattr(job_module.os, "replace", replace)
        with pytest.raises(_Crash):
            run_batch(BatchJob(**{**job.__dict__, "output": str(out)}), progress=False)
        monkeypatch.setattr(job_module.os, "replace", real_replace)
        run_batch(BatchJob(**{**job.__dict__, "output": str(out)}), progress=False)
        assert out.read_bytes() == expected, f"crash at rename {crash_at}"
    out = tmp_path / "last.jsonl"  # killed after OUTPUT is in place, before the parts are removed
    monkeypatch.setattr(job_module.shutil, "rmtree", lambda path: (_ for _ in ()).throw(_Crash()))
    with pytest.raises(_Crash):
        run_batch(BatchJob(**{**job.__dict__, "output": str(out)}), progress=False)
    monkeypatch.undo()
    run_batch(BatchJob(**{**job.__dict__, "output": str(out)}), progress=False)
    assert out.read_bytes() == expected and not (tmp_path / "last.jsonl.parts").exists()


_DRIVER = """
import sys
from reranker_onnx.batch import BatchJob, Limits, run_batch
job = BatchJob(sys.argv[1], sys.argv[2], model=sys.argv[3], threads=1, limits=Limits(shard_bytes=3000, shard_rows=10))
sys.exit(run_batch(job, progress=False).exit_code)
"""


def test_resume_after_kill_9_mid_job_loses_no_row_and_doubles_none(model, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 400)
    reference = tmp_path / "ref.jsonl"
    subprocess.run([sys.executable, "-c", _DRIVER, str(source), str(reference), str(model)], check=True)
    out = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    kills = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(source), str(out), str(model)])
        before = len(list(parts.glob("*.errors.jsonl"))) if parts.is_dir() else 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # kill once this run has done some shards
            if parts.is_dir() and len(list(parts.glob("*.errors.jsonl"))) >= before + 2 + attempt % 3:
                time.sleep(random.Random(attempt).uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait()
        if out.exists():
            break
    assert kills >= 2, "the job finished before it could be killed twice: make the input larger"
    if not out.exists():
        subprocess.run([sys.executable, "-c", _DRIVER, str(source), str(out), str(model)], check=True)
    assert out.read_bytes() == reference.read_bytes()
    ids = [r["id"] for r in read_jsonl(out)]
    assert ids == [f"r{i}" for i in range(400)]  # every row once, in order
    assert not parts.exists()


# -- memory ------------------------------------------------------------------------------------


_MEASURE = """
import json, sys
from reranker_onnx.batch import BatchJob, run_batch
from reranker_onnx.batch.work import peak_rss
report = run_batch(BatchJob(sys.argv[1], sys.argv[2], model=sys.argv[3], variant="fp32"), progress=False)
print(json.dumps({"pairs": report.pairs, "peak": peak_rss()}))
"""


@pytest.mark.slow
def test_a_100k_pair_input_runs_in_the_memory_of_a_small_one(model, tmp_path):
    """Peak memory must not grow with the input: 100,000 pairs against 20,000 (which already fill shards)."""
    peaks = {}
    for rows in (2_000, 10_000):
        source = write_rows(tmp_path / f"in{rows}.jsonl", rows, per_row=10, flat_every=0, words=8)
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(source), str(tmp_path / f"out{rows}"), str(model)],
                             check=True, capture_output=True, text=True).stdout
        measured = json.loads(out)
        assert measured["pairs"] == rows * 10
        peaks[rows] = measured["peak"]
    grew = peaks[10_000] - peaks[2_000]
    print(f"peak RSS: {peaks[2_000] >> 20} MiB for 20,000 pairs, {peaks[10_000] >> 20} MiB for 100,000")
    assert grew < 8 << 20, f"peak RSS grew {grew >> 20} MiB from 20,000 to 100,000 pairs"


def test_the_progress_bar_shows_pairs_per_second_on_a_terminal_and_nothing_in_a_pipe(model, tmp_path, capsys):
    source = write_rows(tmp_path / "in.jsonl", 30)
    run_batch(BatchJob(str(source), str(tmp_path / "quiet.jsonl"), model=str(model), limits=SMALL))  # stderr is no tty
    assert capsys.readouterr().err == ""
    run_batch(BatchJob(str(source), str(tmp_path / "bar.jsonl"), model=str(model), limits=SMALL), progress=True)
    err = capsys.readouterr().err
    assert "pairs/s" in err and "100%" in err
