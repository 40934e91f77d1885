"""A pair's int8 score must not depend on its batch-mates: every int8 variant the export writes, on real text.

Each variant is run on this host whatever CPU it is tuned for (the graphs use standard and
onnxruntime contrib ops every CPU runs), so the property is checked for all of them, not only the one
this host would choose. The tolerance is ``static_quant.BATCH_TOLERANCE``; what was measured against
it is in ``export/QUANTIZATION.md``.
"""

from __future__ import annotations

import pytest

from export.batch_independence import batch_spread, splits
from export.families import FAMILIES
from export.static_quant import BATCH_TOLERANCE
from export.validation import validation_set
from reranker_onnx import Reranker
from reranker_onnx.manifest import read_manifest




def _real_pairs():
    """Three English queries × 8 real passages of mixed length, as three query groups."""
    vset = validation_set(("en",), 3, 8)
    return vset.pairs, vset.groups


def _check(directory, variants=None) -> dict[str, float]:
    manifest = read_manifest(directory)
    pairs, groups = _real_pairs()
    spreads = {}
    for name, variant in manifest.variants.items():
        if name == "fp32" or (variants and name not in variants):
            continue
        assert variant.quantization.batch_independent, f"{name} is not recorded as batch independent"
        assert variant.quantization.batch_spread <= BATCH_TOLERANCE, (name, variant.quantization.batch_spread)
        reranker = Reranker(directory, variant=name)
        spread = batch_spread(reranker.predict, pairs, groups)
        spreads[name] = spread["max_abs_delta"]
        assert spread["max_abs_delta"] <= BATCH_TOLERANCE, (name, spread)
        assert spread["top1_changed"] == 0, (name, spread)
    assert spreads, "no int8 variant found"
    return spreads


def test_splits_cover_every_pair_once_per_split():
    for name, calls in splits(37, seed=3).items():
        flat = sorted(i for call in calls for i in call)
        assert flat == list(range(37)), name


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_int8_variant_is_batch_independent(exported, family):
    _check(exported(family))


def test_real_weight_export_is_batch_independent(minilm_model):
    _check(minilm_model)


def test_bundled_default_model_is_batch_independent():
    from reranker_onnx.store import bundled_dir

    _check(bundled_dir() / "default")


def test_rescale_makes_an_old_dynamic_export_batch_independent(tmp_path):
    """``export.rescale`` on a directory written before the static scheme (main at 64e1517)."""
    from pathlib import Path

    from export.rescale import rescale

    old = Path(__file__).resolve().parent / "data" / "export-64e1517"
    assert {v.quantization.mode for n, v in read_manifest(old).variants.items() if n != "fp32"} == {"dynamic"}
    out = tmp_path / "rescaled"
    rescale(old, out)
    manifest = read_manifest(out)
    for name, variant in manifest.variants.items():
        if name != "fp32":
            assert variant.quantization.mode == "static", name
            assert {"ndcg_at_10", "spearman"} <= set(variant.fidelity), name  # re-measured against fp32
    _check(out)
