"""The lean/heavy border and the public surface, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import reranker_onnx

HEAVY = (
    "torch", "transformers", "optimum", "typer", "click", "rich", "sentence_transformers", "export",
    # the serve room's web stack and the integrations' frameworks
    "fastapi", "uvicorn", "starlette", "prometheus_client", "langchain", "langchain_core", "llama_index",
)


def test_import_pulls_nothing_heavy():
    code = (
        "import json, sys, reranker_onnx; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_public_names_are_what_we_meant():
    assert reranker_onnx.__all__ == sorted(reranker_onnx.__all__)
    assert set(reranker_onnx.__all__) == {
        "DownloadError", "InputError", "IntegrityError", "ManifestError", "ModelNotFoundError",
        "Reranker", "RerankerError", "VariantError", "__version__",
    }


def test_every_error_is_a_reranker_error():
    for name in reranker_onnx.__all__:
        obj = getattr(reranker_onnx, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, reranker_onnx.RerankerError)


def test_rooms_have_sorted_fronts_and_import_lazily():
    """serve/ and integrations/ list sorted names, and importing them pulls no framework until used."""
    code = (
        "import json, sys, reranker_onnx.serve as s, reranker_onnx.integrations as i; "
        "print(json.dumps([s.__all__, i.__all__, sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{HEAVY!r})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    serve_names, integration_names, heavy = json.loads(out)
    assert serve_names == sorted(serve_names) and integration_names == sorted(integration_names)
    assert heavy == []
