"""Scores as plain functions (lib/scoring/scores.py): percentiles, bands, revenue at risk, atomic exports."""

import io
import threading
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.scoring import scores as scoring


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


def test_percentiles_and_bands():
    score = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8])
    pct = scoring.percentiles(score)
    assert pct[3] == 100.0 and pct[0] == 10.0
    assert pct[1] == pct[2] == 60.0  # ties share a percentile
    b = scoring.bands(pct, scoring.Bands(90, 70))
    assert b[3] == "high" and list(b).count("high") == 1
    assert set(b[[8, 9]]) == {"medium"} and b[0] == "low"


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
