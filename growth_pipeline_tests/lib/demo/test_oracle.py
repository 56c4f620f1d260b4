"""The demo's observed-state oracle (growth_pipeline.lib.demo.oracle)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.truth import true_outcome_probability
from growth_pipeline_tests.lib.demo.demo_files import auc, realised


def test_silence_posterior_matches_a_simulation_of_the_daily_process():
    """Users engaged at the end of an active day, then silent for r days: the share of them that churned (or is
    fading) equals what simulating the generator's process and keeping the silent ones gives."""
    from growth_pipeline.lib.demo.oracle import silence_posterior
    from growth_pipeline.lib.demo.spec import FADE_ACTIVITY_DECAY

    rng = np.random.default_rng(5)
    n, p, q, rate, r = 400_000, 0.06, 0.1, 0.8, 6
    state = np.zeros(n, dtype=np.int8)  # 0 engaged, 1 fading, 2 churned
    age = np.zeros(n, dtype=np.int64)
    silent = np.ones(n, dtype=bool)
    for _ in range(r):
        age[state == 1] += 1
        to_b = (state == 0) & (rng.random(n) < p)
        state[to_b], age[to_b] = 1, 0
        state[(state == 1) & (rng.random(n) < q)] = 2
        lam = np.select([state == 0, state == 1], [rate, rate * FADE_ACTIVITY_DECAY ** (age + 1)], 0.0)
        silent &= rng.poisson(lam) == 0
    kept = state[silent]
    pa, pb, pd = silence_posterior(np.array([p, p]), np.array([q, q]), np.array([rate, rate]), np.array([r, 0]))
    assert kept.size > 5_000
    for value, k in ((pa[0], 0), (pb[0], 1), (pd[0], 2)):
        share = (kept == k).mean()
        assert abs(value - share) < 4 * np.sqrt(share * (1 - share) / kept.size) + 1e-3
    assert (pa[1], pb[1], pd[1]) == (1.0, 0.0, 0.0)  # no silence yet: engaged, as assumed
    assert pd[0] > 0.05  # and silence is real evidence of churn


def test_observed_state_oracle_sits_between_a_silent_and_an_active_user(oracle_data):
    """oracle_observed: for a user active today it is the traits oracle; the longer the silence, the higher the
    churn probability and the lower the chance of converting; it still ranks realised outcomes."""
    from growth_pipeline.lib.demo.oracle import observed_state_probability
    from growth_pipeline.lib.models.labels import DEFAULTS

    spec, _, truth = oracle_data
    as_of = spec.start + timedelta(days=40)
    churn = DEFAULTS["churn"]
    alive = true_outcome_probability(truth, "churn", as_of, churn.horizon_days, hidden_state=False)
    test = alive.select(pl.col("user_id").alias("user_key"), pl.lit(0).alias("recency_days"))
    active = observed_state_probability(truth, test, as_of, churn)
    np.testing.assert_allclose(active, alive["probability"].to_numpy(), atol=1e-9)
    quiet = observed_state_probability(truth, test.with_columns(pl.lit(10).alias("recency_days")), as_of, churn)
    assert (quiet >= active - 1e-12).all() and (quiet > active + 0.05).mean() > 0.5
    conv = DEFAULTS["conversion"]
    c_test = true_outcome_probability(truth, "conversion", as_of, conv.horizon_days).select(
        pl.col("user_id").alias("user_key"), pl.lit(0).alias("recency_days")
    )
    c0 = observed_state_probability(truth, c_test, as_of, conv)
    c10 = observed_state_probability(truth, c_test.with_columns(pl.lit(10).alias("recency_days")), as_of, conv)
    assert (c10 <= c0 + 1e-12).all()
    # and it ranks who really churns
    y = realised(truth, alive, "churn_date", as_of, churn.horizon_days)
    assert auc(y, active) > 0.6
