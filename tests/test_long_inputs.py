"""Long inputs (issue 23): the memory budget, windows (MaxP), and hostile sizes that must not crash."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reranker_onnx import InputError, Reranker
from reranker_onnx import memory as mem
from reranker_onnx.windows import max_per_owner, plan_windows, window_starts

JINA_TINY = mem.ModelShape(layers=4, heads=12, hidden=384, intermediate=1536, attention_block=128)
JINA_FULL_ATTENTION = mem.ModelShape(layers=4, heads=12, hidden=384, intermediate=1536)


# ---------------------------------------------------------------- the estimate and the allowance


def test_blocked_attention_grows_linearly_full_attention_quadratically() -> None:
    blocked = [mem.batch_bytes(JINA_TINY, 1, n) - mem.FIXED_OVERHEAD for n in (2048, 4096, 8192)]
    full = [mem.batch_bytes(JINA_FULL_ATTENTION, 1, n) - mem.FIXED_OVERHEAD for n in (2048, 4096, 8192)]
    assert blocked[2] / blocked[1] == pytest.approx(2.0, rel=0.01)
    assert full[2] / full[1] > 3.5
    assert mem.batch_bytes(JINA_TINY, 1, 8192) < 1 << 30  # the 1 GB for the whole process


def test_estimate_errs_high_against_measured_peaks() -> None:
    """Measured peak RSS minus RSS after load, full-size jina replica config, one pair (docs/long-context.md)."""
    block_256 = mem.ModelShape(layers=4, heads=12, hidden=384, intermediate=1536, attention_block=256)
    measured = {(block_256, 8192): 679e6, (block_256, 4096): 316e6, (JINA_TINY, 8192): 305e6,
                (JINA_FULL_ATTENTION, 4096): 5434e6, (JINA_FULL_ATTENTION, 2048): 1321e6}
    for (shape, length), activations in measured.items():
        assert mem.batch_bytes(shape, 1, length) >= activations


def test_rows_and_longest_fit_the_budget() -> None:
    budget = 600 << 20
    rows = mem.rows_that_fit(JINA_FULL_ATTENTION, 512, budget)
    assert mem.batch_bytes(JINA_FULL_ATTENTION, rows, 512) <= budget < mem.batch_bytes(JINA_FULL_ATTENTION, rows + 1, 512)
    longest = mem.longest_that_fits(JINA_FULL_ATTENTION, budget, 8192)
    assert mem.batch_bytes(JINA_FULL_ATTENTION, 1, longest) <= budget < mem.batch_bytes(JINA_FULL_ATTENTION, 1, longest + 1)
    assert mem.longest_that_fits(JINA_FULL_ATTENTION, 1, 8192) == 0


def test_budget_too_small_for_one_token_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"memory budget 0 MB is too small for this model.*raise memory_budget"):
        mem.MemoryPlan.build(JINA_TINY, 1000, 8192)


@pytest.mark.parametrize(("text", "size"), [("512M", 512 << 20), ("1.5G", 3 << 29), ("2GiB", 2 << 30), ("1000", 1000)])
def test_parse_size(text: str, size: int) -> None:
    assert mem.parse_size(text) == size


def test_parse_size_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a memory size: 'lots'"):
        mem.parse_size("lots")


def test_cgroup_v2_and_v1_limits_are_honoured(tmp_path: Path) -> None:
    v2 = tmp_path / "sys" / "app.slice"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("1073741824\n")
    (v2 / "memory.current").write_text("268435456\n")
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("0::/app.slice\n")
    assert mem.cgroup_room(cgroup, tmp_path / "sys") == 768 << 20
    (v2 / "memory.max").write_text("max\n")
    assert mem.cgroup_room(cgroup, tmp_path / "sys") is None
    v1 = tmp_path / "sys" / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(str(512 << 20))
    (v1 / "memory.usage_in_bytes").write_text(str(12 << 20))
    cgroup.write_text("12:memory:/docker/abc\n0::/app.slice\n")
    assert mem.cgroup_room(cgroup, tmp_path / "sys") == 500 << 20


def test_allowance_is_known_on_linux() -> None:
    if not Path("/proc/meminfo").exists():
        pytest.skip("no /proc/meminfo")
    room = mem.allowance()
    assert room is not None and room > 0


# ---------------------------------------------------------------- windows


def test_window_starts_cover_the_passage() -> None:
    assert window_starts(10, room=4, stride=2, max_windows=64) == [0, 2, 4, 6]
    assert window_starts(4, room=4, stride=2, max_windows=64) == [0]
    assert window_starts(1000, room=4, stride=2, max_windows=3) == [0, 2, 4]


def test_a_passage_that_fits_is_one_plain_window() -> None:
    offsets = [(i, i + 1) for i in range(5)]
    assert plan_windows(offsets, room=5, stride=2, max_windows=8).spans == [(0, -1)]
    plan = plan_windows(offsets, room=2, stride=2, max_windows=8)
    assert plan.spans == [(0, 2), (2, 4), (4, 5)] and not plan.cut
    assert plan_windows(offsets, room=2, stride=2, max_windows=2).cut


def test_maxp_takes_each_passage_best_window() -> None:
    scores = np.array([0.1, 0.9, 0.3, 0.2, 0.4], dtype=np.float32)
    assert max_per_owner(scores, np.array([0, 0, 1, 2, 2]), 3).tolist() == pytest.approx([0.9, 0.3, 0.4])


# ---------------------------------------------------------------- through the runtime (tiny fixtures)


@pytest.fixture(scope="module")
def long_passage() -> str:
    from export.debian import read_descriptions

    return " ".join(d.body for d in read_descriptions("en")[:400])  # ~60k tokens of real text


def test_windows_equal_plain_scoring_when_passages_fit(exported) -> None:
    model = exported("bert")
    passages = ["Vim is a highly configurable text editor.", "GNU tar saves many files into one archive."]
    plain = Reranker(model, variant="fp32").score("text editor", passages)
    windowed = Reranker(model, variant="fp32", windows=True).score("text editor", passages)
    assert windowed == plain


def test_windows_score_is_the_best_window(exported, long_passage: str) -> None:
    model = exported("bert")
    reranker = Reranker(model, variant="fp32", windows=True, window=64, stride=32, max_windows=8)
    query = "archive files"
    window_pairs, owners, cut = reranker.scorer.windower.expand([(query, long_passage)])
    assert len(window_pairs) == 8 and cut == 1 and set(owners.tolist()) == {0}
    plain = Reranker(model, variant="fp32", max_length=64)
    expected = max(plain.predict(window_pairs))
    assert reranker.score(query, [long_passage])[0] == pytest.approx(expected, abs=1e-6)


def test_window_options_are_checked(exported) -> None:
    model = exported("bert")
    with pytest.raises(InputError, match="window and stride apply only with windows=True"):
        Reranker(model, stride=16)
    with pytest.raises(InputError, match="window must be between 2 and max_length"):
        Reranker(model, windows=True, window=100_000)


def test_ten_megabyte_passage_with_windows_is_bounded(exported) -> None:
    reranker = Reranker(exported("bert"), windows=True, max_windows=4)
    huge = "compress archive files with gzip and tar " * 250_000  # 10.25 MB
    scores = reranker.score("compress files", [huge, "a text editor"])
    assert len(scores) == 2 and all(np.isfinite(scores))


def test_budget_too_small_for_one_token_fails_at_load(exported) -> None:
    with pytest.raises(InputError, match="is too small for this model"):
        Reranker(exported("jinabert"), memory_budget=1000)
    with pytest.raises(InputError, match="not a memory size"):
        Reranker(exported("jinabert"), memory_budget="plenty")


def test_cut_or_refuse_a_pair_the_budget_cannot_hold(exported, long_passage: str, caplog) -> None:
    model = exported("jinabert")
    shape = mem.ModelShape.from_manifest(Reranker(model).info.manifest.export)
    budget = mem.batch_bytes(shape, 1, 100) + 1
    with caplog.at_level(logging.WARNING, logger="reranker_onnx.reranker"):
        cut = Reranker(model, memory_budget=budget)
    assert cut.info.max_length == 100 and "longer pairs are cut" in caplog.text
    assert np.isfinite(cut.score("archive", [long_passage, "short"])).all()
    refuse = Reranker(model, memory_budget=budget, too_long="refuse")
    assert len(refuse.score("archive", ["short text"])) == 1
    with pytest.raises(InputError, match=r"pair 1 has \d+ tokens, but the memory budget .* nothing was scored"):
        refuse.score("archive", ["short text", long_passage])
    with pytest.raises(InputError, match="too_long must be 'cut' or 'refuse'"):
        Reranker(model, too_long="drop")


def test_batches_respect_the_memory_budget(exported, monkeypatch) -> None:
    model = exported("jinabert")
    shape = mem.ModelShape.from_manifest(Reranker(model).info.manifest.export)
    budget = mem.batch_bytes(shape, 3, 64)
    reranker = Reranker(model, memory_budget=budget)
    seen: list[tuple[int, ...]] = []
    run = reranker.scorer.run
    monkeypatch.setattr(reranker.scorer, "run", lambda feed: seen.append(feed["input_ids"].shape) or run(feed))
    reranker.score("query", ["word " * 60] * 10)
    assert seen and all(mem.batch_bytes(shape, r, n) <= budget for r, n in seen)


def test_cli_memory_budget_too_small_is_one_line(exported, capsys) -> None:
    from reranker_onnx.cli import main

    assert main(["score", "q", "p", "--model", str(exported("jinabert")), "--memory-budget", "1K"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too small for this model" in err


@pytest.mark.slow
def test_thousand_8k_passages_stay_in_bounded_memory(exported, tmp_path: Path) -> None:
    """1,000 passages of ~8k tokens each (57 MB of text): peak RSS grows far less than holding their
    encodings would take. Scored at 512 tokens so the test stays short; the chunking is the same."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads VmHWM from /proc")
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so the child would report pytest's size.
    code = (
        "import json,sys\n"
        "def hwm():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])\n"
        "from reranker_onnx import Reranker\n"
        "r = Reranker(sys.argv[1], memory_budget='200M', max_length=512)\n"
        "base = hwm()\n"
        "p = 'compress archive files with gzip and tar ' * 1400\n"
        "s = r.score('compress files', [p] * 1000)\n"
        "print(json.dumps({'n': len(s), 'base': base, 'peak': hwm()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(exported("jinabert"))], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] == 1000
    assert (result["peak"] - result["base"]) * 1024 < 600 << 20


def test_hostile_inputs_keep_a_fresh_process_within_its_budget(exported) -> None:
    """Measured, not estimated: a fresh process refuses a budget too small for one token with one line,
    then, with a 36 MB budget (which cuts the jina fixture's 512-token pairs to ~300 tokens, one row per
    batch), scores 100 passages of ~9k tokens; its peak RSS (VmHWM) grows by less than the budget
    (measured: 14 MB). The passages exist before the baseline: they are the caller's memory."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads VmHWM from /proc")
    code = (
        "import json,sys\n"
        "def hwm():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]) * 1024\n"
        "from reranker_onnx import InputError, Reranker\n"
        "try:\n"
        "    Reranker(sys.argv[1], memory_budget=1000)\n"
        "    tiny = None\n"
        "except InputError as exc:\n"
        "    tiny = str(exc)\n"
        "r = Reranker(sys.argv[1], memory_budget='36M')\n"
        "passages = ['compress archive files with gzip and tar ' * 1300 + str(i) for i in range(100)]\n"
        "base = hwm()\n"
        "s = r.score('compress files', passages)\n"
        "rows = r.scorer.batching.rows_for(r.info.max_length)\n"
        "print(json.dumps({'tiny': tiny, 'n': len(s), 'longest': r.info.max_length, 'rows': rows, 'base': base,\n"
        "                  'peak': hwm()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(exported("jinabert"))], capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "memory budget 0 MB is too small for this model" in result["tiny"] and "\n" not in result["tiny"]
    assert result["n"] == 100 and 100 < result["longest"] < 512 and result["rows"] == 1  # the budget binds
    assert result["peak"] - result["base"] < 36 << 20, result
