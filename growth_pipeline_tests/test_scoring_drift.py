"""Scoring, drift and retraining decisions as plain functions (no Dagster)."""

import io
import threading
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.automation.retraining import DriftSignal, RetrainState, plan, yesterday
from growth_pipeline.lib.scoring import drift
from growth_pipeline.lib.scoring import scores as scoring


def test_percentiles_and_bands():
    score = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    pct = scoring.percentiles(score)
    assert pct[3] == 100.0 and pct[0] == 10.0
    assert pct[1] == pct[2] == 60.0  # ties share a percentile
    b = scoring.bands(pct, scoring.Bands(90, 70))
    assert b[3] == "high" and list(b).count("high") == 1
    assert set(b[[8, 9]]) == {"medium"} and b[0] == "low"


def _frame(model, users, scores):
    n = len(users)
    return pl.DataFrame(
        {
            "day": [date(2026, 5, 1)] * n,
            "model": [model] * n,
            "user_key": users,
            "score": scores,
            "percentile": [50.0] * n,
            "band": ["low"] * n,
            "reason_1": ["a"] * n,
            "reason_2": ["b"] * n,
            "reason_3": ["c"] * n,
            "registered_model": [f"x-{model}"] * n,
            "model_version": ["1"] * n,
            "model_family": ["catboost"] * n,
            "revenue_at_risk": [None] * n,
            "scored_at": [datetime(2026, 5, 2, tzinfo=UTC)] * n,
        },
        schema=scoring.SCORE_SCHEMA,
    )


def test_revenue_at_risk_is_churn_probability_times_predicted_ltv():
    churn = _frame("churn", ["a", "b", "c"], [0.5, 0.1, 0.9])
    ltv = _frame("ltv", ["a", "b", "d"], [100.0, 40.0, 10.0])
    out = scoring.combine([churn, ltv])
    risk = dict(out.filter(pl.col("model") == "churn").select("user_key", "revenue_at_risk").iter_rows())
    assert risk == {"a": 50.0, "b": pytest.approx(4.0), "c": None}  # c has no ltv score
    assert out.filter((pl.col("model") == "ltv") & (pl.col("user_key") == "d"))["revenue_at_risk"][0] is None


def test_export_is_atomic_and_latest_follows_the_newest_day(tmp_path):
    day1, day2 = date(2026, 5, 1), date(2026, 5, 2)
    big = _frame("churn", [f"u{i}" for i in range(200_000)], list(np.linspace(0, 1, 200_000)))
    seen_partial = []
    stop = threading.Event()

    def reader():  # a reader polling the file while it is rewritten must never see half of it
        path = tmp_path / f"user_scores_{day1}.parquet"
        while not stop.is_set():
            if path.exists():
                try:  # one open of the path (polars itself may open a path twice while it is replaced)
                    n = pl.read_parquet(io.BytesIO(path.read_bytes())).height
                    if n not in (3, 200_000):
                        seen_partial.append(n)
                except Exception as exc:  # a torn file does not parse
                    seen_partial.append(repr(exc))

    scoring.export_scores(_frame("churn", ["a", "b", "c"], [0.1, 0.2, 0.3]), tmp_path, day1)
    t = threading.Thread(target=reader)
    t.start()
    for _ in range(3):
        scoring.export_scores(big, tmp_path, day1)
        scoring.export_scores(_frame("churn", ["a", "b", "c"], [0.1, 0.2, 0.3]), tmp_path, day1)
    stop.set()
    t.join()
    assert seen_partial == []
    scoring.export_scores(_frame("churn", ["z"], [0.5]), tmp_path, day2)
    scoring.export_scores(_frame("churn", ["a", "b", "c"], [0.1, 0.2, 0.3]), tmp_path, day1)  # an older day again
    assert pl.read_parquet(tmp_path / "user_scores_latest.parquet")["user_key"].to_list() == ["z"]
    assert pl.read_csv(tmp_path / f"user_scores_{day1}.csv").height == 3
    assert not list(tmp_path.glob(".*"))


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


def _population(rng, n, task_rate=5.0):
    return pl.DataFrame(
        {
            "recency_days": rng.exponential(5, n),
            "n_task_created_28d": rng.poisson(task_rate, n).astype(float),
            "platform": rng.choice(["web", "ios", "android"], n),
        }
    )


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


def test_cooldown_allows_one_request_per_model_per_cooldown():
    state = RetrainState()
    first = plan([DriftSignal("acme", "churn", date(2026, 5, 1), "drift", 1)], state, {"acme": 7})
    assert first[0].request
    # later evaluations: within the cooldown nothing, after it one request; several days of one model read at
    # once (a backfill) make one request, for the latest day
    sig = [DriftSignal("acme", "churn", date(2026, 5, d), "drift", d) for d in (2, 8, 9)]
    sig.append(DriftSignal("acme", "ltv", date(2026, 5, 2), "drift", 10))
    sig.append(DriftSignal("other", "churn", date(2026, 5, 2), "drift", 11))
    decided = plan(sig, state, {"acme": 7, "other": 7})
    asked = [(d.signal.customer, d.signal.model, d.signal.day.day) for d in decided if d.request]
    assert asked == [("acme", "churn", 9), ("acme", "ltv", 2), ("other", "churn", 2)]
    # the state survives the cursor round trip
    again = plan(
        [DriftSignal("acme", "churn", date(2026, 5, 15), "drift", 12)],
        RetrainState.from_cursor(state.to_cursor()),
        {"acme": 7},
    )
    assert not again[0].request and "cooldown" in again[0].why


def test_yesterday_is_in_the_customers_timezone():
    at = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    assert yesterday(at, "Asia/Kolkata") == date(2026, 5, 1)
    assert yesterday(at, "America/Los_Angeles") == date(2026, 4, 30)  # still May 1st, 23:00 there
