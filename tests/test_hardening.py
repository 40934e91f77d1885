"""Regression tests for the inputs a hostile user found (issue 19): one test per found bug.

The property-based harness that looks for more such inputs is ``tests/test_fuzz.py``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reranker_onnx import InputError, ManifestError, Reranker
from reranker_onnx.cli import main
from reranker_onnx.cutting import char_cap
from reranker_onnx.inputs import gather, split_lines
from reranker_onnx.manifest import file_entry, read_manifest
from reranker_onnx.store import staged, sweep_leftovers
from reranker_onnx.threads import resolve_threads, usable_cpus
from test_cli import run  # noqa: F401 - the CLI runner fixture


@pytest.fixture(scope="module")
def bert(exported):
    return Reranker(exported("bert"), variant="fp32", threads=1)


def one_line_error(err: str, code: int, expected: int) -> bool:
    return code == expected and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# 1. lines end at \n only -------------------------------------------------------------------------

SEPARATORS = ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_a_separator_inside_a_line_keeps_every_id_on_its_line(run, exported, tmp_path, sep):
    path = tmp_path / "ff.txt"
    path.write_text(f"one\ntwo{sep}three\nfour\n", encoding="utf-8")
    code, out, err = run("score", "q", "--file", str(path), "--model", str(exported("bert")),
                         "--json", "--with-text", "--keep-order")
    rows = json.loads(out)
    assert code == 0, err
    assert [(r["id"], r["text"]) for r in rows] == [(1, "one"), (2, f"two{sep}three"), (3, "four")]


@pytest.mark.parametrize("sep", ["\u2028", "\x85"])
def test_valid_json_lines_with_a_raw_separator_in_a_string_are_read(run, exported, tmp_path, sep):
    path = tmp_path / "r.jsonl"
    path.write_text(f'{{"id": "a", "text": "x{sep}y"}}\n{{"id": "b", "text": "z"}}\n', encoding="utf-8")
    code, out, err = run("score", "q", "--records", str(path), "--model", str(exported("bert")),
                         "--jsonl", "--with-text", "--keep-order")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]  # escaped in the output, so any line reader works
    assert [(r["id"], r["text"]) for r in rows] == [("a", f"x{sep}y"), ("b", "z")]


def test_split_lines_counts_like_wc_and_accepts_crlf():
    assert split_lines("a\r\nb\x0cc\n\nd") == ["a", "b\x0cc", "", "d"]
    assert split_lines("") == [] and split_lines("\n") == [""]


# 2. one numbering, every row traceable to one input ----------------------------------------------

def test_arguments_and_lines_are_numbered_alike_from_one(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("x\ny\n", encoding="utf-8")
    assert [p.id for p in gather(["x", "y"], None, None, True)] == [p.id for p in gather([], str(path), None, True)] == [1, 2]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ('{"id": 7, "text": "a"}\n{"id": 7, "text": "b"}\n', "line 2: id 7 is already used by .*line 1"),
        ('{"id": 2, "text": "a"}\n{"text": "b"}\n', "line 2: id 2 is already used by .*line 1"),
    ],
)
def test_repeated_record_ids_are_refused_naming_both_lines(tmp_path, records, message):
    path = tmp_path / "r.jsonl"
    path.write_text(records, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        gather([], None, str(path), True)


def test_the_id_2_and_the_id_two_as_a_string_may_both_stand(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": 2, "text": "a"}\n{"id": "2", "text": "b"}\n', encoding="utf-8")
    assert [p.id for p in gather([], None, str(path), True)] == [2, "2"]


def test_passages_come_from_one_source(run, exported, tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("x\n", encoding="utf-8")
    model = str(exported("bert"))
    code, out, err = run("score", "q", "arg", "--file", str(path), "--model", model)
    assert one_line_error(err, code, 2) and "one source per call" in err and out == ""
    code, _, err = run("score", "q", "--file", "-", "--records", "-", "--model", model, stdin=b"x\n")
    assert one_line_error(err, code, 2) and "both ask for standard input" in err


# 3. a long query is cut once, before pairing --------------------------------------------------------

class CountingTokenizer:
    """Wraps a tokenizer and records the length of every text it is given."""

    def __init__(self, inner):
        self.inner, self.lengths = inner, []

    def encode(self, text, *args, **kwargs):
        self.lengths.append(len(text))
        return self.inner.encode(text, *args, **kwargs)

    def encode_batch(self, batch, *args, **kwargs):
        self.lengths.extend(len(x) if isinstance(x, str) else len(x[0]) + len(x[1]) for x in batch)
        return self.inner.encode_batch(batch, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture()
def counted(exported, monkeypatch):
    """A fresh reranker whose tokenizers record what they are given."""
    reranker = Reranker(exported("bert"), variant="fp32", threads=1)
    encoder = reranker.scorer.encoder
    plain, paired = CountingTokenizer(encoder.plain), CountingTokenizer(encoder.tokenizer)
    monkeypatch.setattr(encoder, "plain", plain)
    monkeypatch.setattr(encoder, "tokenizer", paired)
    return reranker, plain, paired


def test_a_long_query_is_tokenized_in_full_never_and_cut_once(counted, caplog):
    reranker, plain, paired = counted
    words = [f"word{i % 97}" for i in range(10_000)]
    query = " ".join(words)
    passages = [f"passage number {i}" for i in range(200)]
    with caplog.at_level(logging.WARNING):
        long_scores = reranker.score(query, passages)
    assert "is cut to share max_length" in caplog.text
    assert max(plain.lengths) <= char_cap(reranker.scorer.encoder.text_tokens)
    assert max(paired.lengths, default=0) < 10 * reranker.info.max_length  # never the 10,000 words
    short = " ".join(words[:2 * reranker.info.max_length])  # more words than any pair can keep
    assert long_scores == reranker.score(short, passages)


# 4. memory bounded by the token budget for any passage ------------------------------------------------

@pytest.mark.parametrize(
    "make",
    [lambda n: "x" * n, lambda n: " " * n + "tail words here", lambda n: ("\u200b" * n) + " end", lambda n: "ab " * (n // 3)],
    ids=["one-word", "leading-blanks", "zero-width", "ordinary"],
)
def test_a_huge_passage_never_reaches_the_tokenizer_whole(counted, make):
    reranker, plain, paired = counted
    cap = char_cap(reranker.scorer.encoder.text_tokens)
    scores = reranker.score("query", [make(2_000_000), "short one"])
    assert all(map(lambda s: s == s and abs(s) < 1e30, scores))
    assert max(plain.lengths) <= cap and max(paired.lengths, default=0) <= 2 * cap


def test_an_ordinary_passage_cut_scores_like_the_whole(bert):
    from export.debian import read_descriptions

    body = " ".join(d.body for d in read_descriptions("en")[:400])
    assert len(body) > 2 * char_cap(bert.scorer.encoder.text_tokens)
    assert bert.scorer.encoder.cut(body).exact
    # The first max_length tokens lie in the first few thousand characters: cut or not, the same ids.
    assert bert.score("network tools", [body]) == bert.score("network tools", [body[:20_000]])


_RSS_SCRIPT = """
import json, resource, sys
from reranker_onnx import Reranker
reranker = Reranker(sys.argv[1], variant="fp32", threads=1, windows=sys.argv[6] == "windows")
reranker.score("warm up", ["a short passage"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
huge = sys.argv[2] * int(sys.argv[3])
query = sys.argv[4] * int(sys.argv[5])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reranker.score(query, [huge])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"input_kb": len(huge) // 1024, "call_kb": after - before}))
"""


@pytest.mark.parametrize(("unit", "count", "query", "repeat", "mode"), [
    ("x", 20_000_000, "query", 1, ""), (" ", 20_000_000, "query", 1, ""),
    ("語", 20_000, "語", 20_000, ""),  # long query and passage, no space in either: their overflows took 2.2 GB
    ("a passage", 1, "word ", 2_000_000, "windows"),  # windows counted a 10 MB query's tokens: 1.4 GB
])
def test_a_20_mb_passage_costs_megabytes_not_gigabytes(exported, unit, count, query, repeat, mode):
    """The report measured 1.4 GB for a 20 MB line; the call must now add no more than a few MB."""
    result = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(exported("bert")), unit, str(count), query, str(repeat), mode],
        capture_output=True, text=True, check=True,
    )
    measured = json.loads(result.stdout)
    assert measured["call_kb"] < 64 * 1024, measured  # was ~60× the input (1.4 GB); a few MB now


# 5. threads ------------------------------------------------------------------------------------------

def test_absurd_thread_counts_are_capped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_threads(10_000) == usable_cpus()
    assert "more than the" in caplog.text
    for bad in (0, -3, True, 2.5):
        with pytest.raises(InputError, match="threads must be a whole number"):
            resolve_threads(bad)


def test_the_cli_with_10000_threads_scores_and_exits(run, exported):
    code, out, err = run("score", "q", "p", "--model", str(exported("bert")), "--threads", "10000", "--json")
    assert code == 0 and len(json.loads(out)) == 1


# 6. one-line errors -------------------------------------------------------------------------------

def _lock_with_one_model(tmp_path, monkeypatch) -> None:
    """A private registry naming model "m", published at a port where nothing listens."""
    lock = tmp_path / "models.lock"
    lock.write_text(json.dumps({"lock_version": 1, "models": {"m": {
        "license": "mit", "family": "bert", "max_length": 8, "activation": "identity",
        "artifacts": {"url": "http://127.0.0.1:9/", "files": {"manifest.json": {"sha256": "0" * 64, "size": 1}}}}}}))
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(lock))


def test_pull_into_a_store_that_is_a_file_is_one_line(run, tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("RERANKER_ONNX_HOME", str(home))
    _lock_with_one_model(tmp_path, monkeypatch)
    code, _, err = run("pull", "m")
    assert one_line_error(err, code, 1) and "cannot write the model store" in err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_pull_into_a_read_only_store_is_one_line(run, tmp_path, monkeypatch):
    home = tmp_path / "read-only"
    home.mkdir(mode=0o500)
    monkeypatch.setenv("RERANKER_ONNX_HOME", str(home))
    _lock_with_one_model(tmp_path, monkeypatch)
    code, _, err = run("pull", "m")
    assert one_line_error(err, code, 1) and "cannot write the model store" in err


@pytest.mark.parametrize(
    "content",
    [None, "not json", "[1, 2]", '{"lock_version": 1, "models": {"m": {"family": "bert"}}}',
     '{"lock_version": 1, "models": {"m": {"license": "x", "family": ["a"], "max_length": 8, "activation": "x"}}}',
     '{"lock_version": 1, "models": {"m": {"license": "x", "family": "b", "max_length": "big", "activation": "x"}}}',
     '{"lock_version": 1, "models": []}'],
    ids=["missing", "not-json", "not-object", "incomplete", "wrong-type", "bad-number", "models-list"],
)
def test_a_bad_lock_is_one_line(run, tmp_path, monkeypatch, content):
    lock = tmp_path / "models.lock"
    if content is not None:
        lock.write_text(content)
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(lock))
    for argv in (["list"], ["pull", "m"]):
        code, _, err = run(*argv)
        assert one_line_error(err, code, 1), err


def _rewrite(model: Path, change) -> None:
    data = json.loads((model / "manifest.json").read_text())
    change(data)
    (model / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["files"][d["tokenizer"]].pop("size"),
        lambda d: d["files"].update({d["tokenizer"]: "abc"}),
        lambda d: d["variants"]["fp32"].update({"file": 3}),
        lambda d: d.update({"variants": {"fp32": ["x"]}}),
        lambda d: d.update({"max_length": True}),
        lambda d: d.update({"inputs": [1, 2]}),
        lambda d: d.update({"format_version": -1}),
    ],
)
def test_a_malformed_manifest_is_one_manifest_error(model_copy, change):
    model = model_copy("bert")
    _rewrite(model, change)
    with pytest.raises(ManifestError):
        read_manifest(model)


@pytest.mark.parametrize("which", ["graph", "tokenizer"])
def test_a_malformed_file_whose_hash_matches_is_one_manifest_error(model_copy, run, which):
    model = model_copy("bert")
    manifest = read_manifest(model)
    name = manifest.variants["fp32"].file if which == "graph" else manifest.tokenizer
    (model / name).write_bytes(b"\x08\x01garbage that is no protobuf and no json")
    entry = file_entry(model / name)
    _rewrite(model, lambda d: d["files"].update({name: {"sha256": entry.sha256, "size": entry.size}}))
    with pytest.raises(ManifestError, match="matches its hash but cannot be loaded"):
        Reranker(model, variant="fp32")
    code, _, err = run("score", "q", "p", "--model", str(model), "--variant", "fp32")
    assert one_line_error(err, code, 1)


def test_concurrent_installs_of_one_model_all_succeed(tmp_path):
    target = tmp_path / "store" / "m"
    target.parent.mkdir()
    errors: list[BaseException] = []

    def install(k: int) -> None:
        for i in range(25):
            try:
                with staged(target) as tmp:
                    (tmp / "manifest.json").write_text(f"{k}-{i}")
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=install, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (target / "manifest.json").read_text().count("-") == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]  # no staging or set-aside folder left


# 7. leftovers of killed pulls ----------------------------------------------------------------------

_STAGE_AND_WAIT = """
import sys, time
from pathlib import Path
from reranker_onnx.store import staged
with staged(Path(sys.argv[1]) / "m") as tmp:
    (tmp / "half").write_text("x")
    print(tmp, flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_leftovers_of_a_killed_pull_are_swept_and_live_ones_kept(tmp_path, run, sig):
    store = tmp_path / "store"
    store.mkdir()
    child = subprocess.Popen([sys.executable, "-c", _STAGE_AND_WAIT, str(store)], stdout=subprocess.PIPE, text=True)
    left = Path(child.stdout.readline().strip())
    assert left.is_dir() and sweep_leftovers(store) == []  # alive: kept
    child.send_signal(sig)
    child.wait(timeout=30)
    child.stdout.close()
    assert left.is_dir()  # the killed process could not clean up
    old = store / ".m.partial-from-an-older-version"
    old.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    code, _, _ = run("list")  # `list` sweeps what no live process owns
    assert code == 0 and not left.exists() and not old.exists()
    assert list(store.iterdir()) == []


# 8. untrusted text on a terminal -------------------------------------------------------------------

def test_table_output_shows_escape_sequences_inert(run, exported, tmp_path):
    records = tmp_path / "r.jsonl"
    records.write_text(json.dumps({"id": "\x1b[31mred", "text": "title \x1b]0;pwned\x07 and \x9b2J clear \u202e"}) + "\n")
    code, out, err = run("score", "q", "--records", str(records), "--model", str(exported("bert")))
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[31mred" in out


# 9. small surprises -------------------------------------------------------------------------------

def test_the_bundled_model_answers_to_the_name_list_shows(run):
    code, out, _ = run("list")
    assert code == 0 and "default-en" in out
    code, out, err = run("score", "q", "p", "--model", "default-en", "--json")
    assert code == 0, err


@pytest.mark.parametrize("query", ["", "   ", "\x00\x00", "\u200b\u200d", "\ufeff", "\x00 \u200b\t"])
def test_one_rule_for_empty_queries_in_score_rank_and_predict(bert, run, exported, query):
    for call in (lambda: bert.score(query, ["p"]), lambda: bert.rank(query, ["p"]),
                 lambda: bert.predict([("real query", "p"), (query, "p")])):
        with pytest.raises(InputError, match="is empty"):
            call()
    code, _, err = run("score", query, "p", "--model", str(exported("bert")))
    assert one_line_error(err, code, 2) and "is empty" in err


# Found beyond the list ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": 1' + "0" * 5000 + ', "text": "a"}', "a number too large"),  # Python refuses over 4,300 digits
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('\ufeff{"id": "bom", "text": "a"}', None),  # a byte-order mark at the start of the file is no text
    ],
    ids=["huge-integer", "deep-nesting", "byte-order-mark"],
)
def test_records_python_json_cannot_take_are_one_line_errors(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    if message is None:
        assert [p.id for p in gather([], None, str(path), True)] == ["bom"]
        return
    with pytest.raises(InputError, match=message):
        gather([], None, str(path), True)


def test_max_length_below_the_template_is_refused(exported):
    with pytest.raises(InputError, match="max_length must be between 5 and 512"):
        Reranker(exported("bert"), max_length=4)
