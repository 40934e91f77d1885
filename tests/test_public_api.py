"""The lean/heavy border and the public surface, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import reranker_onnx

HEAVY = ("torch", "transformers", "optimum", "typer", "click", "rich", "sentence_transformers", "export",
         "reranker_onnx_export", "testing", "huggingface_hub", "ray", "pyarrow", "tqdm", "pandas",
         # what `rerank-onnx pull` downloads and reads graphs with: imported by pull only
         "requests", "httpx", "google", "onnx", "scipy",
         # the serve room's web stack and the integrations' frameworks
         "fastapi", "uvicorn", "starlette", "prometheus_client", "langchain", "langchain_core", "llama_index")


def _printed_json(code: str):
    """What ``code`` prints as JSON, run in a fresh interpreter (so sys.modules starts empty)."""
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def test_import_pulls_nothing_heavy():
    code = (
        "import json, sys, reranker_onnx; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    assert _printed_json(code) == []


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
    serve_names, integration_names, heavy = _printed_json(code)
    assert serve_names == sorted(serve_names) and integration_names == sorted(integration_names)
    assert heavy == []


def test_the_batch_room_stays_out_of_the_core_and_its_extras_out_of_the_cli():
    code = (
        "import json, sys, reranker_onnx; core = sorted(m for m in sys.modules if m.split('.')[:2] == ['reranker_onnx', 'batch']); "
        "import reranker_onnx.cli, reranker_onnx.batch; "
        "print(json.dumps([core, sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow', 'tqdm', 'pandas'))]))"
    )
    assert _printed_json(code) == [[], []]


def test_batch_names_are_what_we_meant():
    import reranker_onnx.batch as batch

    assert batch.__all__ == sorted(batch.__all__)
    assert set(batch.__all__) == {
        "ActorPlan", "BatchJob", "BatchReport", "Limits", "Shard", "plan_actors", "plan_shards", "rerank_dataset",
        "run_batch",
    }


def test_the_cli_loads_the_export_stage_only_when_export_runs():
    code = (
        "import json, sys, reranker_onnx.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'export', 'reranker_onnx_export', 'testing'))))"
    )
    assert _printed_json(code) == []


def test_a_runtime_only_install_is_told_which_extra_to_install():
    """torch missing (as after `pip install reranker-onnx`): one line naming the extra, exit 2."""
    code = "import sys; sys.modules['torch'] = None; from reranker_onnx.cli import main; sys.exit(main(['export', 'x']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "rerank-onnx export: missing torch: install the export extra: "
        "pip install 'reranker-onnx[export]' (in a checkout: make install-dev)"
    ]
