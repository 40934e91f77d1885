"""Property-based tests (hypothesis) of every input surface: the Python API, the CLI, the model
directory and the lock readers.

Properties: the only outcomes are a documented result or a one-line documented error; ids and order
map back to the input exactly; scores are finite; the tokenizer never sees more than the token budget
allows (which bounds a call's memory); the same inputs give the same fp32 scores however they are split
into calls, and cutting a text before pairing gives the very token ids the full text gives.

Two profiles (``RERANKER_FUZZ``): ``quick`` (the default, in ``make test``) runs a few examples per
property, the same ones every run, and replays failures saved in ``tests/fuzz-db``; ``deep`` (``make
fuzz``) runs ``RERANKER_FUZZ_EXAMPLES`` random examples per property and saves each failure there.
Turn a saved failure into an ``@example`` below once it is fixed.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

from reranker_onnx import InputError, ManifestError, Reranker, RerankerError
from reranker_onnx.cli import main
from reranker_onnx.cutting import char_cap, cut_to_tokens
from reranker_onnx.encoding import PairEncoder
from reranker_onnx.manifest import read_manifest
from reranker_onnx.registry import load_lock

PROFILE = os.environ.get("RERANKER_FUZZ", "quick")
DEEP = PROFILE == "deep"
DB = Path(__file__).resolve().parent / "fuzz-db"
_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])
settings.register_profile("quick", max_examples=10, database=ReadOnlyDatabase(DirectoryBasedExampleDatabase(DB)), **_common)
settings.register_profile("deep", max_examples=int(os.environ.get("RERANKER_FUZZ_EXAMPLES", "300")),
                          database=DirectoryBasedExampleDatabase(DB), **_common)
settings.load_profile(PROFILE)
same_every_run = (lambda test: test) if DEEP else seed(19)  # make test is deterministic; make fuzz explores
HUGE = 400_000 if DEEP else 60_000  # characters of the longest generated token (the runtime cuts it)
LONG = 12_000  # ... where a test tokenizes the whole text itself, for reference
# ... and where it pairs two whole texts: the reference's pair truncation builds every combination of the
# two texts' overflowing parts (memory ~ n_query × n_passage / kept tokens: 100k-token texts took 20 GB;
# 5,000 tokens a side at max_length 8, 4 GB), so a side stays under about 1,000 tokens here
PAIRED = 100

# -- strategies ------------------------------------------------------------------------------------

SPECIAL = [
    "\x00", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1b", "\x1b]0;title\x07", "\x1c", "\x1d", "\x1e",
    "\x7f", "\x85", "\x9b", "\xa0", "\u200b", "\u200d", "\u2028", "\u2029", "\u202e", "\u3000", "\ufeff",
    "\ufffd", " ", "  ", "日本語の文章", "é", "e\u0301", "🤖", "[CLS]", "[SEP]", "<s>", "</s>", "<pad>", "##ing",
    "don't", "a.b,c", "１２３",
]


def _texts(longest: int) -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.text(max_size=12),
        st.sampled_from(SPECIAL),
        st.builds(lambda unit, n: unit * n, st.sampled_from(["x", "é", " ", "\u200b", "ab ", "\n", "語"]),
                  st.integers(0, longest)),
    )
    return st.lists(pieces, max_size=8).map("".join)


texts, short_texts, paired_texts = _texts(HUGE), _texts(LONG), _texts(PAIRED)
surrogates = st.characters(categories=["Cs"]).map(lambda c: f"bad {c} text")
any_text = st.one_of(texts, texts, texts, surrogates)  # mostly valid Unicode, sometimes a lone surrogate
WORDS = ["tool", "files", "archive", "editor", "日本", "x" * 300, "a.b", "ünï"]  # each has tokens in every model
words = st.lists(st.sampled_from(WORDS), min_size=1,
                 max_size=40).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message.strip() and "Traceback" not in message


class CountingTokenizer:
    """Delegates to a tokenizer and records the longest text it was given and the most tokens it made
    for one text or pair (overflowing parts included: they are memory too)."""

    def __init__(self, inner):
        self.inner, self.longest, self.made = inner, 0, 0

    def _made(self, encodings):
        self.made = max([self.made, *(len(e.ids) + sum(len(o.ids) for o in e.overflowing) for e in encodings)])
        return encodings

    def encode(self, text, *args, **kwargs):
        self.longest = max(self.longest, len(text))
        return self._made([self.inner.encode(text, *args, **kwargs)])[0]

    def encode_batch(self, batch, *args, **kwargs):
        self.longest = max([self.longest, *(len(x) if isinstance(x, str) else len(x[0]) + len(x[1]) for x in batch)])
        return self._made(self.inner.encode_batch(batch, *args, **kwargs))

    def post_process(self, *args, **kwargs):
        return self._made([self.inner.post_process(*args, **kwargs)])[0]

    def reset(self):
        self.longest = self.made = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def reranker(exported):
    """The tiny BERT at fp32, its tokenizers counting what they are given."""
    r = Reranker(exported("bert"), variant="fp32", threads=1)
    r.scorer.encoder.plain = CountingTokenizer(r.scorer.encoder.plain)
    r.scorer.encoder.tokenizer = CountingTokenizer(r.scorer.encoder.tokenizer)
    return r


@pytest.fixture(scope="module")
def windowed(exported):
    """The tiny BERT scoring long passages as windows (MaxP), its window tokenizer counting too."""
    r = Reranker(exported("bert"), variant="fp32", threads=1, windows=True, window=24, stride=8, max_windows=4)
    r.scorer.encoder.plain = CountingTokenizer(r.scorer.encoder.plain)
    r.scorer.encoder.tokenizer = CountingTokenizer(r.scorer.encoder.tokenizer)
    r.scorer.windower.tokenizer = CountingTokenizer(r.scorer.windower.tokenizer)
    return r


@pytest.fixture(scope="module")
def tokenizers(checkpoint):
    """Each family's own tokenizer (WordPiece, SentencePiece Unigram, byte-level BPE)."""
    from tokenizers import Tokenizer

    return {f: Tokenizer.from_file(str(checkpoint(f) / "tokenizer.json")) for f in ("bert", "xlm-roberta", "modernbert")}


# -- the Python API ----------------------------------------------------------------------------------

def _bound(r: Reranker) -> int:
    return 2 * char_cap(r.scorer.encoder.text_tokens)  # a cut query beside a cut passage


def _within_budget(r: Reranker) -> None:
    """The tokenizers saw at most a cut query beside a cut passage, and made at most a few times the
    tokens those hold (a passage's overflowing parts each repeat the query)."""
    counted = [r.scorer.encoder.plain, r.scorer.encoder.tokenizer]
    assert max(t.longest for t in counted) <= _bound(r)
    assert max(t.made for t in counted) <= 2 * _bound(r), [t.made for t in counted]
    for t in counted:
        t.reset()


@same_every_run
@given(query=any_text, passages=st.lists(any_text, max_size=6))
@example(query="\x00\u200b", passages=["p"])  # blank queries: one rule for score, rank and predict
@example(query="q", passages=["x" * 2_000_000, " " * 2_000_000 + "tail"])  # huge words, leading blanks
@example(query="one two", passages=["one\x0ctwo", "a\u2028b"])
@example(query="語" * 20_000, passages=["語" * 20_000])  # found by make fuzz: paired overflows took 2.2 GB
def test_score_is_finite_in_order_or_one_documented_error(reranker, query, passages):
    reranker.scorer.encoder.plain.reset()
    reranker.scorer.encoder.tokenizer.reset()
    try:
        scores = reranker.score(query, passages)
    except InputError as exc:
        assert one_line(str(exc))
        assert "is empty" in str(exc) or "not valid Unicode" in str(exc)
        return
    assert len(scores) == len(passages) and all(type(s) is float and math.isfinite(s) for s in scores)
    _within_budget(reranker)


@same_every_run
@given(query=any_text, passages=st.lists(any_text, max_size=4))
@example(query="word " * 200_000, passages=["a passage"])  # windows read the whole query: 10 MB took 20 s, 1.4 GB
def test_windows_score_is_finite_in_order_and_reads_a_bounded_query(windowed, query, passages):
    windower = windowed.scorer.windower
    windower.tokenizer.reset()
    try:
        scores = windowed.score(query, passages)
    except InputError as exc:
        assert one_line(str(exc)) and ("is empty" in str(exc) or "not valid Unicode" in str(exc))
        return
    assert len(scores) == len(passages) and all(type(s) is float and math.isfinite(s) for s in scores)
    room = windower.window - windower.specials
    assert windower.tokenizer.longest <= max(char_cap(windower.query_share), (windower.max_windows * windower.stride + room) * 64)
    _within_budget(windowed)


@same_every_run
@given(query=words, passages=st.lists(texts, min_size=1, max_size=8), cut=st.integers(0, 8), top_k=st.integers(1, 9))
def test_scores_do_not_depend_on_how_calls_split_the_input(reranker, query, passages, cut, top_k):
    whole = reranker.score(query, passages)
    split = reranker.score(query, passages[:cut]) + reranker.score(query, passages[cut:])
    pairs = reranker.predict([(query, p) for p in passages])
    assert split == pytest.approx(whole, abs=1e-5) and pairs == pytest.approx(whole, abs=1e-5)
    ranked = reranker.rank(query, passages, top_k=top_k, return_documents=True)
    assert [r["corpus_id"] for r in ranked] == sorted(range(len(whole)), key=lambda i: -whole[i])[:top_k]
    assert all(r["text"] is passages[r["corpus_id"]] and r["score"] == whole[r["corpus_id"]] for r in ranked)


@same_every_run
@given(pairs=st.lists(st.tuples(any_text, any_text) | json_values, max_size=4))
def test_predict_takes_pairs_or_says_which_one_is_wrong(reranker, pairs):
    try:
        scores = reranker.predict(pairs)
    except InputError as exc:
        assert one_line(str(exc)) and ("pair" in str(exc) or "pairs" in str(exc))
        return
    assert len(scores) == len(pairs) and all(math.isfinite(s) for s in scores)


@same_every_run
@given(family=st.sampled_from(["bert", "xlm-roberta", "modernbert"]), max_length=st.sampled_from([8, 16, 40]),
       query=paired_texts, passage=paired_texts)
@example(family="modernbert", max_length=8, query="a" + " " * 40 + "b c d e f g h i", passage="x")
@example(family="xlm-roberta", max_length=16, query="q", passage="日本語の文章" * 400 + " end")
@example(  # found by make fuzz: both sides long, the odd token must go to the longer whole text
    family="bert", max_length=8,
    query="".join(["ab " * 39, "\U000f648dgwÉ3É", "\U0004991e\x9f", "ab " * 39, "avx512_vnni", "\x1b]0;title\x07", "\x1d", "é" * 266]),
    passage="".join(["ab " * 39, "\U000f648dgwÉ3É", "\U0004991e\x9f", " " * 3006, "avx512_vnni", "\x1b]0;title\x07", "\x1d", "é" * 266]),
)
@example(  # found by make fuzz: both texts past the read limit, the odd token went to the longer read part
    family="bert", max_length=16, query="q " * 500, passage="ab " * 1000)
def test_cutting_before_pairing_gives_the_full_texts_token_ids(tokenizers, family, max_length, query, passage):
    """The cuts are exact: pairing the cut texts gives the ids the reference's truncation gives."""
    from tokenizers import Tokenizer

    reference = Tokenizer.from_str(tokenizers[family].to_str())
    reference.no_padding()
    reference.enable_truncation(max_length, strategy="longest_first")
    encoder = PairEncoder(Tokenizer.from_str(tokenizers[family].to_str()), max_length)
    q_cut, p_cut = encoder.cut(query), encoder.cut(passage)
    if not (q_cut.exact and p_cut.exact):  # only a pathological text (no space in 64 chars per token)
        return
    expected = reference.encode(query, passage).ids
    assert encoder.encode([(query, passage)]).ids == [expected]


@same_every_run
@given(family=st.sampled_from(["bert", "xlm-roberta", "modernbert"]), text=short_texts, max_tokens=st.integers(1, 40))
def test_an_exact_cut_keeps_the_first_tokens_and_reads_a_bounded_prefix(tokenizers, family, text, max_tokens):
    tokenizer = tokenizers[family]
    tokenizer.no_truncation()
    cut = cut_to_tokens(tokenizer, text, max_tokens)
    assert text.startswith(cut.text) and len(cut.text) <= char_cap(max_tokens)
    if cut.exact:
        full = tokenizer.encode(text, add_special_tokens=False).ids[:max_tokens]
        assert tokenizer.encode(cut.text, add_special_tokens=False).ids[:max_tokens] == full



# Units of text without spaces: CJK and kana runs, Latin letters (one huge token), punctuation, emoji,
# characters NFKC composes (half-width kana with its voicing mark, e + combining acute).
NO_SPACE = ["語", "日本語の文章", "あ", "テスト", "ｶﾞ", "x", "ab", "e\u0301", "。", "a.b", "１２３", "🤖"]
no_space = st.lists(st.builds(lambda unit, n: unit * n, st.sampled_from(NO_SPACE), st.integers(1, LONG // 6)),
                    min_size=1, max_size=4).map("".join)


@same_every_run
@given(family=st.sampled_from(["bert", "xlm-roberta", "modernbert"]), text=no_space, max_tokens=st.integers(1, 60))
@example(family="xlm-roberta", text="語" * 12_000, max_tokens=40)  # a CJK run is one SentencePiece word
@example(family="bert", text="日本語の文章" * 2_000, max_tokens=60)  # ... and many BERT words
@example(family="modernbert", text="x" * 12_000, max_tokens=8)  # one huge token
@example(family="bert", text="ab" * 6_000, max_tokens=1)  # one unknown WordPiece word
def test_a_text_without_spaces_is_cut_exactly(tokenizers, family, text, max_tokens):
    """The known doubt of the cheap cut: no space after the kept tokens. Whenever the characters read
    hold more tokens than are kept, the cut is exact (the same first ids as the whole text), but for a
    WordPiece word that the read limit cuts before its 100th character (it may be one unknown token);
    when they hold no more (one word longer than the read limit), exact or not, it says which."""
    tokenizer = tokenizers[family]
    tokenizer.no_truncation()
    cut = cut_to_tokens(tokenizer, text, max_tokens)
    assert text.startswith(cut.text) and len(cut.text) <= char_cap(max_tokens)
    full = tokenizer.encode(text, add_special_tokens=False).ids[:max_tokens]
    if cut.exact:
        assert tokenizer.encode(cut.text, add_special_tokens=False).ids[:max_tokens] == full
    straddled = family == "bert" and len(cut.text) == char_cap(max_tokens)
    assert cut.exact or cut.tokens <= max_tokens or straddled, (cut.tokens, len(cut.text))

# -- the CLI ---------------------------------------------------------------------------------------

def _run_cli(capsys, monkeypatch, argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what building a fixture printed
    fake = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
    fake.isatty = (lambda: False) if stdin is not None else (lambda: True)  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", fake)
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _documented_failure(code: int, err: str) -> bool:
    """Our errors are one line (after any one-line warnings); click's usage errors (exit 2) end with
    one "Error:" line."""
    lines = err.strip().splitlines()
    if "Traceback" in err or not lines:
        return False
    if code == 2 and lines[-1].startswith("Error:"):
        return True
    warnings_then_error = all(line.startswith("rerank-onnx: ") for line in lines)
    return code in (1, 2) and warnings_then_error and lines[-1].startswith("rerank-onnx: error:")


OPTIONS = st.one_of(
    st.tuples(st.sampled_from(["--top-k", "--max-length", "--threads"]),
              st.one_of(st.integers(-3, 600).map(str), st.sampled_from(["10000", "1e3", "", "x", "9" * 30]))),
    st.tuples(st.sampled_from(["--variant"]), st.sampled_from(["fp32", "avx2", "avx9000", "", "FP32"])),
    st.tuples(st.sampled_from(["--json", "--jsonl", "--with-text", "--keep-order", "--windows"])),
    st.tuples(st.sampled_from(["--window", "--stride"]), st.one_of(st.integers(-1, 600).map(str), st.just("x"))),
    st.tuples(st.sampled_from(["--file", "--records"]), st.sampled_from(["", "-", "/nonexistent", "/"])),
    st.tuples(st.text(max_size=8)),
)


@same_every_run
@given(query=texts, passages=st.lists(texts, max_size=3), options=st.lists(OPTIONS, max_size=4))
@example(query="q", passages=["p"], options=[("--max-length", "2")])
def test_any_command_line_gives_a_result_or_a_documented_error(exported, capsys, monkeypatch, query, passages, options):
    argv = ["score", query, *passages, "--model", str(exported("bert"))] + [a for o in options for a in o]
    code, out, err = _run_cli(capsys, monkeypatch, argv, stdin=b"from stdin\n")
    assert code == 0 or _documented_failure(code, err), (code, err)


def _numbered_lines(lines: list[str], crlf: bool) -> bytes:
    return ("\r\n" if crlf else "\n").join(lines).encode("utf-8", "surrogatepass")


@same_every_run
@given(lines=st.lists(st.text(st.characters(exclude_characters="\n")) | st.sampled_from(SPECIAL[:-8]), max_size=8),
       crlf=st.booleans(), via_stdin=st.booleans())
@example(lines=["one", "two\x0cthree", "four"], crlf=False, via_stdin=False)
def test_every_row_of_a_file_maps_back_to_its_line(exported, capsys, monkeypatch, tmp_path, lines, crlf, via_stdin):
    lines = [line.replace("\n", " ") for line in lines]
    data = _numbered_lines(lines, crlf)
    path = tmp_path / "passages.txt"
    path.write_bytes(data)
    source = ["--file", "-"] if via_stdin else ["--file", str(path)]
    argv = ["score", "query", *source, "--model", str(exported("bert")), "--json", "--with-text", "--keep-order"]
    code, out, err = _run_cli(capsys, monkeypatch, argv, stdin=data if via_stdin else None)
    try:
        expected = [(n, line.rstrip("\r")) for n, line in enumerate(lines, 1) if line.rstrip("\r").strip()]
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert code == 2 and _documented_failure(code, err) and "not valid UTF-8" in err
        return
    if not expected:
        assert code == 2 and "no passages" in err
        return
    assert code == 0, err
    assert [(r["id"], r["text"]) for r in json.loads(out)] == expected


@same_every_run
@given(records=st.lists(st.one_of(
    st.fixed_dictionaries({"text": texts}, optional={"id": st.one_of(st.integers(-5, 5), st.text(max_size=3),
                                                                    json_values)}),
    json_values), min_size=1, max_size=6))
@example(records=[{"id": 1, "text": "a"}, {"text": "b"}, {"id": 1, "text": "c"}])
@example(records=[{"text": "\u2028"}])  # found by make fuzz: raw U+2028 in JSON Lines output split its line
def test_every_record_maps_back_to_its_id_or_is_refused_in_one_line(exported, capsys, monkeypatch, tmp_path, records):
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8",
                    errors="surrogatepass")
    argv = ["score", "query", "--records", str(path), "--model", str(exported("bert")), "--jsonl", "--with-text",
            "--keep-order"]
    code, out, err = _run_cli(capsys, monkeypatch, argv)
    if code != 0:
        assert code == 2 and _documented_failure(code, err), err
        return
    rows = [json.loads(line) for line in out.splitlines()]
    expected = [(r.get("id", n), r["text"]) for n, r in enumerate(records, 1)]
    assert [(row["id"], row["text"]) for row in rows] == expected
    assert len({json.dumps(row["id"]) for row in rows}) == len(rows)  # no two rows share an id


# -- the model directory and lock readers -------------------------------------------------------------

def _mutate(data, path: list, value, delete: bool):
    """``data`` with the value at ``path`` (keys/indices, taken modulo) replaced or deleted."""
    node = data
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict) and node:
        key = sorted(node)[path[-1] % len(node)]
        if delete:
            del node[key]
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    return data


@same_every_run
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=4), value=json_values, delete=st.booleans())
def test_a_damaged_manifest_loads_or_is_one_documented_error(exported, tmp_path_factory, path, value, delete):
    model = tmp_path_factory.mktemp("model") / "bert"
    shutil.copytree(exported("bert"), model)
    manifest = model / "manifest.json"
    manifest.write_text(json.dumps(_mutate(json.loads(manifest.read_text()), path, value, delete)))
    try:
        read_manifest(model)
        Reranker(model, variant="fp32", threads=1).score("q", ["p"])
    except RerankerError as exc:
        assert one_line(str(exc))


@same_every_run
@given(path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=json_values, delete=st.booleans(),
       raw=st.one_of(st.none(), st.binary(max_size=40)))
def test_a_damaged_lock_is_read_or_is_one_documented_error(tmp_path_factory, monkeypatch, capsys, path, value, delete, raw):
    lock = tmp_path_factory.mktemp("lock") / "models.lock"
    if raw is None:
        real = json.loads((Path(__file__).resolve().parents[1] / "models.lock").read_text())
        lock.write_text(json.dumps(_mutate(real, path, value, delete)))
    else:
        lock.write_bytes(raw)
    monkeypatch.setenv("RERANKER_ONNX_LOCK", str(lock))
    try:
        entries = load_lock()
    except ManifestError as exc:
        assert one_line(str(exc))
    else:
        assert all(isinstance(e.family, str) for e in entries.values())
    for argv in (["list"], ["pull", "--offline", "ms-marco-TinyBERT-L2-v2"], ["pull", "--offline", "default-en"]):
        code, _, err = _run_cli(capsys, monkeypatch, argv)
        assert code == 0 or _documented_failure(code, err), (argv, err)
