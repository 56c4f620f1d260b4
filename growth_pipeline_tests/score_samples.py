"""Synthetic scores and outcomes for the metrics, calibration and chart tests."""

from __future__ import annotations

import math

import numpy as np


def calibrated_sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: perfectly calibrated, AUC ~0.76."""
    p = rng.beta(1.5, 3.0, size=n)
    return p, (rng.uniform(size=n) < p).astype(np.int64)


def zero_inflated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Revenue where ~10% of users buy (lognormal spend) and a good model's expected-value predictions."""
    x = rng.normal(size=n)
    p_buy = 1 / (1 + np.exp(-(2 * x - 3)))
    revenue = np.where(rng.uniform(size=n) < p_buy, rng.lognormal(3.0, 1.0, size=n), 0.0)
    return revenue, p_buy * math.exp(3.5)  # E[revenue | x]
