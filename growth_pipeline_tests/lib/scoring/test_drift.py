"""Drift as plain functions (lib/scoring/drift.py): PSI, and no retrain request on noise."""

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.scoring import drift


def _population(rng, n, task_rate=5.0):
    return pl.DataFrame(
        {
            "recency_days": rng.exponential(5, n),
            "n_task_created_28d": rng.poisson(task_rate, n).astype(float),
            "platform": rng.choice(["web", "ios", "android"], n),
        }
    )


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.poisson(5, 5000).astype(float)
    same = rng.poisson(5, 5000).astype(float)
    halved = rng.poisson(2.5, 5000).astype(float)
    psi_same, _, p_same = drift.numeric_drift(ref, same)
    psi_shift, _, p_shift = drift.numeric_drift(ref, halved)
    assert psi_same < 0.02 and p_same > 0.001
    assert psi_shift > 0.5 and p_shift < 1e-10
    cats_ref = np.array(["web", "ios", "android"] * 1000, dtype=object)
    cats_new = np.array(["web"] * 2000 + ["ios"] * 500 + ["android"] * 500, dtype=object)
    assert drift.categorical_drift(cats_ref, cats_ref)[0] == pytest.approx(0.0, abs=1e-9)
    assert drift.categorical_drift(cats_ref, cats_new)[0] > 0.25


def test_no_retrain_on_noise_in_small_populations_retrain_on_a_real_shift():
    rng = np.random.default_rng(1)
    feats, cats = ["recency_days", "n_task_created_28d", "platform"], ["platform"]
    importance = {"recency_days": 0.7, "n_task_created_28d": 0.2, "platform": 0.1}
    th = drift.Thresholds()
    ref = _population(rng, 2000).with_columns(pl.Series("__score__", rng.uniform(0, 1, 2000)))
    # 100 random draws of a small population from the same world: never a retrain request
    fired = 0
    for _ in range(100):
        cur = _population(rng, 400)
        rep = drift.drift_report("churn", ref, cur, rng.uniform(0, 1, 400), feats, cats, importance, th)
        fired += rep.retrain
    assert fired == 0
    # the same world, but tasks down 70%: the model is asked to retrain, naming the feature
    cur = _population(rng, 2000, task_rate=1.5)
    rep = drift.drift_report("churn", ref, cur, rng.uniform(0, 1, 2000), feats, cats, importance, th)
    assert rep.retrain and rep.verdict == "drift" and "n_task_created_28d" in " ".join(rep.reasons)
    # too few users for any verdict
    tiny = drift.drift_report(
        "churn", ref, _population(rng, 50, task_rate=1.0), rng.uniform(0, 1, 50), feats, cats, importance, th
    )
    assert not tiny.retrain and tiny.verdict == "too few rows"
