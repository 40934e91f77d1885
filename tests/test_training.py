"""The training package: train-only, deterministic examples, and a 2-step run on a tiny BERT. Offline, fast."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from evaluation.bm25 import BM25Config
from evaluation.candidates import bm25_candidates
from evaluation.split import assign
from evaluation.tasks import build_splits
from evaluation.scorers import System
from export.debian import Description
from export.demo_passages import demo_passages
from training import TrainConfig, build_examples, train_only_task
from training.data import TOP_NEGATIVES, pick_negatives, pick_random
from training.dev_check import most_frequent_top_hit

WORDS = ("archive", "compress", "backup", "network", "daemon", "font", "library", "python", "perl",
         "editor", "terminal", "image", "audio", "video", "mail", "server", "client", "kernel", "driver",
         "database", "parser", "shell", "music", "game", "science")


def synthetic(n: int = 300) -> list[Description]:
    """Packages with distinct, word-overlapping descriptions, so BM25 has real candidates to rank."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        words = rng.sample(WORDS, 6)
        out.append(Description(package=f"pkg{i}", md5=f"md5-{i}", synopsis=f"{words[0]} {words[1]} tool {i}",
                               body=f"This {words[0]} {words[1]} tool handles {' and '.join(words[2:])}. Item {i}."))
    return out


def test_examples_are_deterministic_and_come_from_the_train_split_only(tmp_path: Path) -> None:
    descs = synthetic()
    a = build_examples(descs, "en", queries=50, negatives=5, seed=1, bm25=BM25Config(k=30))
    b = build_examples(descs, "en", queries=50, negatives=5, seed=1, bm25=BM25Config(k=30), cache_dir=tmp_path)
    assert a.examples == b.examples and a.record["task_sha256"] == b.record["task_sha256"]
    assert len(a.examples) == 50 and all(len(e.negatives) == 5 for e in a.examples)

    splits = build_splits(descs)
    held_out = {splits.corpus[q.relevant] for s in ("dev", "test") for q in splits.queries[s]}
    assert held_out, "the synthetic corpus must have dev/test passages for this test to mean anything"
    by_package = {d.package: d for d in descs}
    for e in a.examples:
        assert assign(e.package) == "train", e.package  # each synthetic package is its own group
        assert e.positive not in e.negatives
        assert e.positive not in held_out and not held_out & set(e.negatives)
        assert e.query == by_package[e.package].synopsis
    # The run is a prefix of the train split in hash order, as in the evaluation harness.
    assert [e.qid for e in a.examples] == [q.qid for q in splits.queries["train"][:50]]
    # A different seed changes the sampled negatives, never the queries or the best-ranked ones.
    c = build_examples(descs, "en", queries=50, negatives=5, seed=2, bm25=BM25Config(k=30))
    assert [e.qid for e in c.examples] == [e.qid for e in a.examples]
    assert [e.negatives for e in c.examples] != [e.negatives for e in a.examples]


def test_train_only_task_reindexes_into_train_passages() -> None:
    splits = build_splits(synthetic())
    task = train_only_task(splits, "en")
    assert len(task.queries) == len(splits.queries["train"]) and len(task.corpus) < len(splits.corpus)
    for q, original in zip(task.queries, splits.queries["train"], strict=True):
        assert task.corpus[q.relevant] == splits.corpus[original.relevant]


def test_negatives_keep_the_best_ranked_and_skip_the_relevant() -> None:
    cands = list(range(30))
    picked = pick_negatives(cands, relevant=1, n=7, rng=random.Random(0))
    assert picked[:TOP_NEGATIVES] == [0, 2, 3][:TOP_NEGATIVES] and len(picked) == 7 and 1 not in picked
    assert picked == sorted(picked)  # in BM25 order
    assert pick_negatives([5, 6], relevant=5, n=7, rng=random.Random(0)) == [6]  # short lists are fine
    one_top = pick_negatives(cands, relevant=1, n=7, rng=random.Random(0), top_n=1)
    assert one_top[0] == 0 and 1 not in one_top and len(one_top) == 7
    assert [pick_negatives(cands, 1, 3, random.Random(s), top_n=0)[0] for s in range(20)] != [0] * 20
    drawn = pick_random(10, exclude={1, 2, 3}, n=3, rng=random.Random(0))
    assert len(set(drawn)) == 3 and not {1, 2, 3} & set(drawn)
    assert pick_random(4, exclude={0, 1, 2}, n=3, rng=random.Random(0)) == [3]  # only one is left


def test_random_negatives_are_train_passages_outside_the_bm25_candidates() -> None:
    descs, k = synthetic(), BM25Config(k=30)
    plain = build_examples(descs, "en", queries=50, negatives=3, seed=1, bm25=k)
    mixed = build_examples(descs, "en", queries=50, negatives=3, seed=1, bm25=k, random_negatives=1)
    splits = build_splits(descs)
    held_out = {splits.corpus[q.relevant] for s in ("dev", "test") for q in splits.queries[s]}
    task = train_only_task(splits, "en", 50)
    cands = bm25_candidates(task, k)
    for p, m, ids in zip(plain.examples, mixed.examples, cands.doc_ids, strict=True):
        assert m.negatives[:TOP_NEGATIVES] == p.negatives[:TOP_NEGATIVES]  # the best-ranked BM25 ones stay
        (extra,) = m.negatives[TOP_NEGATIVES:]
        assert extra != m.positive and extra not in held_out and extra not in {task.corpus[i] for i in ids}
    assert mixed.record["random_negatives_per_query"] == 1
    with pytest.raises(ValueError, match="random_negatives"):
        build_examples(descs, "en", queries=5, negatives=1, seed=1, bm25=k, random_negatives=2)


def test_top_negatives_sets_how_many_best_ranked_negatives_are_always_kept() -> None:
    descs, k = synthetic(), BM25Config(k=30)
    two = build_examples(descs, "en", queries=50, negatives=3, seed=1, bm25=k)
    one = build_examples(descs, "en", queries=50, negatives=3, seed=1, bm25=k, top_negatives=1)
    assert [e.negatives[0] for e in one.examples] == [e.negatives[0] for e in two.examples]
    assert [e.negatives for e in one.examples] != [e.negatives for e in two.examples]
    assert one.record["top_negatives_per_query"] == 1 and "the 1 best-ranked" in one.record["negative_rule"]
    with pytest.raises(ValueError, match="top_negatives"):
        build_examples(descs, "en", queries=5, negatives=3, seed=1, bm25=k, top_negatives=-1)


@pytest.fixture()
def torch_state(monkeypatch: pytest.MonkeyPatch):
    """Record, rather than apply, the switch to deterministic kernels, and restore the thread count.

    Applying it imports torch._inductor (20 s on a busy 2-core machine) and would leak into the other tests.
    """
    torch = pytest.importorskip("torch")
    calls: list[bool] = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda mode, **_: calls.append(mode))
    threads = torch.get_num_threads()
    torch.deterministic_calls = calls  # type: ignore[attr-defined]
    yield torch
    del torch.deterministic_calls
    torch.set_num_threads(threads)


def test_two_steps_change_the_weights_and_write_the_record(checkpoint, tmp_path: Path, torch_state) -> None:
    torch = torch_state
    from safetensors.torch import load_file

    from training.default_model import run

    base = checkpoint("bert")  # tiny random BERT with a WordPiece tokenizer (conftest, cached)
    config = replace(TrainConfig(), queries=8, negatives=3, batch_queries=4, token_budget=64, max_steps=2,
                     frozen_layers=1)
    out = tmp_path / "ckpt"
    data = {"file": "synthetic", "sha256_uncompressed": "0" * 64}
    record = run(out, config, base=base, descriptions=synthetic(), data=data)

    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    changed = [k for k in after if k in before and not torch.equal(before[k], after[k])]
    assert any("encoder.layer.1." in k for k in changed) and any("classifier" in k for k in changed)
    assert not any("embeddings" in k or "encoder.layer.0." in k for k in changed)  # frozen

    saved = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(record))
    for field in ("versions", "seed", "data", "split", "examples", "train", "wall_seconds", "config"):
        assert field in saved, field
    assert {"python", "torch", "transformers", "tokenizers"} <= set(saved["versions"])
    assert saved["data"]["sha256_uncompressed"] == "0" * 64
    assert saved["split"]["buckets"] == {"train": [0, 80], "dev": [80, 90], "test": [90, 100]}
    assert saved["examples"]["queries"] == 8 and saved["train"]["steps"] == 2
    assert saved["train"]["pairs_seen"] == 8 * 4 and saved["wall_seconds"]["train"] >= 0
    config_json = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config_json["sentence_transformers"] == {"activation_fn": "torch.nn.modules.linear.Identity"}
    assert (out / "tokenizer.json").is_file()
    assert torch.deterministic_calls == [True] and torch.get_num_threads() == config.threads


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from training.default_model import main

    assert main(["out", "--queries", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main([]) == 2


def test_importing_the_package_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    code = "import sys, training; print(any(m in sys.modules for m in ('torch', 'transformers', 'sentence_transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_micro_batches_sort_by_length_and_respect_the_budget() -> None:
    from training.loop import micro_batches

    lengths = [10, 50, 12, 48, 11, 200]
    parts = micro_batches(lengths, token_budget=100)
    assert sorted(i for p in parts for i in p) == list(range(6))
    assert parts[0] == [0, 4, 2]  # the short ones together
    assert all(len(p) * max(lengths[i] for i in p) <= 100 or len(p) == 1 for p in parts)
    assert parts[-1] == [5]  # a pair longer than the budget still gets its own pass


def test_micro_batching_does_not_change_the_loss(checkpoint, torch_state) -> None:
    from training.data import Example
    from training.loop import forward_step, load_model

    torch = torch_state
    model, tokenizer = load_model(checkpoint("bert"), seed=0)
    model.eval()  # no dropout: the two losses must agree to rounding
    batch = [Example(f"q{i}", f"p{i}", d.synopsis, d.body, tuple(x.body * (1 + j) for j, x in enumerate(synthetic(3))))
             for i, d in enumerate(synthetic(4))]
    with torch.no_grad():
        one, pairs = forward_step(model, tokenizer, batch, replace(TrainConfig(), token_budget=10**6))
        many, _ = forward_step(model, tokenizer, batch, replace(TrainConfig(), token_budget=64))
    assert pairs == 16
    assert abs(float(one) - float(many)) < 1e-5


def test_head_prefixes_choose_what_trains_at_the_head_rate(checkpoint, torch_state) -> None:
    from training.loop import freeze, load_model, param_groups

    model, _ = load_model(checkpoint("bert"), seed=0)
    freeze(model, 1)
    config = replace(TrainConfig(), lr=1e-4, head_lr=1e-3)
    by_name = {id(p): n for n, p in model.named_parameters()}

    def at_head_rate(c: TrainConfig) -> set[str]:
        return {by_name[id(p)] for g in param_groups(model, c) if g["lr"] == c.head_lr for p in g["params"]}

    assert at_head_rate(config) == {"classifier.weight", "classifier.bias"}
    with_pooler = at_head_rate(replace(config, head=("classifier.", "bert.pooler.")))
    assert with_pooler == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    groups = param_groups(model, replace(config, head=("classifier.", "bert.pooler.")))
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in model.parameters())
    assert all(g["weight_decay"] == 0.0 for g in groups for p in g["params"] if by_name[id(p)].endswith("bias"))


def test_open_set_check_counts_the_passage_that_tops_unrelated_queries() -> None:
    passages = ["gzip: compress files", "vim: text editor", "node-fn.name: extract a name"]

    def with_a_favourite(query: str, ps: list[str]) -> list[float]:  # shared words, plus a bias to one passage
        return [2.0 * len(set(query.split()) & set(p.split())) + 1.5 * p.startswith("node") for p in ps]

    queries = ["compress files", "text editor", "mail server", "web browser"]
    assert most_frequent_top_hit(System("stub", with_a_favourite), queries, passages) == (passages[2], 2)


def test_demo_passages_are_a_fixed_spread_sample_of_one_line_descriptions() -> None:
    plain = synthetic(900)
    descs = [replace(d, body=f"{d.body}\n\nSecond   paragraph.") for d in plain]
    passages = demo_passages(descs)
    assert len(passages) == 300 and passages == demo_passages(descs)
    assert passages[1] == f"pkg3: {plain[3].synopsis}. {plain[3].body}"
    assert all("\n" not in p and "Second" not in p for p in passages)


def test_tail_average_is_the_mean_of_the_weights_after_the_last_steps(torch_state) -> None:
    from training.loop import TailAverage

    torch = torch_state
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)  # frozen weights are neither averaged nor touched
    average = TailAverage(model, fraction=0.3, total_steps=10)
    assert average.start == 8  # steps 8, 9 and 10
    seen = []
    for step in range(1, 11):
        with torch.no_grad():
            model.weight.fill_(float(step))
            model.bias.fill_(-float(step))
        seen.append(model.weight.detach().clone())
        average.update(model, step)
    assert average.count == 3
    average.apply_to(model)
    assert torch.allclose(model.weight, torch.stack(seen[-3:]).mean(0))  # (8 + 9 + 10) / 3 = 9
    assert model.weight.detach()[0, 0].item() == 9.0 and model.bias.item() == -10.0
    assert TailAverage(model, fraction=0.01, total_steps=10).start == 10  # at least the last step
    with pytest.raises(ValueError, match="average fraction"):
        TailAverage(model, fraction=0.0, total_steps=10)
    with pytest.raises(ValueError, match="no step was averaged"):
        TailAverage(model, fraction=0.5, total_steps=10).apply_to(model)


def test_a_run_saves_its_averaged_weights_and_the_extra_tails(checkpoint, tmp_path: Path, torch_state) -> None:
    torch = torch_state
    from safetensors.torch import load_file

    from training.default_model import average_dir, run

    base = checkpoint("bert")
    config = replace(TrainConfig(), queries=12, negatives=3, batch_queries=4, token_budget=64, max_steps=3,
                     frozen_layers=1)
    data = {"file": "synthetic", "sha256_uncompressed": "0" * 64}
    plain, tail = tmp_path / "plain", tmp_path / "tail"
    run(plain, config, base=base, descriptions=synthetic(), data=data, extra_averages=(1.0,))
    record = run(tail, replace(config, average_last=1.0), base=base, descriptions=synthetic(), data=data)

    last, mean = load_file(plain / "model.safetensors"), load_file(tail / "model.safetensors")
    assert record["config"]["average_last"] == 1.0
    name = "classifier.weight"
    assert not torch.equal(last[name], mean[name])  # the mean of 3 steps is not the last step
    # The same run's extra tail, saved beside it, is the model that average_last trains (deterministic).
    extra = load_file(average_dir(plain, 1.0) / "model.safetensors")
    assert average_dir(plain, 1.0).name == "plain-avg1"
    assert all(torch.equal(extra[k], mean[k]) for k in mean)
    beside = json.loads((average_dir(plain, 1.0) / "training.json").read_text(encoding="utf-8"))
    assert beside["config"] == record["config"] and beside["saved_beside"] == str(plain)
    assert torch.equal(last["bert.embeddings.word_embeddings.weight"], mean["bert.embeddings.word_embeddings.weight"])


def test_other_domains_add_their_train_queries_and_provenance(monkeypatch, tmp_path: Path) -> None:
    from evaluation.sources import domains
    from evaluation.sources.records import Record
    from training.default_model import domain_data

    fake = [Record("fake", f"k{i}", f"term{i}", d.synopsis, d.body) for i, d in enumerate(synthetic())]
    monkeypatch.setitem(domains.DOMAINS, "foldoc", domains.Domain("foldoc", "keyword", lambda cache: fake, ()))
    examples: list = []
    record: dict = {}
    config = replace(TrainConfig(), negatives=3, domains=(("foldoc", 20),))
    provenance = domain_data(config, tmp_path, examples, record)
    assert len(examples) == 20 and record["foldoc"]["queries"] == 20
    splits = build_splits(domains.as_descriptions(fake))
    assert [e.qid for e in examples] == [q.qid for q in splits.queries["train"][:20]]  # train split only
    assert provenance["foldoc"]["records_sha256"] == domains.records_sha256(fake)
    assert config.as_dict()["domains"] == [["foldoc", 20]]  # as training.json holds it


def test_domain_option_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    from training.default_model import main

    assert main(["/tmp/unused", "--domain", "novels=10"]) == 2
    assert "NAME in manpages, foldoc, wordnet, faq" in capsys.readouterr().err
