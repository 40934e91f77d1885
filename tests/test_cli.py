"""``rerank-onnx`` through its entry point: outputs, exit codes, and one-line errors for mistakes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from reranker_onnx.cli import main


@pytest.fixture()
def run(capsys, monkeypatch):
    def call(*argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        fake = io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8")
        fake.isatty = (lambda: False) if stdin is not None else (lambda: True)  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stdin", fake)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_score_prints_a_ranked_table(run, exported):
    code, out, err = run("score", "text editor", "a text editor for programmers", "a font", "--model", str(exported("bert")))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "id", "passage"]
    assert len(lines) == 3 and lines[1].split()[0] == "1"


def test_json_and_jsonl_outputs(run, exported):
    model = str(exported("bert"))
    code, out, _ = run("score", "q", "one", "two", "three", "--model", model, "--json", "--top-k", "2")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2 and rows[0]["rank"] == 1 and set(rows[0]) == {"id", "rank", "score"}
    code, out, _ = run("score", "q", "one", "two", "--model", model, "--jsonl", "--keep-order", "--with-text")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [1, 2] and rows[1]["text"] == "two"  # the n-th argument is id n


def test_passages_from_file_stdin_and_records(run, exported, tmp_path):
    model = str(exported("bert"))
    text = tmp_path / "p.txt"
    text.write_text("first\n\nthird\n", encoding="utf-8")
    code, out, _ = run("score", "q", "--file", str(text), "--model", model, "--json", "--keep-order")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [1, 3]  # ids are line numbers; blanks skipped
    code, out, _ = run("score", "q", "--model", model, "--json", stdin="a\nb\n".encode())
    assert code == 0 and len(json.loads(out)) == 2
    records = tmp_path / "r.jsonl"
    records.write_text('{"id": "doc-a", "text": "alpha"}\n{"text": "beta"}\n', encoding="utf-8")
    code, out, _ = run("score", "q", "--records", str(records), "--model", model, "--json", "--keep-order")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["doc-a", 2]


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda p: p.write_bytes(b"fine\nbad \xff\xfe bytes\n"), "line 2 is not valid UTF-8"),
        (lambda p: p.write_text('{"id": 1, "text": 5}\n'), '"text" must be a string, got int'),
        (lambda p: p.write_text('{"id": [1], "text": "x"}\n'), '"id" must be a string or an integer'),
        (lambda p: p.write_text("not json\n"), "line 1 is not valid JSON"),
    ],
)
def test_bad_files_are_usage_errors(run, exported, tmp_path, make_input, message):
    path = tmp_path / "in.jsonl"
    make_input(path)
    flag = "--file" if b"\xff" in path.read_bytes() else "--records"
    code, out, err = run("score", "q", flag, str(path), "--model", str(exported("bert")))
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_user_mistakes_have_documented_exit_codes(run, exported, model_copy, tmp_path):
    model = str(exported("bert"))
    assert run("score", "q", "--model", model)[0] == 2  # no passages (stdin is a terminal)
    code, _, err = run("score", "", "p", "--model", model)
    assert code == 2 and "the query is empty" in err
    code, _, err = run("score", "q", "p", "--model", model, "--variant", "avx9000")
    assert code == 2 and "unknown variant" in err.lower()
    code, _, err = run("score", "q", "p", "--model", str(tmp_path / "nope"))
    assert code == 1 and "not found" in err
    broken = model_copy("bert")
    (broken / "onnx" / "model.onnx").write_bytes(b"tampered")
    code, _, err = run("score", "q", "p", "--model", str(broken), "--variant", "fp32")
    assert code == 1 and "model.onnx" in err and "Traceback" not in err
    assert run("score")[0] == 2  # missing QUERY: click's usage error
    assert run("score", "q", "p", "--threads", "0")[0] == 2


def test_info_explains_the_choice(run, exported):
    from reranker_onnx.cpu import choose_variant, detect
    from reranker_onnx.manifest import read_manifest

    model = exported("bert")
    expected = choose_variant(detect(), read_manifest(model).variants).variant  # avx2, or VNNI hosts' avx512_vnni
    code, out, _ = run("info", "--model", str(model))
    assert code == 0
    assert "avx2" in out and "onnxruntime:" in out and f"chosen: {expected}" in out


def test_console_script_runs_in_a_subprocess(exported):
    result = subprocess.run(
        [sys.executable, "-m", "reranker_onnx.cli", "score", "q", "p1", "p2", "--model", str(exported("bert")), "--json"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2
