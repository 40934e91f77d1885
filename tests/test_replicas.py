"""Seed replicas (``testing.replicas``): upstream's sizes and tokenizers, and the pair layout the export
writes equals the reference's (``CrossEncoder(...).tokenizer``) for every family.

Full-size counts are checked on the meta device (no weights); everything else runs on the small
replicas, which share the builders and the tokenizers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testing.replicas import JA_V2_VOCAB, JINA_VOCAB, SEEDS, cached, model_parameters, parameter_count


@pytest.fixture(scope="module")
def small():
    return lambda name: cached(name, "small")


def _pairs() -> list[tuple[str, str]]:
    """Real Debian text, English and Japanese, with a long passage (truncation is the runtime's job)."""
    from export.debian import read_descriptions

    pairs = []
    for lang in ("en", "ja"):
        ds = read_descriptions(lang)[:40:8]
        pairs += [(d.synopsis, d.body) for d in ds]
    return pairs + [("What is the capital of France?", "Paris is the capital of France.")]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_full_size_parameter_counts_are_upstreams(name):
    """Facts §A2 and §B: jina 33,046,273; mmarco 117,641,089; TinyBERT 4,386,049 (weights, without the
    stored position_ids); ja-v1 106,994,305 and ja-v2 36,771,585 (derived there, re-derived here)."""
    assert model_parameters(name, "full") == SEEDS[name].params


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_small_replica_layout(small, name):
    folder = small(name)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    assert parameter_count(name, folder) == model_parameters(name, "small")
    config = json.loads((folder / "config.json").read_text())
    from export.families import detect_family

    assert detect_family(config).name == SEEDS[name].family


def test_replica_tokenizers_are_upstreams_kind(small):
    from tokenizers import Tokenizer

    def tok(name):
        return Tokenizer.from_file(str(small(name) / "tokenizer.json"))

    assert tok("ms-marco-TinyBERT-L2-v2").get_vocab_size() == 30522
    for name in ("mmarco-mMiniLMv2-L12-H384-v1", "japanese-reranker-cross-encoder-xsmall-v1"):
        xlmr = json.loads((small(name) / "tokenizer.json").read_text())
        assert xlmr["model"]["type"] == "Unigram" and len(xlmr["model"]["vocab"]) == 250002
        assert [tok(name).token_to_id(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] == [0, 1, 2, 3, 250001]
    jina = tok("jina-reranker-v1-tiny-en")
    assert jina.get_vocab_size() == JINA_VOCAB and jina.token_to_id("<pad>") == 1 and jina.token_to_id("<unk>") == 3
    assert jina.encode("Panda", add_special_tokens=False).ids == jina.encode("panda", add_special_tokens=False).ids
    assert set(jina.encode("日本", add_special_tokens=False).ids) == {3}  # no byte fallback: <unk>
    assert jina.encode("it's", add_special_tokens=False).tokens == ["it", "'", "s"]  # \w+|[^\w\s]+
    ja = tok("japanese-reranker-xsmall-v2")
    assert ja.get_vocab_size() == JA_V2_VOCAB and ja.token_to_id("<pad>") == 3
    assert 3 not in ja.encode("絵文字🦀もバイトで", add_special_tokens=False).ids  # byte fallback, no <unk>


def _reference_tokenizer(folder: Path, family: str):
    """What ``CrossEncoder(folder).tokenizer`` is; jina's config names remote code, so its tokenizer
    comes from AutoTokenizer directly (what CrossEncoder would call)."""
    if family == "jinabert":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device="cpu", local_files_only=True).tokenizer


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_exported_tokenizer_encodes_pairs_like_the_reference(small, tmp_path, name):
    """Where ja-v2's Llama template (built by transformers, not read from tokenizer.json) and the pad
    ids bite: the tokenizer.json the export writes gives the reference's ids and segments."""
    from tokenizers import Tokenizer

    from export.families import FAMILIES
    from export.tokenizer import write_tokenizer

    folder, family = small(name), FAMILIES[SEEDS[name].family]
    write_tokenizer(folder, family, tmp_path / "tokenizer.json")
    ours = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    reference = _reference_tokenizer(folder, family.name)
    for query, passage in _pairs():
        want = reference(query, passage)
        got = ours.encode(query, passage)
        assert got.ids == want["input_ids"], (query, passage)
        if "token_type_ids" in family.inputs:
            assert got.type_ids == want["token_type_ids"]
    if name == "japanese-reranker-xsmall-v2":  # transformers' template, not the file's <cls>/<sep> one
        ids = ours.encode("q", "p").ids
        assert ids[0] == 1 and ids.count(1) == 2 and ids[-1] == 2 and 6 not in ids


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_reference_scores_a_padded_pair_as_it_scores_alone(small, name):
    """The export's fp32 check compares with these logits. ja-v2's Llama-style tokenizer pads on the
    left, which put a pad token where ModernBERT's CLS pooling reads: batched reference scores were
    off by ~1 and the export of the replica failed its own fp32 check."""
    import numpy as np

    from export.families import FAMILIES

    folder, family = small(name), FAMILIES[SEEDS[name].family]
    pairs = _pairs()
    batched = family.reference(folder, pairs, 512, len(pairs)).logits
    alone = family.reference(folder, pairs, 512, 1).logits
    assert np.max(np.abs(batched - alone)) <= 1e-5


def test_jina_segments_are_always_zero(small, tmp_path):
    """Upstream's own ONNX takes no token_type_ids; ours neither, so no caller can feed segment 1."""
    import onnx
    from tokenizers import Tokenizer

    from export.jinabert import JinaBertForSequenceClassification, export_onnx

    folder = small("jina-reranker-v1-tiny-en")
    assert all(t == 0 for q, p in _pairs() for t in Tokenizer.from_file(str(folder / "tokenizer.json")).encode(q, p).type_ids)
    graph = export_onnx(JinaBertForSequenceClassification.from_pretrained(folder).eval(), tmp_path / "m.onnx")
    assert [i.name for i in onnx.load(str(graph)).graph.input] == ["input_ids", "attention_mask"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in SEEDS if SEEDS[n].onnx))
def test_small_replicas_publish_upstreams_onnx_set(name):
    """Facts §C: the file set upstream publishes under onnx/; jina's graphs take two inputs."""
    import onnx

    folder = cached(name, "small", with_onnx=True)
    published = {p.name for p in (folder / "onnx").iterdir() if p.suffix == ".onnx"}
    expected = set(SEEDS[name].onnx) - {"model_O4.onnx"}  # O4 is a GPU (fp16) level: see SEEDS
    assert expected <= published
    for graph in published:
        inputs = [i.name for i in onnx.load(str(folder / "onnx" / graph), load_external_data=False).graph.input]
        assert inputs[:2] == ["input_ids", "attention_mask"]
        if SEEDS[name].family != "bert":
            assert "token_type_ids" not in inputs
