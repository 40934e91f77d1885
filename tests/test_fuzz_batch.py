"""Property-based tests (hypothesis) of ``rerank-onnx batch`` rows, under test_fuzz's profiles.

Any JSON Lines or Parquet input, cut into shards of random sizes: the job ends with a documented exit
code or one documented error line; every non-blank input row is in OUTPUT (in input order, its fields
kept, with finite scores equal to ``Reranker.predict``'s and ranks that follow them) or in the errors
file (its line, a one-line reason), never both, never twice; a row built valid is never refused; OUTPUT
is strict JSON Lines that any line reader splits right; a stopped job leaves no OUTPUT, and its resumed
run gives what an uninterrupted one gives; a finished one leaves no parts or temporary files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reranker_onnx import Reranker, RerankerError
from reranker_onnx.batch import BatchJob, Limits, run_batch
from reranker_onnx.batch.rows import BadRow, Row, parse_line
from test_fuzz import SPECIAL, WORDS, json_values, one_line, same_every_run, short_texts, words

pq = pytest.importorskip("pyarrow.parquet")
import pyarrow as pa  # noqa: E402

ids = st.one_of(st.integers(-3, 3), st.text(max_size=3))
good_text = st.one_of(short_texts, st.sampled_from(SPECIAL))
good_candidate = st.fixed_dictionaries({"text": good_text}, optional={"id": ids, "note": json_values})
good_row = st.one_of(
    st.fixed_dictionaries({"query": words, "text": good_text}, optional={"id": ids, "extra": json_values}),
    st.fixed_dictionaries({"query": words, "candidates": st.lists(good_candidate, max_size=3)}, optional={"id": ids}),
)
any_field = st.one_of(json_values, good_text, st.characters(categories=["Cs"]))  # and lone surrogates
any_row = st.fixed_dictionaries({}, optional={
    "id": st.one_of(ids, json_values), "query": st.one_of(words, any_field), "text": any_field,
    "candidates": st.one_of(st.lists(st.one_of(good_candidate, st.dictionaries(st.sampled_from(["id", "text"]), any_field)),
                                     max_size=5), json_values),
    "extra": json_values,
})
# Lines no JSON encoder writes: broken or non-standard JSON, bad UTF-8, huge numbers, deep nesting.
RAW = [b"", b"  ", b"\r", b"\x0c", "\u2028".encode(), b"{broken", b"\xff\xfe{}", b"[1, 2]", b"null", b"NaN",
       b'{"query": "q", "text": "t", "x": NaN}', b'{"query": "q", "text": "t", "x": -Infinity}',
       b'{"query": "q", "text": "t", "n": ' + b"9" * 5000 + b"}", b'{"query": "q", "text": ' + b"[" * 100_000,
       b'{"query": "q", "text": "t"} trailing', b'{"query": "q", "text": "\\ud800"}', b'{"query": "q", "text": "t", "query": 1}']


@st.composite
def jsonl_lines(draw) -> tuple[bytes, bool]:
    """One line (without its newline) and whether it is built valid."""
    kind = draw(st.sampled_from(["good", "good", "any", "raw"]))
    if kind == "raw":
        return draw(st.sampled_from(RAW)), False
    record = draw(good_row if kind == "good" else any_row)
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass"), kind == "good"


limits = st.builds(Limits, shard_bytes=st.integers(1, 3000), shard_rows=st.integers(1, 6),
                   max_line_bytes=st.sampled_from([60, 400, 16 << 20]), max_candidates=st.integers(0, 4))


@pytest.fixture(scope="module")
def model(exported):
    return exported("bert")


@pytest.fixture(scope="module")
def reranker(model):
    return Reranker(model, variant="fp32", threads=1)


def _strict_json(line: str):
    def refuse(constant):
        raise AssertionError(f"{constant} in the output is not JSON")

    return json.loads(line, parse_constant=refuse)


def _run(model, source: Path, out: Path, **options):
    job = BatchJob(str(source), str(out), model=str(model), variant="fp32", threads=1, **options)
    try:
        return run_batch(job, progress=False)
    except RerankerError as exc:  # the CLI prints it as one line
        assert one_line(str(exc)), str(exc)
        raise


def _check_row(before: dict, after: dict, reranker: Reranker, top_k: int | None, max_candidates: int) -> None:
    """``after`` is ``before`` with its scores (and ranks), and ``before`` is a row the job may accept."""
    assert isinstance(before.get("query"), str) and before["query"].strip()
    assert before.get("id") is None or type(before["id"]) in (int, str)
    if "text" in before and before["text"] is not None:
        assert isinstance(before["text"], str)
        expected = reranker.predict([(before["query"], before["text"])])[0]
        assert {**after, "score": None} == {**before, "score": None}
        assert math.isfinite(after["score"]) and after["score"] == pytest.approx(expected, abs=1e-5)
        return
    candidates = before["candidates"]
    assert isinstance(candidates, list) and len(candidates) <= max_candidates
    scores = reranker.predict([(before["query"], c["text"]) for c in candidates]) if candidates else []
    assert {**after, "candidates": None} == {**before, "candidates": None}
    kept = _subsequence([{**c, "score": None, "rank": None} for c in after["candidates"]],
                        [{**c, "score": None, "rank": None} for c in candidates])
    assert len(kept) == min(top_k or len(candidates), len(candidates))
    for i, c in zip(kept, after["candidates"]):
        assert math.isfinite(c["score"]) and c["score"] == pytest.approx(scores[i], abs=1e-5)
    dropped = set(range(len(candidates))) - set(kept)
    assert all(scores[j] <= min(scores[i] for i in kept) + 1e-5 for j in dropped)  # the best ones stay
    by_rank = sorted(zip([c["rank"] for c in after["candidates"]], kept, after["candidates"]))
    assert [r for r, _, _ in by_rank] == list(range(1, len(kept) + 1))
    for (_, i, a), (_, j, b) in zip(by_rank, by_rank[1:]):  # best first, ties in input order
        assert a["score"] > b["score"] or (a["score"] == b["score"] and i < j)


def _subsequence(items: list, within: list) -> list[int]:
    """Indices in ``within`` of ``items``, matched in order (equal items are interchangeable)."""
    at, found = 0, []
    for item in items:
        while at < len(within) and within[at] != item:
            at += 1
        assert at < len(within), f"{item!r} is not an input candidate, in input order"
        found.append(at)
        at += 1
    return found


def _check_job(model, reranker, tmp_path, source: Path, records: dict[int, object], valid: set[int],
               top_k, max_errors, job_limits: Limits) -> None:
    """Run the job (resuming it if it stopped) and check every property against ``records`` (the
    non-blank rows by number: the decoded record, or None where it cannot be decoded)."""
    out = tmp_path / "out.jsonl"
    report = _run(model, source, out, top_k=top_k, max_errors=max_errors, limits=job_limits)
    errors_path = tmp_path / "out.jsonl.errors.jsonl"
    if report.stopped:
        assert report.exit_code == 4 and not out.exists() and (tmp_path / "out.jsonl.parts").is_dir()
        first = [json.loads(line) for line in errors_path.read_text().splitlines()]
        assert len(first) > max_errors
        report = _run(model, source, out, top_k=top_k, max_errors=10**9, limits=job_limits)
        again = _run(model, source, tmp_path / "fresh.jsonl", top_k=top_k, max_errors=10**9, limits=job_limits)
        assert out.read_bytes() == (tmp_path / "fresh.jsonl").read_bytes()
        assert errors_path.read_bytes() == (tmp_path / "fresh.jsonl.errors.jsonl").read_bytes()
        assert report.bad == again.bad
        for name in ("fresh.jsonl", "fresh.jsonl.errors.jsonl"):
            (tmp_path / name).unlink()
    errors = [_strict_json(line) for line in errors_path.read_text(encoding="utf-8").splitlines()] if errors_path.exists() else []
    assert report.exit_code == (3 if errors else 0) and report.bad == len(errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, "out.jsonl"] + ["out.jsonl.errors.jsonl"] * bool(errors))
    bad = [e["line"] for e in errors]
    assert bad == sorted(set(bad)) and set(bad) <= set(records), (bad, sorted(records))
    assert all(one_line(e["reason"]) for e in errors)
    assert not valid & set(bad), [e for e in errors if e["line"] in valid]
    text = out.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    lines = text.splitlines()  # also splits at U+2028 and the like: a row must not hold them raw
    assert len(lines) == len(text.split("\n")) - 1
    good = [n for n in sorted(records) if n not in bad]
    assert len(lines) == len(good)
    for n, line in zip(good, lines):
        before = records[n]
        assert isinstance(before, dict), (n, before)
        _check_row(before, _strict_json(line), reranker, top_k, job_limits.max_candidates)


@same_every_run
@given(lines=st.lists(jsonl_lines(), max_size=12), crlf=st.booleans(), last_newline=st.booleans(),
       top_k=st.none() | st.integers(1, 3), max_errors=st.integers(0, 4), job_limits=limits)
@example(  # found by the harness: an integer of over 4,300 digits stopped the job with a traceback
    lines=[(b'{"query": "q", "text": "t", "n": ' + b"9" * 5000 + b"}", False)], crlf=False, last_newline=True,
    top_k=None, max_errors=4, job_limits=Limits())
@example(  # found by the harness: NaN was written back (not JSON); a raw U+2028 split a row for line readers
    lines=[(b'{"query": "q", "text": "t", "x": NaN}', False), ('{"query": "tool", "text": "a\u2028b\x85"}'.encode(), True)],
    crlf=True, last_newline=False, top_k=None, max_errors=4, job_limits=Limits())
def test_every_json_lines_row_is_scored_once_in_order_or_reported(model, reranker, tmp_path_factory, lines, crlf,
                                                                   last_newline, top_k, max_errors, job_limits):
    tmp_path = tmp_path_factory.mktemp("job")
    data = (b"\r\n" if crlf else b"\n").join(line for line, _ in lines) + (b"\n" if last_newline and lines else b"")
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    records, valid = {}, set()
    for n, ((line, built_valid), raw) in enumerate(zip(lines, data.split(b"\n")), start=1):
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            records[n] = None
            continue
        if not decoded.strip():
            continue
        try:
            records[n] = json.loads(decoded)
        except (ValueError, RecursionError):
            records[n] = None
        if built_valid and len(raw) <= job_limits.max_line_bytes:
            valid.add(n)
    valid = {n for n in valid if len(_candidates(records[n])) <= job_limits.max_candidates}
    _check_job(model, reranker, tmp_path, source, records, valid, top_k, max_errors, job_limits)


def _candidates(record) -> list:
    return record.get("candidates") or [] if isinstance(record, dict) else []


def _words(query: object) -> bool:
    """A query made of ``words`` only: one the runtime must accept (others may be empty for the model)."""
    return isinstance(query, str) and bool(query.split()) and set(query.split()) <= set(WORDS)


# -- Parquet -------------------------------------------------------------------------------------

CANDIDATES = pa.list_(pa.struct([("id", pa.int64()), ("text", pa.string())]))
EXTRA = {"float": (pa.float64(), st.floats()), "bytes": (pa.binary(), st.binary(max_size=4)),
         "ints": (pa.list_(pa.int64()), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3))}


@st.composite
def parquet_rows(draw):
    """A schema (id type, which of text/candidates, an extra column) and rows that fit it, some built valid."""
    id_type = draw(st.sampled_from([pa.int64(), pa.string()]))
    shapes = draw(st.sampled_from([("text",), ("candidates",), ("text", "candidates")]))
    extra = draw(st.sampled_from(sorted(EXTRA)))
    fields = [("id", id_type), ("query", pa.string())] + [(s, pa.string() if s == "text" else CANDIDATES) for s in shapes]
    schema = pa.schema(fields + [("extra", EXTRA[extra][0])])
    an_id = st.integers(-(2**63), 2**63 - 1) if id_type == pa.int64() else st.text(max_size=3)
    candidate = st.fixed_dictionaries({"id": st.none() | st.integers(0, 9), "text": st.none() | good_text})
    rows, valid = [], []
    for _ in range(draw(st.integers(0, 10))):
        shape = draw(st.sampled_from(shapes))
        row = {"id": draw(st.none() | an_id), "query": draw(st.none() | words | good_text), "extra": draw(st.none() | EXTRA[extra][1])}
        for s in shapes:
            row[s] = None
        row[shape] = draw(good_text if shape == "text" else st.lists(candidate, max_size=3))
        if draw(st.booleans()):
            other = draw(st.sampled_from(shapes))
            row[other] = draw(st.none() | (good_text if other == "text" else st.lists(candidate, max_size=3)))
        rows.append(row)
        filled = [s for s in shapes if row[s] is not None]
        valid.append(_words(row["query"]) and len(filled) == 1
                     and all(c["text"] is not None for c in row.get("candidates") or [])
                     and not (isinstance(row["extra"], float) and not math.isfinite(row["extra"])))
    return schema, rows, valid


def _table(id_type, shapes, extra, rows, valid):
    """An explicit example's table: its schema, rows, and which rows must be scored."""
    fields = [("id", id_type), ("query", pa.string())] + [(s, pa.string() if s == "text" else CANDIDATES) for s in shapes]
    return pa.schema(fields + [("extra", EXTRA[extra][0])]), rows, valid


@same_every_run
@given(table=parquet_rows(), group=st.integers(1, 4), top_k=st.none() | st.integers(1, 3), job_limits=limits)
@example(  # found by the harness: a query the runtime finds empty (a NUL) stopped the job instead of being a bad row
    table=_table(pa.int64(), ("text",), "float", [{"id": 1, "query": "\x00", "text": "t", "extra": None},
                                                  {"id": 2, "query": "tool", "text": "t", "extra": None}], [False, True]),
    group=1, top_k=None, job_limits=Limits())
@example(  # found by the harness: a file mixing flat and nested rows has both columns, one null: every row was bad
    table=_table(pa.string(), ("text", "candidates"), "float", [
        {"id": "a", "query": "tool", "text": "t", "candidates": None, "extra": 0.5},
        {"id": "b", "query": "tool", "text": None, "candidates": [{"id": 0, "text": "u"}], "extra": float("nan")},
        {"id": "c", "query": "tool", "text": None, "candidates": [{"id": 0, "text": "u"}], "extra": None}], [True, False, True]),
    group=2, top_k=1, job_limits=Limits())  # and NaN, which JSON cannot hold, was written as NaN
def test_every_parquet_row_is_scored_once_in_order_or_reported(model, reranker, tmp_path_factory, table, group, top_k,
                                                               job_limits):
    schema, rows, valid = table
    tmp_path = tmp_path_factory.mktemp("job")
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), source, row_group_size=group)
    records = {n: json.loads(json.dumps(r, default=str)) for n, r in enumerate(rows, start=1)}
    built_valid = {n for n, ok in enumerate(valid, start=1) if ok and len(_candidates(rows[n - 1])) <= job_limits.max_candidates}
    _check_job(model, reranker, tmp_path, source, records, built_valid, top_k, 10**9, job_limits)


@same_every_run
@given(rows=st.lists(good_row.filter(lambda r: "text" in r), min_size=1, max_size=6), at=st.floats(0, 1),
       xor=st.integers(1, 255))
@example(rows=[{"query": "tool", "text": "t"}] * 3, at=0.3, xor=255)  # found by the harness: a damaged page was a traceback
@example(rows=[{"query": "tool", "text": "t"}] * 3, at=0.96, xor=255)  # found by make fuzz: a damaged footer's error was two lines
def test_a_damaged_parquet_file_is_read_or_refused_in_one_line(model, tmp_path_factory, rows, at, xor):
    tmp_path = tmp_path_factory.mktemp("job")
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": str(r.get("id")), "query": r["query"], "text": r["text"]} for r in rows]),
                   source, row_group_size=2)
    data = bytearray(source.read_bytes())
    data[int(at * (len(data) - 1))] ^= xor
    source.write_bytes(bytes(data))
    try:
        report = _run(model, source, tmp_path / "out.jsonl", max_errors=10**9)
    except RerankerError:
        assert not (tmp_path / "out.jsonl").exists()
        return
    out = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert report.exit_code in (0, 3) and all(math.isfinite(_strict_json(line)["score"]) for line in out)


# -- one line at a time ----------------------------------------------------------------------------

@same_every_run
@given(line=st.one_of(st.binary(max_size=200), st.sampled_from(RAW), jsonl_lines().map(lambda x: x[0]),
                      json_values.map(lambda v: json.dumps(v).encode())))
def test_any_line_is_a_row_a_bad_row_or_blank_never_an_exception(line):
    parsed = parse_line(3, line, Limits(max_candidates=3))
    assert parsed is None or isinstance(parsed, (Row, BadRow))
    if isinstance(parsed, Row):
        json.dumps(parsed.record, allow_nan=False, ensure_ascii=False).encode("utf-8")  # writable as strict JSON
        assert parsed.query.strip() and len(parsed.texts) == (len(parsed.record["candidates"]) if parsed.nested else 1)
        for text in (parsed.query, *parsed.texts):
            text.encode("utf-8")
    elif isinstance(parsed, BadRow):
        assert parsed.number == 3 and one_line(parsed.reason) and "\n" not in parsed.to_json()
