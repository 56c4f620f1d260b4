"""The promotion rule (growth_pipeline.lib.models.promotion)."""

from __future__ import annotations

import math

import pytest

from growth_pipeline.lib.models.promotion import decide

C, L = "classifier", "ltv"


@pytest.mark.parametrize(
    "kind,metrics,has_champion,promote,beats,reason_part",
    [
        # classifiers
        (C, {"model.roc_auc": 0.75, "logistic.roc_auc": 0.70, "rule.roc_auc": 0.60}, False, True, True, "no champion"),
        # the logistic regression is a candidate, not a gate: whichever candidate serves only has to beat the rule
        (
            C,
            {"model.roc_auc": 0.712, "logistic.roc_auc": 0.720, "rule.roc_auc": 0.60},
            False,
            True,
            True,
            "no champion yet; model roc_auc 0.712 beats baselines (rule 0.600)",
        ),
        (
            C,
            {"model.roc_auc": 0.70, "logistic.roc_auc": 0.65, "rule.roc_auc": 0.70},
            False,
            False,
            False,
            "does not beat rule 0.700",
        ),  # a tie is not a win
        (C, {"model.roc_auc": 0.70, "rule.roc_auc": 0.65}, False, True, True, "rule 0.650"),
        (
            C,
            {"model.roc_auc": 0.70, "logistic.roc_auc": float("nan"), "rule.roc_auc": 0.6},
            False,
            True,
            True,
            "rule 0.600",
        ),  # NaN baseline ignored
        (C, {"model.roc_auc": 0.90}, False, False, False, "no baseline"),
        (C, {"model.roc_auc": 0.90, "model.log_loss": 0.1}, True, False, False, "no baseline"),
        (C, {"logistic.roc_auc": 0.6, "rule.roc_auc": 0.5}, False, False, False, "model.roc_auc is missing"),
        (
            C,
            {"model.roc_auc": 0.795, "rule.roc_auc": 0.7, "champion.roc_auc": 0.801},
            True,
            False,
            True,
            "champion v3 keeps: 0.801 >= 0.795",
        ),
        (
            C,
            {"model.roc_auc": 0.80, "rule.roc_auc": 0.7, "champion.roc_auc": 0.80},
            True,
            False,
            True,
            "champion v3 keeps",
        ),  # a tie keeps the champion
        (
            C,
            {"model.roc_auc": 0.81, "rule.roc_auc": 0.7, "champion.roc_auc": 0.80},
            True,
            True,
            True,
            "beats champion v3 0.800",
        ),
        (C, {"model.roc_auc": 0.81, "rule.roc_auc": 0.7}, True, False, True, "not scored"),  # champion unscored
        (
            C,
            {"model.roc_auc": 0.9511, "rule.roc_auc": 0.7, "champion.roc_auc": 0.9506, "champion.new_win_rate": 0.62},
            True,
            False,
            True,
            "not clearly better (higher on 62%",
        ),  # noise keeps
        (
            C,
            {"model.roc_auc": 0.83, "rule.roc_auc": 0.7, "champion.roc_auc": 0.80, "champion.new_win_rate": 0.97},
            True,
            True,
            True,
            "on 97% of paired bootstrap resamples",
        ),
        (C, {"model.roc_auc": 0.7204, "rule.roc_auc": 0.7201}, False, True, True, "rule 0.720"),
        (
            C,
            {"model.roc_auc": 0.7201, "rule.roc_auc": 0.7204},
            False,
            False,
            False,
            "0.7201 does not beat rule 0.7204",
        ),  # digits enough to differ
        # ltv
        (
            L,
            {
                "model.normalized_gini": 0.5,
                "historical_average.normalized_gini": 0.35,
                "rule.normalized_gini": 0.2,
                "model.total_ratio": 1.1,
            },
            False,
            True,
            True,
            "total ratio 1.100",
        ),
        # the historical average is reported next to the model, not a gate: only the one-feature rule is
        (
            L,
            {
                "model.normalized_gini": 0.5,
                "rule.normalized_gini": 0.3,
                "historical_average.normalized_gini": 0.55,
                "model.total_ratio": 1.0,
            },
            False,
            True,
            True,
            "beats baselines (rule 0.300",
        ),
        (
            L,
            {"model.normalized_gini": 0.5, "rule.normalized_gini": 0.52, "model.total_ratio": 1.0},
            False,
            False,
            False,
            "does not beat rule 0.520",
        ),
        (
            L,
            {"model.normalized_gini": 0.95, "rule.normalized_gini": 0.3, "model.total_ratio": 1.30, "model.mae": 0.0},
            False,
            False,
            False,
            "outside [0.85, 1.15]",
        ),
        (
            L,
            {"model.normalized_gini": 0.95, "rule.normalized_gini": 0.3, "model.total_ratio": 0.80},
            False,
            False,
            False,
            "0.800 x the actual total",
        ),
        (
            L,
            {"model.normalized_gini": 0.95, "rule.normalized_gini": 0.3, "model.total_ratio": 0.85},
            False,
            True,
            True,
            "no champion",
        ),  # the bounds are inclusive
        (L, {"model.normalized_gini": 0.95, "rule.normalized_gini": 0.3}, False, False, False, "total_ratio"),
        # a small test set: the total is off by 38% but its interval says it cannot be told from the actual one
        (
            L,
            {
                "model.normalized_gini": 0.74,
                "rule.normalized_gini": 0.6,
                "model.total_ratio": 1.38,
                "model.total_ratio_lo90": 0.81,
                "model.total_ratio_hi90": 2.4,
            },
            False,
            True,
            True,
            "interval [0.81, 2.40]",
        ),
        (
            L,
            {
                "model.normalized_gini": 0.74,
                "rule.normalized_gini": 0.6,
                "model.total_ratio": 1.38,
                "model.total_ratio_lo90": 1.2,
                "model.total_ratio_hi90": 1.6,
            },
            False,
            False,
            False,
            "1.380 x the actual",
        ),
        (
            L,
            {"model.normalized_gini": 0.95, "model.total_ratio": 1.0, "logistic.roc_auc": 0.5},
            False,
            False,
            False,
            "no baseline",
        ),  # classifier baselines don't count
        (
            L,
            {
                "model.normalized_gini": 0.40,
                "rule.normalized_gini": 0.3,
                "model.total_ratio": 1.0,
                "champion.normalized_gini": 0.45,
            },
            True,
            False,
            True,
            "champion v3 keeps: 0.450 >= 0.400",
        ),
        (
            L,
            {
                "model.normalized_gini": 0.50,
                "rule.normalized_gini": 0.3,
                "model.total_ratio": 1.0,
                "champion.normalized_gini": 0.45,
                "model.mae": 99.0,
                "champion.mae": 1.0,
            },
            True,
            True,
            True,
            "beats champion v3 0.450",
        ),  # MAE is never consulted
    ],
)
def test_decide(kind, metrics, has_champion, promote, beats, reason_part):
    d = decide(kind, metrics, has_champion, champion_version=3)
    assert (d.promote, d.beats_baselines) == (promote, beats), d.reason
    assert reason_part in d.reason
    assert d.primary_metric == ("roc_auc" if kind == C else "normalized_gini")
    assert d.outcome == ("promoted" if promote else "kept" if beats else "refused")
    if has_champion and f"champion.{d.primary_metric}" in metrics:
        assert d.champion_value == metrics[f"champion.{d.primary_metric}"]
    elif not has_champion:
        assert d.champion_value is None


def test_decide_rejects_unknown_kind_and_names_nothing_without_a_version():
    with pytest.raises(ValueError):
        decide("ranker", {}, False)  # type: ignore[arg-type]
    d = decide(C, {"model.roc_auc": 0.7, "rule.roc_auc": 0.6, "champion.roc_auc": 0.8}, True)
    assert d.reason.startswith("champion keeps: 0.800 >= 0.700")
    assert math.isnan(decide(C, {}, False).new_value)
