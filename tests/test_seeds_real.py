"""Checks that only the real seed checkpoints can answer (``make verify-seeds`` on a connected machine).

Skipped here, with the reason, unless ``RERANKER_VERIFY_SEEDS=1``: no model hub is reachable from this
project's machines, and a replica (random weights) cannot stand in for these. They are the external
goldens of ``shared/models/seed-real-facts.md``: exact parameter counts (§A2, §B), fastembed's fp32
logits for jina-reranker-v1-tiny-en (§A9) and the golden token ids of its tokenizer (§A8).
"""

from __future__ import annotations

import json
import math
import os

import pytest

from testing.replicas import SEEDS
from testing.seeds import LOCK

pytestmark = pytest.mark.skipif(
    os.environ.get("RERANKER_VERIFY_SEEDS") != "1",
    reason="needs the real seed checkpoints from the Hugging Face hub: run `make verify-seeds` on a connected machine",
)
JINA = "jina-reranker-v1-tiny-en"
STORED_BUFFERS = {"ms-marco-TinyBERT-L2-v2": 512}  # its safetensors also stores position_ids [1, 512]


def _pin(name: str) -> tuple[str, str]:
    entry = json.loads(LOCK.read_text())["models"][name]
    return entry["repo"], entry["revision"]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_exact_parameter_counts_of_the_real_checkpoints(name):
    from huggingface_hub import get_safetensors_metadata

    repo, revision = _pin(name)
    count = sum(get_safetensors_metadata(repo, revision=revision).parameter_count.values())
    assert count == SEEDS[name].params + STORED_BUFFERS.get(name, 0)


@pytest.fixture(scope="module")
def jina_checkpoint():
    from export.fetch import fetch_checkpoint

    return fetch_checkpoint(*_pin(JINA))


def test_jina_golden_token_ids(jina_checkpoint):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(jina_checkpoint / "tokenizer.json"))
    assert tokenizer.encode("what is panda?", "hi").ids == [0, 21381, 21152, 49990, 61, 2, 2, 23233, 2]
    assert tokenizer.encode("what is panda?", "it's a bear").ids == [
        0, 21381, 21152, 49990, 61, 2, 2, 21153, 37, 87, 69, 25706, 2]
    assert set(tokenizer.encode("what is panda?", "it's a bear").type_ids) == {0}


def test_jina_fp32_logits_match_fastembed(jina_checkpoint, tmp_path):
    """fastembed's CANONICAL_SCORE_VALUES for tiny: [2.5911, 0.1122] raw logits, atol 1e-3, batch of 2."""
    from export.pipeline import ExportOptions, export_model
    from reranker_onnx import Reranker

    options = ExportOptions(name=JINA, source={"repo": _pin(JINA)[0], "revision": _pin(JINA)[1]},
                            max_length=512, gate=True, queries_per_language=4)
    export_model(jina_checkpoint, tmp_path / "jina", options)
    scores = Reranker(tmp_path / "jina", variant="fp32").score(
        "What is the capital of France?", ["Paris is the capital of France.", "Berlin is the capital of Germany."])
    logits = [math.log(s / (1 - s)) for s in scores]  # the directory applies sigmoid, as upstream does
    assert logits == pytest.approx([2.5911, 0.1122], abs=1e-3)
