"""The lean/heavy border and the public surface, checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import reranker_onnx

HEAVY = ("torch", "transformers", "optimum", "typer", "click", "rich", "sentence_transformers", "export",
         "reranker_onnx_export", "testing", "huggingface_hub", "ray", "pyarrow", "tqdm", "pandas",
         # what `rerank-onnx pull` downloads and reads graphs with: imported by pull only
         "requests", "httpx", "google", "onnx", "scipy")


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


def test_the_batch_room_stays_out_of_the_core_and_its_extras_out_of_the_cli():
    code = (
        "import json, sys, reranker_onnx; core = sorted(m for m in sys.modules if m.split('.')[:2] == ['reranker_onnx', 'batch']); "
        "import reranker_onnx.cli, reranker_onnx.batch; "
        "print(json.dumps([core, sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow', 'tqdm', 'pandas'))]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [[], []]


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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_a_runtime_only_install_is_told_which_extra_to_install():
    """torch missing (as after `pip install reranker-onnx`): one line naming the extra, exit 2."""
    code = "import sys; sys.modules['torch'] = None; from reranker_onnx.cli import main; sys.exit(main(['export', 'x']))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "rerank-onnx export: missing torch: install the export extra: "
        "pip install 'reranker-onnx[export]' (in a checkout: make install-dev)"
    ]
