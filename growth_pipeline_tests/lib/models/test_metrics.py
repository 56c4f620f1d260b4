"""Evaluation metrics (growth_pipeline.lib.models.metrics)."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from growth_pipeline.lib.models.metrics import (
    CLASSIFIER_KEYS,
    PRIMARY_METRIC,
    REGRESSION_KEYS,
    NotEnoughDataError,
    classifier_metrics,
    decile_mape,
    expected_calibration_error,
    gains_table,
    normalized_gini,
    regression_metrics,
)
from growth_pipeline_tests.score_samples import calibrated_sample, zero_inflated


def kaggle_gini(actual, pred) -> float:
    """The competitions' reference implementation (sort by prediction desc, then by row index)."""
    a = np.asarray(np.c_[actual, pred, np.arange(len(actual))], dtype=float)
    a = a[np.lexsort((a[:, 2], -1 * a[:, 1]))]
    total = a[:, 0].sum()
    g = a[:, 0].cumsum().sum() / total - (len(actual) + 1) / 2.0
    return g / len(actual)


# ------------------------------------------------------------------------------------------------------ classifier


def test_classifier_metrics_keys_and_primary_metric():
    rng = np.random.default_rng(1)
    p, y = calibrated_sample(rng, 2000)
    m = classifier_metrics(y, p)
    assert tuple(m) == CLASSIFIER_KEYS
    assert m["n"] == 2000 and m["positive_rate"] == pytest.approx(y.mean())
    assert all(isinstance(v, float) for k, v in m.items() if k != "n")
    assert PRIMARY_METRIC == {"classifier": "roc_auc", "ltv": "normalized_gini"}
    json.dumps(m)


def test_auc_perfect_reversed_random_and_equal_to_sklearn():
    rng = np.random.default_rng(2)
    y = (rng.uniform(size=20000) < 0.2).astype(int)
    noise = rng.uniform(size=len(y))
    assert classifier_metrics(y, 0.1 + 0.8 * y)["roc_auc"] == 1.0
    assert classifier_metrics(y, 0.9 - 0.8 * y)["roc_auc"] == 0.0
    assert classifier_metrics(y, noise)["roc_auc"] == pytest.approx(0.5, abs=0.02)
    p, yy = calibrated_sample(rng, 5000)
    p = np.round(p, 2)  # with ties
    m = classifier_metrics(pl.Series(yy), list(p))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(yy, p), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(average_precision_score(yy, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(yy, p), abs=1e-12)


def test_log_loss_is_clipped():
    y = np.array([1, 0, 1, 0])
    m = classifier_metrics(y, [0.0, 1.0, 1.0, 0.0])  # two certain mistakes
    assert m["log_loss"] == pytest.approx(-0.5 * math.log(1e-6) - 0.5 * math.log1p(-1e-6))
    m = classifier_metrics(y, [0.5] * 4)
    assert m["log_loss"] == pytest.approx(math.log(2))


@pytest.mark.parametrize("rate,expected", [(0.02, 10.0), (0.1, 10.0), (0.25, 4.0), (0.5, 2.0)])
def test_top_decile_lift_of_perfect_model(rate, expected):
    n = 10000
    y = np.zeros(n, dtype=int)
    y[: int(rate * n)] = 1
    np.random.default_rng(3).shuffle(y)
    m = classifier_metrics(y, np.where(y == 1, 0.9, 0.1))
    assert m["top_decile_lift"] == pytest.approx(min(1 / rate, 10.0))


def test_top_decile_lift_ties_are_broken_by_input_order():
    y = np.r_[np.ones(10), np.zeros(90)]
    # constant scores: the "top 10%" is the first 10 rows in input order
    assert classifier_metrics(y, np.full(100, 0.3))["top_decile_lift"] == pytest.approx(10.0)
    assert classifier_metrics(y[::-1], np.full(100, 0.3))["top_decile_lift"] == 0.0


def test_lift_quality_perfect_random_reversed():
    rng = np.random.default_rng(4)
    y = (rng.uniform(size=50000) < 0.15).astype(int)
    assert classifier_metrics(y, 0.2 + 0.6 * y)["lift_quality"] == pytest.approx(1.0)
    assert abs(classifier_metrics(y, rng.uniform(size=len(y)))["lift_quality"]) < 0.1
    assert classifier_metrics(y, 0.8 - 0.6 * y)["lift_quality"] == pytest.approx(-1.0)
    p, yy = calibrated_sample(rng, 5000)
    rev = classifier_metrics(yy, 1 - p)["lift_quality"]
    assert rev < -0.3


def test_lift_quality_is_accuracy_ratio_and_ignores_row_order_of_ties():
    rng = np.random.default_rng(5)
    p, y = calibrated_sample(rng, 4000)
    for q in (p, np.round(p, 1)):
        m = classifier_metrics(y, q)
        assert m["lift_quality"] == pytest.approx(2 * m["roc_auc"] - 1, abs=1e-9)
    ys = np.sort(y)[::-1]  # positives first in row order
    assert classifier_metrics(ys, np.full(len(ys), 0.4))["lift_quality"] == pytest.approx(0.0, abs=1e-12)


def test_ece_calibrated_vs_squashed():
    rng = np.random.default_rng(6)
    p, y = calibrated_sample(rng, 50000)
    assert classifier_metrics(y, p)["ece"] < 0.01
    squashed = 0.5 + 0.01 * (2 * p - 1)
    assert classifier_metrics(y, squashed)["ece"] > 0.15


def test_ece_by_hand():
    # 10 equal-frequency bins of 2 users with the same p, one positive and one negative: mean y = 0.5 per bin
    p = np.repeat(np.linspace(0.1, 0.9, 10), 2)
    y = np.tile([1, 0], 10)
    expected = np.mean(np.abs(np.linspace(0.1, 0.9, 10) - 0.5))
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_single_class_and_bad_input_raise():
    with pytest.raises(ValueError, match="only one class"):
        classifier_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(NotEnoughDataError, match="only one class"):
        classifier_metrics(np.zeros(50), np.linspace(0, 1, 50))
    with pytest.raises(ValueError):
        classifier_metrics([], [])
    with pytest.raises(ValueError, match="only 0 and 1"):
        classifier_metrics([0, 2, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        classifier_metrics([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="missing"):
        classifier_metrics([0, 1, 1], [0.2, float("nan"), 0.9])
    with pytest.raises(ValueError, match="length"):
        classifier_metrics([0, 1, 1], [0.2, 0.9])


# ------------------------------------------------------------------------------------------------------ regression


def test_regression_metrics_keys():
    rng = np.random.default_rng(7)
    y, pred = zero_inflated(rng, 3000)
    m = regression_metrics(y, pred)
    assert tuple(m) == REGRESSION_KEYS
    assert m["n"] == 3000
    assert m["total_actual"] == pytest.approx(y.sum()) and m["total_predicted"] == pytest.approx(pred.sum())
    assert m["total_ratio"] == pytest.approx(pred.sum() / y.sum())
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))


def test_normalized_gini_perfect_constant_random():
    rng = np.random.default_rng(8)
    y, _ = zero_inflated(rng, 20000)
    assert normalized_gini(y, y) == pytest.approx(1.0)
    assert normalized_gini(y, 3 * y + 1) == pytest.approx(1.0)  # only the ordering counts
    assert normalized_gini(y, np.full(len(y), 7.0)) == pytest.approx(0.0, abs=1e-12)
    # constant predictions stay 0 even when the rows happen to be sorted by revenue
    assert normalized_gini(np.sort(y)[::-1], np.zeros(len(y))) == pytest.approx(0.0, abs=1e-12)
    assert abs(normalized_gini(y, rng.uniform(size=len(y)))) < 0.1
    assert normalized_gini(y, -y) < -0.9


def test_normalized_gini_matches_competition_formula_without_ties():
    rng = np.random.default_rng(9)
    y, pred = zero_inflated(rng, 2000)
    pred = pred * rng.lognormal(0, 0.5, size=len(pred))  # no ties
    expected = kaggle_gini(y, pred) / kaggle_gini(y, y)
    assert normalized_gini(y, pred) == pytest.approx(expected, abs=1e-12)
    # the classic small example
    assert normalized_gini([1, 1, 0, 1], [0.86, 0.26, 0.52, 0.32]) == pytest.approx(-1 / 3)


def test_normalized_gini_on_labels_equals_lift_quality():
    rng = np.random.default_rng(10)
    p, y = calibrated_sample(rng, 3000)
    q = np.round(p, 1)
    assert normalized_gini(y, q) == pytest.approx(classifier_metrics(y, q)["lift_quality"], abs=1e-9)


def test_mae_rewards_predicting_zero_but_gini_does_not():
    """Pinned: why MAE must never choose or promote an ltv model."""
    rng = np.random.default_rng(11)
    y, good = zero_inflated(rng, 20000)
    assert (y == 0).mean() > 0.8
    zeros = regression_metrics(y, np.zeros(len(y)))
    model = regression_metrics(y, good)
    assert zeros["mae"] < model["mae"]  # MAE prefers "nobody will ever pay"
    assert zeros["normalized_gini"] == 0.0  # which orders nobody
    assert model["normalized_gini"] > 0.5  # the useful model orders users well
    assert model["normalized_gini"] > zeros["normalized_gini"]
    assert zeros["total_ratio"] == 0.0 and 0.7 < model["total_ratio"] < 1.3
    assert math.isnan(zeros["spearman"]) and model["spearman"] > 0.2


def test_decile_mape_and_total_ratio():
    rng = np.random.default_rng(12)
    y, _ = zero_inflated(rng, 5000)
    assert decile_mape(y, y) == 0.0
    assert regression_metrics(y, y)["decile_mape"] == 0.0
    assert regression_metrics(y, 2 * y)["decile_mape"] == pytest.approx(1.0)
    assert regression_metrics(y, 2 * y)["total_ratio"] == pytest.approx(2.0)
    # by hand: deciles of 1 user each; the decile with no actual revenue is skipped
    actual = np.array([10.0, 0, 5, 5, 0, 0, 0, 0, 0, 4])
    pred = np.array([12.0, 9, 8, 7, 0, 0, 0, 0, 0, 0])  # the last user (actual 4) is in the last decile
    expected = np.mean([2 / 10, 3 / 5, 2 / 5, 4 / 4])
    assert decile_mape(actual, pred) == pytest.approx(expected)
    m = regression_metrics(np.zeros(10), np.ones(10))
    assert math.isnan(m["total_ratio"]) and math.isnan(m["decile_mape"]) and math.isnan(m["normalized_gini"])


# ------------------------------------------------------------------------------------------------------ gains table


def test_gains_table_binary():
    rng = np.random.default_rng(13)
    p, y = calibrated_sample(rng, 1005)
    t = gains_table(y, p)
    assert t.columns == [
        "decile",
        "users",
        "positives",
        "rate",
        "score_min",
        "score_max",
        "cum_users_share",
        "gains",
        "lift",
        "cum_lift",
    ]
    assert t.height == 10 and t["decile"].to_list() == list(range(1, 11))
    assert t["users"].sum() == 1005 and t["users"].max() - t["users"].min() <= 1
    assert t["positives"].sum() == y.sum()
    assert t["gains"][-1] == pytest.approx(1.0) and t["cum_users_share"][-1] == pytest.approx(1.0)
    assert t["cum_lift"][-1] == pytest.approx(1.0)
    assert t["score_min"][0] >= t["score_max"][1]  # decile 1 = highest scores
    assert t["lift"][0] == pytest.approx(classifier_metrics(y, p)["top_decile_lift"])
    assert (t["users"] * t["lift"]).sum() == pytest.approx(1005)


def test_gains_table_revenue_and_small_n():
    rng = np.random.default_rng(14)
    y, pred = zero_inflated(rng, 2000)
    t = gains_table(y, pred, n_bins=5)
    assert t.height == 5 and t["positives"].sum() == pytest.approx(y.sum())
    assert t["gains"][-1] == pytest.approx(1.0)
    small = gains_table([1, 0, 1], [0.9, 0.1, 0.5])
    assert small.height == 3 and small["users"].to_list() == [1, 1, 1]
    assert small["gains"].to_list() == pytest.approx([0.5, 1.0, 1.0])


def test_paired_bootstrap_win_rate_tells_noise_from_a_better_model():
    from growth_pipeline.lib.models.metrics import paired_bootstrap_win_rate

    rng = np.random.default_rng(0)
    n = 3000
    signal = rng.normal(size=n)
    y = (signal + rng.normal(size=n) > 0.5).astype(int)
    good = signal + 0.5 * rng.normal(size=n)
    worse = signal + 1.5 * rng.normal(size=n)
    same = good + 1e-9 * rng.normal(size=n)  # the same ranking, up to float noise
    assert paired_bootstrap_win_rate(y, good, worse, "classifier") > 0.95
    assert paired_bootstrap_win_rate(y, worse, good, "classifier") < 0.05
    assert paired_bootstrap_win_rate(y, same, good, "classifier") < 0.9
    revenue = np.where(y == 1, np.exp(signal), 0.0)
    assert paired_bootstrap_win_rate(revenue, np.exp(good), np.exp(worse), "ltv") > 0.95


def test_bootstrap_intervals_cover_the_figure_and_narrow_with_more_users():
    from growth_pipeline.lib.models.metrics import bootstrap_intervals

    rng = np.random.default_rng(1)

    def sample(n):
        y = (rng.random(n) < 0.3).astype(float)
        return y, y * 0.8 + rng.normal(0, 1, n)

    widths = []
    for n in (200, 5000):
        y, s = sample(n)
        ((lo, hi),) = bootstrap_intervals(y, s, "classifier").values()
        assert lo < classifier_metrics(y, 1 / (1 + np.exp(-s)))["roc_auc"] < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 3
    y = np.array([0.0] * 50 + [5.0] * 50)
    iv = bootstrap_intervals(y, y, "ltv", ("normalized_gini", "total_ratio"))
    assert iv["normalized_gini"] == pytest.approx((1.0, 1.0)) and iv["total_ratio"] == pytest.approx((1.0, 1.0))


def test_paired_bootstrap_difference_is_zero_for_the_same_model_and_positive_for_a_better_one():
    from growth_pipeline.lib.models.metrics import paired_bootstrap_difference

    rng = np.random.default_rng(2)
    y = (rng.random(3000) < 0.3).astype(float)
    weak, strong = y * 0.3 + rng.normal(0, 1, 3000), y * 1.5 + rng.normal(0, 1, 3000)
    assert paired_bootstrap_difference(y, weak, weak, "classifier") == (0.0, 0.0, 0.0)
    d, lo, hi = paired_bootstrap_difference(y, strong, weak, "classifier")
    assert 0 < lo < d < hi
