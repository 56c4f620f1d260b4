"""Buy-till-you-die models (growth_pipeline.lib.models.btyd): parameter recovery, predictions against Monte-Carlo
simulation of the same process, Gamma-Gamma recovery, point-in-time RFM summaries and error messages."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.optimize import check_grad

from growth_pipeline.lib.models import btyd
from growth_pipeline.lib.models.btyd import (
    BetaGeoModel,
    BetaGeoParams,
    GammaGammaModel,
    GammaGammaParams,
    bgnbd_log_likelihood,
    clv,
    rfm_summary,
    simulate_bgnbd,
)

TRUTH = BetaGeoParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
WEEKS = 39.0
SEEDS = range(20)


def relative_errors(fitted: BetaGeoParams) -> np.ndarray:
    return np.array([fitted.r / TRUTH.r, fitted.alpha / TRUTH.alpha, fitted.a / TRUTH.a, fitted.b / TRUTH.b]) - 1


def recovery(n: int) -> np.ndarray:
    errors = []
    for seed in SEEDS:
        model = BetaGeoModel().fit(*simulate_bgnbd(n, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=seed))
        assert model.converged
        errors.append(relative_errors(model.params))
    return np.array(errors)  # (seed, parameter)


def test_bgnbd_recovers_parameters_within_10_percent():
    """The issue's criterion: every parameter within 10% of the truth for at least 19 of 20 seeds.

    It needs 100,000 customers, not the issue's 20,000: at 20,000 customers and 39 weeks the maximum-likelihood
    estimates of a and b have relative standard errors of 6.5% and 8.4% (inverse Fisher information at the
    truth; a and b 93% correlated). 10% is then 1.5 and 1.2 standard errors: an efficient estimator lands inside
    for about 17 and 15 of 20 seeds, and b reaches 19 of 20 with probability ~4% (measured on seeds 0-19: 14
    and 15; lifetimes 0.11.3 finds the same optimum on the same data). At 100,000 customers: 2.9% and 3.8%.
    """
    errors = recovery(100_000)
    within = (np.abs(errors) <= 0.10).sum(axis=0)
    assert (within >= 19).all(), f"seeds within 10% (r, alpha, a, b): {within}\n{errors.round(3)}"
    assert (np.abs(errors.mean(axis=0)) < 0.03).all(), errors.mean(axis=0)  # no systematic bias


def test_bgnbd_recovery_at_the_issues_20000_customers():
    """At 20,000 customers r and alpha meet the 10% criterion; a and b scatter as their sampling error says."""
    errors = recovery(20_000)
    r_alpha, a_b = (np.abs(errors[:, :2]) <= 0.10).sum(axis=0), (np.abs(errors[:, 2:]) <= 0.20).sum(axis=0)
    assert (r_alpha >= 19).all() and (a_b >= 19).all(), errors.round(3)


def test_log_likelihood_gradient_and_reference_values():
    x, tx, T = simulate_bgnbd(2000, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=1)
    x[:3], tx[:3], T[:3] = [300, 5000, 0], [38.0, 9990.0, 0.0], [39.0, 10_000.0, 1e6]  # large x, long T

    def f(theta):
        return bgnbd_log_likelihood(BetaGeoParams(*np.exp(theta)), x, tx, T).sum()

    def g(theta):
        return bgnbd_log_likelihood(BetaGeoParams(*np.exp(theta)), x, tx, T, gradient=True)[1].sum(axis=0)

    theta = np.log([0.3, 3.0, 0.9, 2.0])
    assert np.isfinite(f(theta))
    assert check_grad(f, g, theta) < 1e-6 * np.linalg.norm(g(theta)) + 1e-3
    # reference values computed with lifetimes 0.11.3 (BetaGeoFitter with these parameters), which agrees on
    # the fitted optimum of the same simulated data to 6 digits
    model = BetaGeoModel(BetaGeoParams(0.2508504722857094, 3.9146387740742936, 0.8325983247481274, 2.4907398880973433))
    xs, txs, Ts = [0, 1, 5, 30, 200, 3], [0, 3.0, 20, 38, 38.5, 1.0], [39.0] * 6
    np.testing.assert_allclose(
        model.expected_purchases(10, xs, txs, Ts),
        [5.6463046373e-02, 6.4936986429e-02, 3.0369935758e-01, 6.1503265056e00, 4.0956763813e01, 3.3363756689e-03],
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        model.probability_alive(xs, txs, Ts),
        [1.0, 0.2336644221, 0.2656690427, 0.9488091678, 0.9585970758, 0.0046819183],
        rtol=1e-8,
    )


def simulate_past_and_future(n: int, t_future: float, seed: int):
    """An independent simulation of one BG/NBD process over (0, T + t]: the observed (x, t_x, T), whether the
    customer is alive at T, and the purchases in (T, T + t]."""
    rng = np.random.default_rng(seed)
    lam, p = rng.gamma(TRUTH.r, 1 / TRUTH.alpha, n), rng.beta(TRUTH.a, TRUTH.b, n)
    dropout_after = rng.geometric(p)  # dies right after this repeat purchase
    arrivals = rng.poisson(lam * (WEEKS + t_future))  # the rate-lambda process, ignoring dropout
    past = rng.binomial(arrivals, WEEKS / (WEEKS + t_future))
    x = np.minimum(past, dropout_after)
    alive = dropout_after > past
    future = np.where(alive, np.minimum(arrivals - past, dropout_after - past), 0)
    tx = np.where(x > 0, WEEKS * rng.beta(np.maximum(x, 1), past - x + 1), 0.0)
    return x.astype(float), tx, np.full(n, WEEKS), alive, future


@pytest.mark.parametrize("t_future", [4.0, 26.0])
def test_predictions_match_monte_carlo_continuation(t_future):
    n = 400_000
    x, tx, T, alive, future = simulate_past_and_future(n, t_future, seed=11)
    model = BetaGeoModel(TRUTH)
    p_alive = model.probability_alive(x, tx, T)
    p_buy = model.probability_of_purchase(t_future, x, tx, T)
    expected = model.expected_purchases(t_future, x, tx, T)
    assert (p_buy <= p_alive + 1e-12).all() and (p_buy <= expected + 1e-12).all()
    recent = tx >= T / 2
    buckets = {"x=0": x == 0}
    for lo, hi in [(1, 1), (2, 2), (3, 4), (5, 9), (10, np.inf)]:
        for name, when in [("recent", recent), ("lapsed", ~recent)]:
            buckets[f"x in [{lo},{hi}] {name}"] = (x >= lo) & (x <= hi) & when
    checked = 0
    for name, rows in buckets.items():
        if rows.sum() < 500:
            continue
        checked += 1
        for label, predicted, realised in [
            ("P(alive)", p_alive, alive),
            ("P(buy)", p_buy, future > 0),
            ("E[purchases]", expected, future),
        ]:
            sampling = realised[rows].std() / np.sqrt(rows.sum())
            gap = predicted[rows].mean() - realised[rows].mean()
            assert abs(gap) < 4 * sampling + 1e-3, (
                f"{name} {label}: predicted {predicted[rows].mean():.4f} "
                f"realised {realised[rows].mean():.4f} (+- {sampling:.4f})"
            )
    assert checked >= 8


def test_simulator_agrees_with_independent_simulation():
    x, _, _ = simulate_bgnbd(200_000, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=3)
    x2, _, _, _, _ = simulate_past_and_future(200_000, 0.0, seed=4)
    assert abs((x > 0).mean() - (1 - (TRUTH.alpha / (TRUTH.alpha + WEEKS)) ** TRUTH.r)) < 0.005  # exact P(x > 0)
    assert abs((x > 0).mean() - (x2 > 0).mean()) < 0.006 and abs((x > 3).mean() - (x2 > 3).mean()) < 0.005


def simulate_spends(x: np.ndarray, p: float, q: float, v: float, seed: int) -> np.ndarray:
    """Mean of x repeat spends per customer: spends ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v); NaN for x = 0."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / v, x.size)
    xs = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * xs, 1 / nu) / xs, np.nan), p / nu


def test_gamma_gamma_recovers_parameters():
    """~22,500 repeat buyers per seed: p within 10%, q within 5%, v within 15% for at least 19 of 20 seeds,
    the population mean spend within 3% for all. (Measured relative standard deviations: p 3.4%, q 1.7%,
    v 4.8%; p and v trade off along the mean, so the mean p v / (q - 1) is much better determined.)"""
    p, q, v = 6.0, 4.0, 15.0
    errors = []
    for seed in SEEDS:
        x, _, _ = simulate_bgnbd(50_000, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=seed)
        m, _ = simulate_spends(x, p, q, v, seed=1000 + seed)
        gg = GammaGammaModel().fit(x, m)
        assert gg.converged and gg.n_customers == (x > 0).sum()
        f = gg.params
        errors.append([f.p / p - 1, f.q / q - 1, f.v / v - 1, gg.population_mean() / (p * v / (q - 1)) - 1])
    errors = np.abs(np.array(errors))
    assert ((errors[:, :3] <= [0.10, 0.05, 0.15]).sum(axis=0) >= 19).all(), errors.round(3)
    assert (errors[:, 3] <= 0.03).all(), errors[:, 3].round(3)


def test_gamma_gamma_conditional_expectation_and_clv():
    p, q, v = 6.0, 4.0, 15.0
    x, tx, T = simulate_bgnbd(200_000, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=5)
    m, true_mean = simulate_spends(x, p, q, v, seed=6)
    gg = GammaGammaModel(GammaGammaParams(p, q, v))
    cev = gg.conditional_expected_value(x, m)
    assert np.allclose(cev[x == 0], p * v / (q - 1))
    # E[customer's mean spend | m, x] is what the conditional expectation claims: check within spend quintiles
    rep = x > 0
    edges = np.quantile(m[rep], [0, 0.2, 0.4, 0.6, 0.8, 1])
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        rows = rep & (m >= lo) & (m <= hi)
        sampling = true_mean[rows].std() / np.sqrt(rows.sum())
        assert abs(cev[rows].mean() - true_mean[rows].mean()) < 4 * sampling
    bg = BetaGeoModel(TRUTH)
    monetary = pl.Series(m).fill_nan(None)  # nulls for x = 0, as rfm_summary returns them
    assert monetary.null_count() == (~rep).sum()
    np.testing.assert_allclose(clv(bg, gg, 13.0, x, tx, T, monetary), bg.expected_purchases(13.0, x, tx, T) * cev)


def test_parameters_round_trip_through_json():
    bg = BetaGeoModel().fit(*simulate_bgnbd(5000, TRUTH.r, TRUTH.alpha, TRUTH.a, TRUTH.b, WEEKS, seed=2))
    again = BetaGeoModel.from_dict(json.loads(json.dumps(bg.to_dict())))
    assert again.params == bg.params and again.log_likelihood == bg.log_likelihood
    gg = GammaGammaModel.from_dict(json.loads(json.dumps(GammaGammaModel(GammaGammaParams(6, 4, 15)).to_dict())))
    assert gg.params == GammaGammaParams(6.0, 4.0, 15.0)


def purchases(rows: list[tuple[str, date, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_key": pl.Utf8, "day": pl.Date, "revenue": pl.Float64}, orient="row")


def test_rfm_summary_by_hand_and_point_in_time():
    as_of = date(2026, 3, 1)
    rows = [
        ("a", date(2026, 1, 1), 10.0),
        ("a", date(2026, 1, 15), 20.0),
        ("a", date(2026, 2, 12), 40.0),
        ("b", date(2026, 2, 22), 5.0),
        ("c", date(2026, 1, 4), 7.0),
        ("c", date(2026, 3, 1), 3.0),  # a purchase on as_of counts
    ]
    later = [("a", date(2026, 3, 2), 99.0), ("b", date(2026, 4, 1), 1.0), ("d", date(2026, 3, 5), 8.0)]
    summary = rfm_summary(purchases(rows), as_of)
    assert summary.to_dicts() == [
        # a: 2 repeat days; first to last 42 days = 6 weeks; first to as_of 59 days; repeats (20 + 40) / 2
        {
            "user_key": "a",
            "frequency": 2,
            "recency": 6.0,
            "T": 59 / 7,
            "monetary_value": 30.0,
            "first_purchase_value": 10.0,
        },
        {
            "user_key": "b",
            "frequency": 0,
            "recency": 0.0,
            "T": 1.0,
            "monetary_value": None,
            "first_purchase_value": 5.0,
        },
        {"user_key": "c", "frequency": 1, "recency": 8.0, "T": 8.0, "monetary_value": 3.0, "first_purchase_value": 7.0},
    ]
    assert rfm_summary(purchases(rows + later), as_of).equals(summary)  # the future changes nothing
    days = rfm_summary(purchases(rows), as_of, unit_days=1.0)
    assert days["recency"].to_list() == [42.0, 0.0, 56.0] and days["T"].to_list() == [59.0, 7.0, 56.0]


def test_clear_errors():
    with pytest.raises(ValueError, match="needs repeat purchases: none of the 25 customers bought twice"):
        BetaGeoModel().fit(np.zeros(25), np.zeros(25), np.full(25, 10.0))
    with pytest.raises(ValueError, match="at least 20 customers"):
        BetaGeoModel().fit([1, 2, 0], [1.0, 2.0, 0.0], [5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="recency <= T"):
        BetaGeoModel().fit(np.ones(30), np.full(30, 6.0), np.full(30, 5.0))
    with pytest.raises(ValueError, match="no nulls"):
        BetaGeoModel().fit(np.ones(30), np.full(30, np.nan), np.full(30, 5.0))
    with pytest.raises(ValueError, match="not fitted"):
        BetaGeoModel().probability_alive([1], [1.0], [2.0])
    with pytest.raises(ValueError, match="at least 20 repeat buyers with a spend, got 12 of 40 customers"):
        GammaGammaModel().fit(np.r_[np.ones(12), np.zeros(28)], np.r_[np.full(12, 5.0), np.full(28, np.nan)])
    with pytest.raises(ValueError, match="positive spends: 1 repeat buyers"):
        GammaGammaModel().fit(np.ones(30), np.r_[0.0, np.full(29, 5.0)])
    with pytest.raises(ValueError, match="missing \\['revenue'\\]"):
        rfm_summary(pl.DataFrame({"user_key": ["a"], "day": [date(2026, 1, 1)]}), date(2026, 2, 1))
    assert btyd.MIN_CUSTOMERS == 20


def test_expected_purchases_stay_finite_when_the_dropout_chance_is_all_but_fixed():
    """A fit on real purchase data ended at a = 1e4, b = 9e4 (a ridge of the likelihood): the hypergeometric term
    overflows there, and the fixed-p limit must agree with the exact formula at a = 1e2, b = 9e2 (same mean)."""
    x, T, tx = np.array([0, 1, 5, 20.0]), np.array([3, 10, 30, 40.0]), np.array([0, 2, 20, 39.0])
    ridge = BetaGeoModel.from_dict({"params": {"r": 2.23, "alpha": 9.8, "a": 9994.6, "b": 86162.0}})
    moderate = BetaGeoModel.from_dict({"params": {"r": 2.23, "alpha": 9.8, "a": 99.946, "b": 861.62}})
    far = ridge.expected_purchases(12.86, x, tx, T)
    assert np.isfinite(far).all()
    np.testing.assert_allclose(far, moderate.expected_purchases(12.86, x, tx, T), rtol=0.02)
