"""The repo's configuration read as transformers and sentence-transformers read it, without either."""

from __future__ import annotations

import json

import pytest

from reranker_onnx.errors import DownloadError
from reranker_onnx.repo_files import activation_of, pair_tokenizer

PAIRS = [("what is gzip", "gzip compresses files"), ("", "x"), ("日本語の質問", "長い文章 " * 40)]


@pytest.fixture(scope="module")
def llama_tokenizer(tmp_path_factory):
    """A small Llama-style SentencePiece tokenizer saved the way transformers saves ja-v2's."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    texts = [" ".join(q + p for q, p in PAIRS)] * 20 + ["compress archive files tools 日本 語 質問 文章"] * 20
    tokenizer.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=80, special_tokens=specials,
                                                                 unk_token="<unk>"))
    return tokenizer


@pytest.mark.parametrize("flags", [{}, {"add_eos_token": True}, {"add_bos_token": False, "add_eos_token": True}])
def test_a_llama_pair_template_is_rebuilt_from_the_flags_as_transformers_does(llama_tokenizer, tmp_path, flags):
    from transformers import AutoTokenizer, LlamaTokenizerFast

    fast = LlamaTokenizerFast(tokenizer_object=llama_tokenizer, bos_token="<s>", eos_token="</s>",
                              unk_token="<unk>", pad_token="<pad>", **flags)
    fast.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"].startswith("LlamaTokenizer")
    raw = (tmp_path / "tokenizer.json").read_text()
    if not flags:  # the class defaults (bos, no eos) must apply when the config does not say
        config.pop("add_bos_token", None)
        config.pop("add_eos_token", None)
    text, note = pair_tokenizer(raw, config, json.loads((tmp_path / "special_tokens_map.json").read_text()))
    from tokenizers import Tokenizer

    ours = Tokenizer.from_str(text)
    reference = AutoTokenizer.from_pretrained(str(tmp_path))
    for query, passage in PAIRS:
        assert ours.encode(query, passage).ids == reference(query, passage)["input_ids"]
    assert "as transformers' LlamaTokenizer" in note


def test_other_tokenizers_keep_the_template_of_tokenizer_json(checkpoint):
    from transformers import AutoTokenizer

    folder = checkpoint("xlm-roberta")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    text, note = pair_tokenizer((folder / "tokenizer.json").read_text(), config, {})
    from tokenizers import Tokenizer

    reference = AutoTokenizer.from_pretrained(str(folder))
    for query, passage in PAIRS:
        assert Tokenizer.from_str(text).encode(query, passage).ids == reference(query, passage)["input_ids"]
    assert note == "pair template from tokenizer.json"


def test_a_tokenizer_without_a_pair_template_is_refused(llama_tokenizer):
    with pytest.raises(DownloadError, match="no pair template"):
        pair_tokenizer(llama_tokenizer.to_str(), {"tokenizer_class": "PreTrainedTokenizerFast"}, {})


SIGMOID, IDENTITY = "torch.nn.modules.activation.Sigmoid", "torch.nn.modules.linear.Identity"


@pytest.mark.parametrize("config, st_config, labels, expected", [
    ({}, {"activation_fn": IDENTITY}, 1, "identity"),  # sentence-transformers v4+ writes it here
    ({"sentence_transformers": {"activation_fn": IDENTITY}}, {}, 1, "identity"),
    ({"sbert_ce_default_activation_function": IDENTITY}, {}, 1, "identity"),  # the cross-encoder/ repos, pre-v4
    ({"sbert_ce_default_activation_function": SIGMOID, "num_labels": 1}, {}, 1, "sigmoid"),
    ({"id2label": {"0": "LABEL_0"}}, {}, 1, "sigmoid"),  # one label, nothing recorded: ST's default
    ({}, {}, 1, "sigmoid"),  # no label count (JinaBERT's config): the graph's one output decides
    ({}, {"activation_fn": "mypackage.Custom"}, 1, "sigmoid"),  # ST ignores untrusted paths
])
def test_the_activation_follows_sentence_transformers(config, st_config, labels, expected):
    assert activation_of(config, st_config, labels)[0] == expected


def test_an_unsupported_activation_is_refused():
    with pytest.raises(DownloadError, match="only sigmoid and identity"):
        activation_of({}, {"activation_fn": "torch.nn.modules.activation.Tanh"}, 1)
