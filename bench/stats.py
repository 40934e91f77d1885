"""Small statistics on lists of numbers: medians with their spread, percentiles, Spearman's rho."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(min, max) of the repeats: printed beside every median, so noise is visible."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.min()), float(arr.max())


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho with average ranks for ties (scipy, as the export stage's validation uses);
    nan when either side is constant."""
    import warnings

    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert x.shape == y.shape and x.ndim == 1, f"spearman needs two equal 1-d arrays, got {x.shape} and {y.shape}"
    with warnings.catch_warnings():  # a constant side is reported as nan, not as a warning
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)
