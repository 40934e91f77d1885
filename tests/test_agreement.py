"""The ranking measures and the real pairs that ship in the package for on-device validation."""

from __future__ import annotations

import numpy as np

from reranker_onnx.agreement import PAIRS_DIR, ranking_agreement, shipped_pairs, spearman


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 12, 200).astype(float)
    b = a + rng.normal(0, 2, 200)
    b[:40] = b[0]
    assert abs(spearman(a, b) - spearmanr(a, b).statistic) < 1e-12


def test_identical_scores_agree_fully():
    scores = np.arange(24, dtype=float)
    assert ranking_agreement(scores, scores, [list(range(12)), list(range(12, 24))]) == {
        "spearman": 1.0, "ndcg_at_10": 1.0, "top1_agreement": 1.0, "max_abs_diff": 0.0}


def test_the_shipped_pairs_are_what_the_export_stage_writes(tmp_path):
    from export.validation import write_shipped_pairs

    for written in write_shipped_pairs(tmp_path):
        assert written.read_bytes() == (PAIRS_DIR / written.name).read_bytes()
    pairs = shipped_pairs(("en", "ja"))
    assert len(pairs.groups) == 16 and all(len(g) == 12 for g in pairs.groups)
    assert pairs.pairs[pairs.groups[8][0]][0] != pairs.pairs[0][0]
