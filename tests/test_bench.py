"""The bench's own arithmetic on hand-made numbers: no engine runs, no model is built."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import experiments, report, stats, suite
from bench.worker import typical_passage
from reranker_onnx import batching


def test_median_and_spread_of_repeats():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert stats.spread([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_percentile_interpolates_between_calls():
    assert stats.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert stats.percentile([0.0, 10.0], 90) == pytest.approx(9.0)


def test_spearman_ranks_ties_and_order():
    assert stats.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert stats.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties share their mean rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4).
    assert stats.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(stats.spearman([1, 1, 1], [1, 2, 3]))


def _engine(pairs_per_s: float, cold_s: float, rss_mb: float) -> dict:
    def m(x: float) -> dict:
        return {"median": x, "min": x, "max": x}

    return {"pairs_per_s": m(pairs_per_s), "cold_start_s": m(cold_s), "rss100_mb": m(rss_mb)}


def _by_check(rows: list[dict]) -> dict[str, dict]:
    return {r["check"].split(" ")[0] + (" fp32" if "fp32" in r["check"] else ""): r for r in rows}


def test_targets_ratios_against_best_fastest_and_lightest_peer():
    engines = {
        "reranker-onnx": _engine(300.0, 0.25, 100.0),
        "st-torch-fp32": _engine(40.0, 15.0, 600.0),
        "st-onnx-int8": _engine(100.0, 14.0, 700.0),
        "bare-ort": _engine(80.0, 0.8, 250.0),
    }
    rows = _by_check(report.targets("tinybert-l2", engines))
    throughput, fp32 = rows["throughput"], rows["throughput fp32"]
    assert throughput["ratio"] == pytest.approx(3.0) and throughput["detail"] == "best peer: st-onnx-int8"
    assert throughput["verdict"] == "PASS"  # 3.0 ≥ 2.5
    assert fp32["ratio"] == pytest.approx(7.5) and fp32["verdict"] == "PASS"
    assert rows["cold"]["value"] == 0.25 and rows["cold"]["verdict"] == "PASS"  # ≤ 0.3 s for this size
    assert rows["cold"]["detail"].startswith("fastest peer: bare-ort")
    assert rows["peak"]["ratio"] == pytest.approx(0.4) and rows["peak"]["verdict"] == "PASS"
    assert "bare-ort" in rows["peak"]["detail"]


def test_targets_miss_when_short_and_na_without_a_limit():
    engines = {"reranker-onnx": _engine(200.0, 0.6, 200.0), "st-torch-fp32": _engine(100.0, 15.0, 300.0)}
    rows = _by_check(report.targets("minilm-l6", engines))
    assert rows["throughput"]["ratio"] == pytest.approx(2.0) and rows["throughput"]["verdict"] == "MISS"
    assert rows["cold"]["verdict"] == "MISS"  # 0.6 s > 0.5 s
    assert rows["peak"]["verdict"] == "MISS"  # 200 / 300 > 0.5
    unknown_size = _by_check(report.targets("no-such-size", engines))
    assert unknown_size["cold"]["verdict"] == "n/a"


def test_targets_say_so_when_reranker_onnx_did_not_run():
    rows = report.targets("tinybert-l2", {"bare-ort": _engine(80.0, 0.8, 250.0)})
    assert [r["verdict"] for r in rows] == ["MISS"]


def test_summary_takes_medians_over_rounds_and_pools_calls():
    def round_(rate: float, cold: float, calls: list[float]) -> dict:
        return {"pairs_per_s": rate, "cold_start_s": cold, "rss100_mb": 100.0 + rate, "rss_run_mb": 120.0,
                "calls_s": calls, "pairs": 100 * len(calls),
                "cold_split_s": {"interpreter": 0.1, "import": cold - 0.3, "load": 0.1, "first_score": 0.1}}

    s = suite._summary([round_(10.0, 1.0, [1.0]), round_(30.0, 3.0, [3.0]), round_(20.0, 9.0, [2.0, 4.0])])
    assert s["pairs_per_s"] == {"median": 20.0, "min": 10.0, "max": 30.0}
    assert s["cold_start_s"]["median"] == 3.0 and s["cold_split_s"]["import"] == pytest.approx(2.7)
    assert s["latency100_ms"]["calls"] == 4 and s["latency100_ms"]["p50"] == pytest.approx(2500.0)
    assert s["pairs_total"] == 400


def test_fidelity_is_per_query_then_averaged():
    reference = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    scores = [1.0, 2.0, 3.0, 3.0, 2.0, 1.0]  # query 1 agrees, query 2 is reversed
    f = suite._fidelity(reference, scores, groups=2)
    assert f["spearman_per_query_mean"] == pytest.approx(0.0)
    assert f["pairs"] == 6


def test_plan_rounds_score_different_queries_and_never_the_probe():
    plan = suite.Plan(rounds=3, queries_per_round=2)
    groups = [plan.round_groups(r) for r in (1, 2, 3)]
    assert groups == [[1, 2], [3, 4], [5, 6]]
    assert plan.groups_needed == 7


def test_typical_passage_is_the_median_by_length():
    assert typical_passage(["aaaa", "a", "aaaaaaaaaaaa", "aa", "aaa"]) == "aaa"


def test_pad_slack_is_a_parameter_of_plan_batches_and_the_default_stays():
    lengths = np.array([100, 50, 49])
    default = batching.PAD_SLACK
    assert len(batching.plan_batches(lengths, 1000, 64)) == 2  # 50 < 0.8 × 100 closes the first batch
    assert len(batching.plan_batches(lengths, 1000, 64, pad_slack=1.0)) == 1  # budget-only: 3 × 100 ≤ 1000
    assert len(batching.plan_batches(lengths, 1000, 64, pad_slack=0.0)) == 3  # no padding: one length per batch
    assert batching.PAD_SLACK == default


def test_throughput_configs_measure_one_change_against_the_defaults():
    first, *others = experiments.THROUGHPUT_CONFIGS
    assert first["options"] == {} and "pad_slack" not in first
    changes = [(c["options"], c.get("pad_slack")) for c in others]
    assert ({}, 1.0) in changes  # the budget-only cut
    assert ({"token_budget": 4096}, None) in changes and ({"token_budget": 8192}, None) in changes
    assert ({"threads": 1}, None) in changes
    assert ({"session_config": {"session.intra_op.allow_spinning": "1"}}, None) in changes
    assert len({c["label"] for c in experiments.THROUGHPUT_CONFIGS}) == len(experiments.THROUGHPUT_CONFIGS)


def test_option_sweep_runs_each_option_alone_in_rotated_rounds():
    configs = [{"label": "default"}, {"label": "a"}, {"label": "b"}]
    calls: list[str] = []

    def measure(config: dict) -> dict:  # stands in for one fresh worker process
        calls.append(config["label"])
        rate = {"default": 100.0, "a": 110.0, "b": 90.0}[config["label"]] + len(calls)
        return {"pairs_per_pass": 200, "settings": {"token_budget": 2048 if config["label"] == "default" else 1},
                "pairs_per_s": rate, "first_pass_peak_above_mb": float(len(calls))}

    out = experiments.option_sweep(measure, rounds=3, configs=configs)
    assert calls == ["default", "a", "b", "a", "b", "default", "b", "default", "a"]
    assert out["defaults"] == {"token_budget": 2048}  # from the default config's own process only
    assert out["configs"]["default"]["pairs_per_s"] == 100.0 + 6  # median of 101, 106, 108
    assert out["configs"]["a"]["spread"] == (112.0, 119.0)
    assert out["configs"]["b"]["first_pass_peak_above_mb"] == 3.0  # its first round's
    assert out["pairs_per_pass"] == 200


def test_serving_requests_rotate_queries_and_passages_and_keep_their_size():
    from bench.loadgen import bodies

    pools = {"queries": ["q0", "q1", "q2"], "passages": [f"p{i}" for i in range(7)]}
    made = bodies({**pools, "docs": 5, "distinct": 4})
    assert [b["query"] for b in made] == ["q0", "q1", "q2", "q0"]
    assert all(len(b["documents"]) == 5 and b["top_n"] == 5 and "model" not in b for b in made)
    assert made[1]["documents"][0] == "p5" and made[1]["documents"][2] == "p0"  # wraps around the pool


def test_a_server_that_answers_in_bursts_is_measured_over_a_whole_turn():
    """Every request held until all clients' are in, then answered at once (the peer's thread pool):
    a 0.2 s window would catch no answer; the window waits for a turn of the clients instead."""
    import http.server
    import threading

    from bench.loadgen import load

    clients, hold = 3, 0.6
    barrier = threading.Barrier(clients)

    class Burst(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802  (the stdlib's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:  # the test is over
                return
            threading.Event().wait(hold)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Burst)
    server.handle_error = lambda request, address: None  # clients cut at the window's end: broken pipes
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = {"queries": ["q"], "passages": ["p"] * 4, "docs": 4, "clients": clients, "seconds": 0.2,
                "max_warmup": 30, "max_window": 30}
        out = load(f"http://127.0.0.1:{server.server_address[1]}/v1/rerank", spec)
    finally:
        barrier.abort()
        server.shutdown()
    assert out["steady"] and out["requests"] == clients and out["errors"] == 0
    assert hold * 0.9 < out["window_s"] < hold * 3
    assert out["pairs_per_s"] == pytest.approx(clients * 4 / out["window_s"])


def test_soak_rss_is_flat_unless_it_grows():
    from bench.serving import rss_trend

    flat = [(t, 200.0 + (t % 20 == 0) * 0.5) for t in range(0, 600, 10)]
    assert rss_trend(flat, warmup_s=60)["flat"] is True
    leak = [(t, 200.0 + t * 0.05) for t in range(0, 600, 10)]  # 3 MB/min
    trend = rss_trend(leak, warmup_s=60)
    assert trend["flat"] is False and trend["slope_mb_per_min"] == pytest.approx(3.0)
    trimmed = [(t, 207.0 if t < 400 else 161.0) for t in range(0, 600, 10)]  # the kernel reclaiming pages
    assert rss_trend(trimmed, warmup_s=60)["flat"] is True
    assert rss_trend([(10, 200.0)], warmup_s=60)["flat"] is None
    assert rss_trend([(t, 200.0 + t) for t in range(0, 40, 3)], warmup_s=6)["flat"] is None  # a 30 s smoke


def test_long_context_points_take_medians_over_processes_and_runs_merge_by_point():
    from bench import long_context as lc

    runs = [{"times": [0.5, 9.0], "peak_rss": 300, "loaded_rss": 270, "logit": 0.1},
            {"times": [0.4], "peak_rss": 900, "loaded_rss": 280, "logit": 0.1},
            {"times": [0.6], "peak_rss": 310, "loaded_rss": 275, "logit": 0.1}]
    row = lc.point(runs)
    assert (row["seconds"], row["peak_rss"], row["peak_rss_spread"], row["points"]) == (0.55, 310, [300, 900], 3)
    assert lc.point([*runs[:2], {"error": "killed", "cap": None}])["failed_points"] == 1
    assert lc.point([{"error": "bad_alloc", "cap": 8 << 30}])["error"] == "bad_alloc"
    old = [{"graph": g, "length": n, "block": 128 if g.startswith("blocked") else None, "size": "full", "seconds": 1.0}
           for n in (512, 8192) for g in lc.GRAPHS]
    new = {"graph": "blocked fp32", "length": 4096, "block": 128, "size": "full", "seconds": 2.0}
    merged = lc.merge(old, [new, {**old[0], "seconds": 3.0}])
    assert [(r["length"], r["graph"]) for r in merged[:5]] == [(512, g) for g in lc.GRAPHS] + [(4096, "blocked fp32")]
    assert len(merged) == 9 and merged[0]["seconds"] == 3.0
