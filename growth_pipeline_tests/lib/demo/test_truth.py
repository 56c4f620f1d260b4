"""The demo's hidden truth (growth_pipeline.lib.demo.truth): one row per user consistent with the events, and the
true outcome probabilities (the oracle) against realised outcomes."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.demo.truth import true_outcome_probability
from growth_pipeline.lib.demo.writer import day_files_for
from growth_pipeline_tests.lib.demo.demo_files import (
    FD_SPEC,
    PP_SPEC,
    Day,
    auc,
    dedup_key,
    local_date,
    read_all,
    realised,
    user_events,
)


@pytest.mark.parametrize("which", ["pp", "fd"])
def test_truth_one_row_per_user_and_consistent_with_events(which, request):
    summary, out, days, truth = request.getfixturevalue(which)
    spec = PP_SPEC if which == "pp" else FD_SPEC
    meta = json.loads((out / "truth.json").read_text())
    goal_ev, conv_ev = meta["goal_event"], meta["conversion_event"]
    assert truth.height == spec.n_users == summary.users
    assert truth["user_id"].n_unique() == truth.height and truth["device_id"].n_unique() == truth.height
    for c in (
        "user_id",
        "device_id",
        "signup_time",
        "channel",
        "platform",
        "city",
        "engagement",
        "price_sensitivity",
        "churn_hazard",
        "activity_rate",
        "conversion_hazard",
        "purchase_rate",
        "mean_order_value",
        "goal_hazard",
        "churn_time",
        "conversion_time",
        "goal_time",
    ):
        assert c in truth.columns, c
    for c in ("churn_hazard", "conversion_hazard", "goal_hazard", "fade_exit_hazard"):
        assert truth[c].min() > 0 and truth[c].max() <= 1
    assert truth["churn_time"].is_not_null().sum() > 5
    assert truth["conversion_time"].is_not_null().sum() > 5
    assert truth["goal_time"].is_not_null().sum() > 5

    ev = user_events(days, truth)
    for row in truth.iter_rows(named=True):
        mine = ev[row["user_id"]]
        times = [t for t, _, _ in mine]
        if row["churn_time"] is not None:
            assert max(times) < row["churn_time"].timestamp()
            assert row["churn_date"] > row["signup_date"]
            assert row["fade_start_time"] <= row["churn_time"]
        conv = [t for t, e, _ in mine if e == conv_ev]
        if row["conversion_time"] is None:
            assert not conv
        else:
            assert min(conv) == row["conversion_time"].timestamp() >= row["signup_time"].timestamp()
        goals = [t for t, e, _ in mine if e == goal_ev]
        if row["goal_time"] is None:
            assert not goals
        else:
            assert min(goals) == row["goal_time"].timestamp()


def test_truth_json_documents_the_generator(pp):
    _, out, _, _ = pp
    meta = json.loads((out / "truth.json").read_text())
    assert meta["timezone"] == "Asia/Kolkata" and meta["layout"] == "export_api"
    assert meta["spec"]["seed"] == PP_SPEC.seed
    assert set(meta["formulas"]) >= {"churn_hazard", "conversion_hazard", "goal_hazard", "mean_order_value"}
    assert meta["truth_rows"] == PP_SPEC.n_users
    assert meta["goal_event"] == "Project Created" and meta["conversion_event"] == "Subscription Purchased"


def test_activity_declines_before_gradual_churn(tmp_path):
    spec = DemoSpec(
        "powerplay", n_users=2500, start=date(2024, 1, 1), days=90, seed=2, malformed_per_day=0, duplicate_share=0.0
    )
    generate_demo(spec, tmp_path)
    truth = pl.read_parquet(tmp_path / "truth.parquet")
    ev = user_events(read_all(spec, tmp_path), truth)
    churned = truth.filter(
        pl.col("churn_date").is_not_null() & ((pl.col("churn_date") - pl.col("signup_date")).dt.total_days() >= 29)
    )
    ratios = {}
    for gradual in (True, False):
        sel = churned.filter((pl.col("fade_exit_hazard") < 1) == gradual)
        early = late = 0
        for row in sel.iter_rows(named=True):
            ct = row["churn_time"].timestamp()
            ts = np.array([t for t, _, _ in ev[row["user_id"]]])
            early += ((ts >= ct - 28 * 86400) & (ts < ct - 14 * 86400)).sum()
            late += ((ts >= ct - 14 * 86400) & (ts < ct)).sum()
        assert sel.height > 40
        ratios[gradual] = late / early
    # per user-day, fading users do less than half of what they did in the two weeks before fading
    faded = truth.filter(
        pl.col("churn_date").is_not_null()
        & (pl.col("fade_exit_hazard") < 1)
        & (pl.col("churn_date") > pl.col("fade_start_date"))
        & ((pl.col("fade_start_date") - pl.col("signup_date")).dt.total_days() >= 15)
    )
    before_fade = in_fade = fade_days = 0
    for row in faded.iter_rows(named=True):
        ct, ft = row["churn_time"].timestamp(), row["fade_start_time"].timestamp()
        ts = np.array([t for t, _, _ in ev[row["user_id"]]])
        before_fade += ((ts >= ft - 14 * 86400) & (ts < ft)).sum()
        in_fade += ((ts >= ft) & (ts < ct)).sum()
        fade_days += round((ct - ft) / 86400)
    assert faded.height > 40
    assert in_fade / fade_days < 0.6 * before_fade / (14 * faded.height)
    # the last two weeks before a gradual churn are visibly quieter than the two weeks before them
    assert ratios[True] < 0.8 and ratios[True] < ratios[False] - 0.15


@pytest.mark.parametrize(
    "kind,col", [("churn", "churn_date"), ("conversion", "conversion_date"), ("goal", "goal_date")]
)
def test_oracle_probabilities_rank_and_calibrate_realised_outcomes(oracle_data, kind, col):
    spec, _, truth = oracle_data
    as_of, h = spec.start + timedelta(days=40), 30
    probs = true_outcome_probability(truth, kind, as_of, h)
    assert probs.columns == ["user_id", "probability"]
    p = probs["probability"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    y = realised(truth, probs, col, as_of, h)
    assert len(y) > 500 and 10 < y.sum() < len(y) - 10
    assert auc(y, p) > 0.6
    se = np.sqrt(p.mean() * (1 - p.mean()) / len(p))
    assert abs(p.mean() - y.mean()) < 4 * se + 0.005  # the oracle is calibrated


def test_oracle_populations(oracle_data):
    spec, _, truth = oracle_data
    as_of = spec.start + timedelta(days=40)

    def before(c):
        return pl.col(c).is_not_null() & (pl.col(c) <= as_of)

    signed = truth.filter(pl.col("signup_date") <= as_of)
    alive = signed.filter(~before("churn_date"))
    assert true_outcome_probability(truth, "churn", as_of, 7).height == alive.height
    assert (
        true_outcome_probability(truth, "conversion", as_of, 7).height
        == alive.filter(~before("conversion_date")).height
    )
    assert true_outcome_probability(truth, "goal", as_of, 7).height == alive.filter(~before("goal_date")).height
    ltv = true_outcome_probability(truth, "ltv", as_of, 30)
    assert ltv.columns == ["user_id", "expected_revenue"] and ltv.height == signed.height
    dead = set(signed.filter(before("churn_date"))["user_id"])
    assert (ltv.filter(pl.col("user_id").is_in(list(dead)))["expected_revenue"] == 0).all()
    assert (ltv["expected_revenue"] >= 0).all()
    # longer horizons never lower a churn probability; hidden_state=False is a weaker reference
    p7 = true_outcome_probability(truth, "churn", as_of, 7)["probability"].to_numpy()
    p30 = true_outcome_probability(truth, "churn", as_of, 30)["probability"].to_numpy()
    assert (p30 >= p7 - 1e-12).all()
    with pytest.raises(ValueError):
        true_outcome_probability(truth, "nope", as_of, 7)


def test_oracle_churn_formula_matches_closed_form(oracle_data):
    spec, _, truth = oracle_data
    as_of, h = spec.start + timedelta(days=40), 21
    probs = true_outcome_probability(truth, "churn", as_of, h).join(truth, on="user_id", maintain_order="left")
    p, q = probs["churn_hazard"].to_numpy(), probs["fade_exit_hazard"].to_numpy()
    in_b = (probs["fade_start_date"].is_not_null() & (probs["fade_start_date"] <= as_of)).to_numpy()
    j = np.arange(1, h + 1)[None, :]
    in_a_closed = (
        1 - (1 - p) ** h - (((1 - p[:, None]) ** (j - 1)) * p[:, None] * (1 - q[:, None]) ** (h - j + 1)).sum(1)
    )
    expected = np.where(in_b, 1 - (1 - q) ** h, in_a_closed)
    np.testing.assert_allclose(probs["probability"].to_numpy(), expected, atol=1e-9)
    abrupt = (q == 1) & ~in_b
    np.testing.assert_allclose(probs["probability"].to_numpy()[abrupt], 1 - (1 - p[abrupt]) ** h, atol=1e-9)


def test_oracle_expected_revenue_matches_realised(oracle_data):
    spec, out, truth = oracle_data
    as_of, h = spec.start + timedelta(days=35), 30
    ltv = true_outcome_probability(truth, "ltv", as_of, h)
    users = set(ltv["user_id"])  # signed up by as_of: later sign-ups are not part of the expectation
    revenue = 0.0
    for k in range(36, 66):
        day = spec.start + timedelta(days=k)
        d = Day(day, day_files_for(spec, out, day))
        seen = set()
        for rec, _, _ in d.records:
            if (
                rec["event"] != "Subscription Purchased"
                or dedup_key(rec) in seen
                or rec["properties"]["distinct_id"] not in users
            ):
                continue
            seen.add(dedup_key(rec))
            if local_date(rec["properties"]["time"], "Asia/Kolkata") == day:
                revenue += rec["properties"]["amount"]
    expected = ltv["expected_revenue"].sum()
    assert revenue > 0
    assert abs(revenue / expected - 1) < 0.15
