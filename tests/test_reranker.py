"""Scores reproduce the reference, in the caller's order, whatever the batching; bad input is refused."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from export.debian import read_descriptions
from export.families import FAMILIES
from export.reference import cross_encoder_reference
from export.validation import validation_set
from reranker_onnx import InputError, Reranker, VariantError, cpu
from reranker_onnx.manifest import read_manifest
from reranker_onnx.scoring import Batching

HF_FAMILIES = [name for name, f in FAMILIES.items() if f.reference is cross_encoder_reference]  # sentence-transformers' own


@pytest.fixture(scope="session")
def texts():
    """Real Debian query groups, short and long (a quarter are truncated at 512 tokens), English and Japanese."""
    return validation_set(("en", "ja"), queries_per_language=3, group_size=8)


@pytest.fixture(scope="session")
def pairs(texts):
    return texts.pairs


def _st_scores(checkpoint, pairs, max_length=512):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(checkpoint), max_length=max_length, device="cpu")
    return np.asarray(model.predict(pairs, batch_size=8), dtype=np.float64)


@pytest.mark.parametrize("family", HF_FAMILIES)
def test_fp32_matches_sentence_transformers(family, checkpoint, exported, pairs):
    expected = _st_scores(checkpoint(family), pairs)
    got = np.asarray(Reranker(exported(family), variant="fp32").predict(pairs))
    assert np.max(np.abs(got - expected)) <= 1e-4
    sigmoid = read_manifest(exported(family)).activation == "sigmoid"
    logits = np.log(expected / (1 - expected)) if sigmoid else expected
    assert np.std(logits) > 1e-3, "the model's outputs must vary, or parity would be trivial"


def test_fp32_matches_the_jinabert_reference(checkpoint, exported, pairs):
    from export.reference import reference_scores

    ref = reference_scores(checkpoint("jinabert"), FAMILIES["jinabert"], pairs, 512)
    expected = 1 / (1 + np.exp(-ref.logits.astype(np.float64)))
    got = np.asarray(Reranker(exported("jinabert"), variant="fp32").predict(pairs))
    assert np.max(np.abs(got - expected)) <= 1e-4


def test_real_minilm_weights_match_sentence_transformers(minilm_checkpoint, minilm_model, pairs):
    expected = _st_scores(minilm_checkpoint, pairs)
    reranker = Reranker(minilm_model, variant="fp32")
    assert np.max(np.abs(np.asarray(reranker.predict(pairs)) - expected)) <= 1e-4
    assert np.ptp(expected) > 1.0, "the head must spread scores, or parity would be trivial"


def test_auto_variant_on_this_host_keeps_the_ranking(minilm_model, texts):
    from export.validation import ranking_agreement

    fp32 = np.asarray(Reranker(minilm_model, variant="fp32").predict(texts.pairs))
    auto = Reranker(minilm_model)
    # What the rule picks for this host (avx2, or avx512_vnni with VNNI): tests/test_cpu.py checks the
    # rule itself on recorded CPUs; this checks the Reranker applies it to the real one.
    assert auto.info.variant == cpu.choose_variant(cpu.detect(), read_manifest(minilm_model).variants).variant
    agreement = ranking_agreement(fp32, np.asarray(auto.predict(texts.pairs)), texts.groups)
    # The export gate (NDCG@10 ≥ 0.99) was measured on other pairs; allow for the different sample.
    assert agreement["ndcg_at_10"] >= 0.98 and agreement["spearman"] >= 0.95, agreement


def test_a_scorer_from_files_scores_like_the_reranker(exported, pairs):
    from reranker_onnx.scoring import Scorer

    model = exported("xlm-roberta")
    manifest = read_manifest(model)
    scorer = Scorer.from_files(model / manifest.variants["fp32"].file, model / manifest.tokenizer,
                               max_length=manifest.max_length, activation=manifest.activation)
    assert scorer.scores(pairs) == Reranker(model, variant="fp32").predict(pairs)


def test_batching_never_changes_scores_or_order(exported, pairs, monkeypatch):
    model = exported("bert")
    big = Reranker(model, variant="fp32").predict(pairs)
    monkeypatch.setattr("reranker_onnx.scoring.PAIRS_PER_CHUNK", 5)
    small = Reranker(model, variant="fp32", token_budget=512, max_rows=3).predict(pairs)
    one_by_one = [Reranker(model, variant="fp32").predict([p])[0] for p in pairs[:6]]
    scorer = Reranker(model, variant="fp32").scorer
    budget_only = scorer.with_batching(Batching(token_budget=1024, max_rows=5, pad_slack=1.0)).scores(pairs)
    assert np.allclose(big, small, atol=1e-5) and np.allclose(big, budget_only, atol=1e-5)
    assert np.allclose(big[:6], one_by_one, atol=1e-5)


def test_score_and_rank_agree_and_return_plain_values(exported):
    reranker = Reranker(exported("bert"), variant="fp32")
    docs = [d.body for d in read_descriptions("en")[:10]]
    before = list(docs)
    scores = reranker.score("a text editor", docs)
    ranked = reranker.rank("a text editor", docs, top_k=3, return_documents=True)
    assert docs == before
    assert all(type(s) is float for s in scores)
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(scores)[::-1][:3])
    assert ranked[0]["text"] == docs[ranked[0]["corpus_id"]]
    assert type(ranked[0]["corpus_id"]) is int


def test_one_reranker_shared_by_threads_scores_like_serial(exported, pairs):
    reranker = Reranker(exported("xlm-roberta"), variant="fp32", threads=1)
    serial = reranker.predict(pairs)
    results: dict[int, list[float]] = {}

    def work(k: int) -> None:
        results[k] = reranker.predict(pairs[k::4])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert np.allclose(results[k], serial[k::4], atol=1e-6)


def test_huge_passage_costs_what_a_long_one_does(exported):
    reranker = Reranker(exported("bert"), variant="fp32")
    body = " ".join(d.body for d in read_descriptions("en")[:3000])
    huge = (body * (5_000_000 // len(body) + 1))[:5_000_000]
    assert len(huge.encode()) >= 5_000_000
    whole, head = reranker.score("network tools", [huge, huge[:40_000]])
    assert whole == pytest.approx(head, abs=1e-6)


def test_empty_and_blank_passages_are_scored_like_the_reference(checkpoint, exported):
    got = Reranker(exported("bert"), variant="fp32").score("editor", ["", "   ", "a text editor"])
    expected = _st_scores(checkpoint("bert"), [("editor", ""), ("editor", "   "), ("editor", "a text editor")])
    assert np.allclose(got, expected, atol=1e-4)


def test_long_query_is_cut_with_a_warning(exported, caplog):
    reranker = Reranker(exported("bert"), variant="fp32")
    with caplog.at_level(logging.WARNING):
        reranker.score("word " * 400, ["a passage"])
    assert "is cut to share max_length" in caplog.text


@pytest.mark.parametrize(
    ("query", "passages", "message"),
    [
        ("", ["x"], "the query is empty"),
        ("   ", ["x"], "the query is empty"),
        (None, ["x"], "query must be a str, got NoneType"),
        ("q", "one string", "not a single string"),
        ("q", ["ok", 3], "passage 1 must be a str, got int"),
        ("q", ["bad \udc80 text"], "passage 0 is not valid Unicode"),
        ("q", 42, "must be a list of strings, got int"),
    ],
)
def test_bad_input_is_a_clear_error(exported, query, passages, message):
    with pytest.raises(InputError, match=message):
        Reranker(exported("bert"), variant="fp32").score(query, passages)


def test_no_passages_give_no_scores(exported):
    assert Reranker(exported("bert")).score("q", []) == []


def test_unknown_variant_lists_the_known_ones(exported):
    with pytest.raises(VariantError, match="avx2"):
        Reranker(exported("bert"), variant="avx9000")


def test_max_length_beyond_the_model_is_refused(exported):
    with pytest.raises(InputError, match="max_length must be between 2 and 512"):
        Reranker(exported("bert"), max_length=4096)


@pytest.mark.parametrize("budget", [0, 511])
def test_a_token_budget_below_max_length_is_refused(exported, budget):
    with pytest.raises(InputError, match=r"token_budget must be at least max_length \(512\)"):
        Reranker(exported("bert"), token_budget=budget)


def test_batches_respect_the_budget_and_never_pad_a_short_pair_far():
    from reranker_onnx.batching import PAD_SLACK, plan_batches

    lengths = np.array([512, 300, 290, 280, 100, 96, 95, 20, 18, 17, 16, 3])
    batches = plan_batches(lengths, token_budget=1024, max_rows=4)
    assert sorted(int(i) for b in batches for i in b) == list(range(len(lengths)))  # every row once
    for b in batches:
        longest = int(lengths[b].max())
        assert len(b) * longest <= 1024 or len(b) == 1
        assert len(b) <= 4 and int(lengths[b].min()) >= (1 - PAD_SLACK) * longest
    assert [len(b) for b in batches] == [1, 3, 3, 4, 1]


def test_idle_threads_sleep_unless_the_caller_says_otherwise(exported):
    model = exported("bert")
    default = Reranker(model, variant="fp32").scorer.session.get_session_options()
    assert default.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spinning = Reranker(model, variant="fp32", session_config={"session.intra_op.allow_spinning": "1"})
    assert spinning.scorer.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "1"
