"""Explanations (growth_pipeline.lib.scoring.explain): SHAP values, global importance and per-user top reasons."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor

from growth_pipeline.lib.models.model_types import model_input
from growth_pipeline.lib.scoring.explain import global_importance, reasons_frame, shap_matrix, top_reasons
from growth_pipeline.lib.scoring.phrases import describe

CB = dict(iterations=50, thread_count=2, allow_writing_files=False, verbose=False, random_seed=7)


# ---------------------------------------------------------------------------------------------------- SHAP


def small_frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.integers(0, 30, n)
    events = rng.poisson(5, n).astype(float)
    events[rng.uniform(size=n) < 0.1] = np.nan
    channel = rng.choice(["facebook", "google", "direct"], n).astype(object)
    channel[rng.uniform(size=n) < 0.1] = None
    logit = 0.15 * (recency - 15) - 0.2 * np.nan_to_num(events - 5) + (channel == "facebook") * 0.8
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pl.DataFrame(
        {
            "user_key": [f"u{i}" for i in range(n)],
            "label": y,
            "recency_days": recency,
            "events_7d": events,
            "channel": list(channel),
        }
    )


FEATURES = ["recency_days", "events_7d", "channel"]
CATS = ["channel"]


def test_shap_matrix_classifier_sums_to_raw_prediction():
    df = small_frame(600)
    x = model_input(df, FEATURES, CATS).to_pandas()
    model = CatBoostClassifier(**CB, cat_features=CATS).fit(x, df["label"].to_numpy())
    sv = shap_matrix(model, df, FEATURES, CATS, thread_count=2)
    assert sv.shape == (600, 3) and sv.dtype == np.float64
    raw = model.predict(x, prediction_type="RawFormulaVal")
    from catboost import Pool

    full = model.get_feature_importance(data=Pool(x, cat_features=CATS), type="ShapValues")
    expected_value = full[0, -1]
    np.testing.assert_allclose(sv.sum(axis=1) + expected_value, raw, atol=1e-6)
    # chunking changes nothing; extra columns in the frame are ignored
    np.testing.assert_allclose(shap_matrix(model, df, FEATURES, CATS, thread_count=2, chunk_rows=77), sv, atol=1e-12)


def test_shap_matrix_regressor_and_absent_column():
    df = small_frame(400, seed=1)
    target = df["recency_days"].to_numpy() * 2.0 + np.nan_to_num(df["events_7d"].to_numpy())
    x = model_input(df, FEATURES, CATS).to_pandas()
    model = CatBoostRegressor(**CB, cat_features=CATS).fit(x, target)
    sv = shap_matrix(model, df, FEATURES, CATS, thread_count=2, chunk_rows=150)
    from catboost import Pool

    ev = model.get_feature_importance(data=Pool(x, cat_features=CATS), type="ShapValues")[0, -1]
    np.testing.assert_allclose(sv.sum(axis=1) + ev, model.predict(x), atol=1e-6)
    # a feature today's data lacks is scored as empty, not an error
    sv2 = shap_matrix(model, df.drop("events_7d"), FEATURES, CATS, thread_count=2)
    assert sv2.shape == (400, 3) and np.isfinite(sv2).all()
    assert shap_matrix(model, df.head(0), FEATURES, CATS).shape == (0, 3)


# ------------------------------------------------------------------------------- recency-driven synthetic churn


def test_recency_only_label_explained_by_recency():
    rng = np.random.default_rng(3)
    n = 3000
    df = pl.DataFrame(
        {
            "user_key": np.arange(n),
            "recency_days": rng.integers(0, 40, n),
            "events_7d": rng.poisson(4, n),
            "sessions_28d": rng.poisson(6, n),
            "channel": rng.choice(["facebook", "google", "direct"], n),
        }
    )
    feats = ["recency_days", "events_7d", "sessions_28d", "channel"]
    y = (df["recency_days"].to_numpy() > 20).astype(int)
    x = model_input(df, feats, ["channel"]).to_pandas()
    model = CatBoostClassifier(**CB, cat_features=["channel"]).fit(x, y)
    sv = shap_matrix(model, df, feats, ["channel"], thread_count=2)

    imp = global_importance(sv, feats)
    assert imp.columns == ["feature", "mean_abs_shap", "share"]
    assert imp["feature"][0] == "recency_days"
    assert imp["share"].sum() == pytest.approx(1.0)
    assert imp["mean_abs_shap"].is_sorted(descending=True)

    reasons = top_reasons(sv, df, feats, k=3)
    assert len(reasons) == n and all(len(r) == 3 for r in reasons)
    p = model.predict_proba(x)[:, 1]
    risky = np.flatnonzero(p > 0.9)
    assert len(risky) > 100
    assert all(reasons[i][0].startswith("no activity for") for i in risky)
    # the phrase carries the row's own value
    i = int(risky[0])
    assert reasons[i][0] == f"no activity for {df['recency_days'][i]} days"

    # "down": what keeps a safe user's score low is also recency ("active today", "no activity for 3 days" ...)
    safe = np.flatnonzero(p < 0.1)
    down = top_reasons(sv, df, feats, k=1, direction="down")
    rec = df["recency_days"].to_list()
    assert all(down[i][0] == describe("recency_days", rec[i]) for i in safe)

    out = reasons_frame(df["user_key"], reasons)
    assert out.columns == ["user_key", "reason_1", "reason_2", "reason_3"]
    assert out.height == n and out["user_key"].dtype == df["user_key"].dtype


# -------------------------------------------------------------------------------------------------- top_reasons


def test_top_reasons_order_and_fill_when_few_positive():
    feats = ["recency_days", "events_7d", "channel", "lifetime_purchases"]
    frame = pl.DataFrame(
        {
            "recency_days": [12, 0, 3],
            "events_7d": [0, 5, 1],
            "channel": ["facebook", None, "x"],
            "lifetime_purchases": [1, 2, 0],
        }
    )
    shap = np.array(
        [
            [0.9, 0.3, -0.1, 0.5],  # three positive: 0.9, 0.5, 0.3
            [-0.2, 0.4, -0.7, 0.0],  # one positive (0.4), then by magnitude: -0.7, -0.2
            [-0.1, -0.3, -0.2, -0.05],  # none positive: by magnitude -0.3, -0.2, -0.1
        ]
    )
    r = top_reasons(shap, frame, feats, k=3)
    assert r[0] == ["no activity for 12 days", "1 purchase to date", "no events in the last 7 days"]
    assert r[1] == ["5 events in the last 7 days", "channel unknown", "active today"]
    assert r[2] == ["1 event in the last 7 days", "came from x", "no activity for 3 days"]
    # direction="down" flips the sign
    d = top_reasons(shap, frame, feats, k=2, direction="down")
    assert d[1] == ["channel unknown", "active today"]
    # k larger than the feature count gives every feature; a feature absent from the frame is described as null
    r5 = top_reasons(shap, frame.drop("lifetime_purchases"), feats, k=5)
    assert [len(x) for x in r5] == [4, 4, 4]
    assert r5[0][1] == "no purchases to date"
    # labels reach describe
    lab = top_reasons(
        np.array([[1.0]]),
        pl.DataFrame({"n_task_created_28d": [2]}),
        ["n_task_created_28d"],
        labels={"task_created": "tasks created"},
        k=3,
    )
    assert lab == [["2 tasks created in the last 28 days"]]
    # no rows
    assert top_reasons(np.zeros((0, 4)), frame.head(0), feats) == []
    with pytest.raises(ValueError):
        top_reasons(shap, frame.head(2), feats)

    rf = reasons_frame(["a", "b", "c"], [["x"], [], ["1", "2", "3", "4"]])
    assert rf.rows() == [("a", "x", None, None), ("b", None, None, None), ("c", "1", "2", "3")]


def test_global_importance_shares():
    shap = np.array([[1.0, -3.0, 0.0], [-1.0, 1.0, 0.0]])
    imp = global_importance(shap, ["a", "b", "c"])
    assert imp.rows() == [("b", 2.0, 2 / 3), ("a", 1.0, 1 / 3), ("c", 0.0, 0.0)]
    empty = global_importance(np.zeros((0, 2)), ["a", "b"])
    assert empty["share"].to_list() == [0.0, 0.0]


def wide_frame(n: int, rng: np.random.Generator) -> tuple[pl.DataFrame, list[str]]:
    """60 features covering every naming pattern, integer-ish values so many repeat (as in real data)."""
    cols: dict[str, object] = {
        "recency_days": rng.integers(0, 60, n),
        "days_since_signup": rng.integers(0, 400, n),
        "days_since_first_seen": rng.integers(0, 400, n),
        "lifetime_active_days": rng.integers(0, 200, n),
        "lifetime_revenue": np.round(rng.exponential(300, n), 2),
        "lifetime_purchases": rng.integers(0, 5, n),
        "days_since_last_purchase": np.where(rng.uniform(size=n) < 0.7, np.nan, rng.integers(0, 90, n)),
        "converted": rng.integers(0, 2, n),
        "goals_lifetime": rng.integers(0, 4, n),
        "channel": rng.choice(["facebook", "google", "direct", "missing"], n),
        "platform": rng.choice(["android", "ios", "web"], n),
        "country": rng.choice(["IN", "US", "DE"], n),
        "city": rng.choice(["Pune", "Delhi", "missing"], n),
        "trend_events_7v21": np.round(rng.gamma(1, 1, n), 2),
    }
    for w in (1, 7, 28, 90):
        cols[f"events_{w}d"] = rng.poisson(w, n)
        cols[f"sessions_{w}d"] = rng.poisson(w / 3, n)
        cols[f"active_days_{w}d"] = rng.integers(0, w + 1, n)
        cols[f"revenue_{w}d"] = np.round(rng.exponential(10 * w, n))
        cols[f"purchases_{w}d"] = rng.poisson(0.1 * w, n)
    for i in range(8):
        cols[f"trend_event_{i}_7v21"] = np.round(rng.gamma(1, 1, n), 1)
        cols[f"n_event_{i}_28d"] = rng.poisson(3, n)
        cols[f"share_event_{i}_28d"] = np.round(rng.uniform(size=n), 2)
    cols["prop_plan"] = rng.choice(["free", "pro", "missing"], n)
    cols["prop_team_size"] = rng.choice(["1", "2-5", "6+"], n)
    frame = pl.DataFrame(cols)
    names = frame.columns[:60]
    return frame.select(names), names


def test_top_reasons_timing_200k_by_60():
    rng = np.random.default_rng(11)
    n = 200_000
    frame, names = wide_frame(n, rng)
    assert len(names) == 60
    shap = rng.normal(size=(n, 60))
    t0 = time.perf_counter()
    reasons = top_reasons(shap, frame, names, k=3)
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = reasons_frame(np.arange(n), reasons)
    elapsed_frame = time.perf_counter() - t1
    print(f"\ntop_reasons: {n:,} rows x 60 features in {elapsed:.2f}s; reasons_frame {elapsed_frame:.2f}s")
    assert len(reasons) == n and all(len(r) == 3 for r in reasons[:1000])
    assert out.height == n
    # spot-check one row against a direct computation
    row = 12345
    key = shap[row]
    top = sorted(range(60), key=lambda j: -key[j])[:3]  # with 60 normal draws, >= 3 are positive
    assert reasons[row] == [describe(names[j], frame[names[j]][row]) for j in top]
