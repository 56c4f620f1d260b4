"""The time split, the bounded hyperparameter search and user weights (lib/models/training.py)."""

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from growth_pipeline.lib.features.user_features import read_customer_activity
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline_tests.warehouse_builder import load_days

START = date(2026, 1, 1)


def test_bounded_hyperparameter_search_and_time_split(small_customer):
    from growth_pipeline.lib.models.split import split_dates
    from growth_pipeline.lib.models.training import train_model

    customer, paths, root = small_customer
    with duckdb.connect(str(root / "s.duckdb")) as con:
        load_days(con, customer, paths, START, START + timedelta(days=119))
        act = read_customer_activity(con, customer)
    spec = label_specs(customer)["churn"]
    split = split_dates(act.first_day, act.last_day, spec)
    # no training or validation label window reaches past the test as-of date
    assert max(split.train) + timedelta(days=spec.horizon_days) <= split.test
    assert max(split.valid_all) + timedelta(days=spec.horizon_days) <= split.test
    assert split.test + timedelta(days=spec.horizon_days) == act.last_day
    tm = train_model(act, spec, "pp", search=True, search_trials=2, log=lambda m: None)
    assert any("hyperparameter search over 2 candidates" in n for n in tm.notes)
    assert tm.catboost_params["thread_count"] == 2 and tm.catboost_params["allow_writing_files"] is False
    assert 0.5 < tm.metrics["model.roc_auc"] <= 1.0


def test_search_keeps_the_candidate_with_the_lowest_validation_log_loss():
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss

    from growth_pipeline.lib.models.candidates import fit_catboost
    from growth_pipeline.lib.models.training import _search, catboost_params

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200), "c": rng.choice(["u", "v"], 1200)})
    y = (rng.random(1200) < 1 / (1 + np.exp(-(1.5 * x["a"] - x["b"] ** 2 + (x["c"] == "u"))))).astype(int).to_numpy()
    data = (x[:900], y[:900], x[900:], y[900:])
    chosen, tried = _search("classifier", 2, 4, 0, data, ["c"])
    losses = []
    for cand in tried:
        params = {k: v for k, v in cand.items() if k != "score"}
        model = fit_catboost("classifier", catboost_params("classifier", 2, 0, **params), *data, ["c"])
        losses.append(log_loss(data[3], model.predict_proba(data[2])[:, 1]))
        assert cand["score"] == pytest.approx(-losses[-1], rel=1e-4)  # scores are negated validation losses
    best = tried[int(np.argmin(losses))]
    assert chosen == {k: v for k, v in best.items() if k != "score"}


def test_user_weights_give_every_user_the_same_total_weight():
    from growth_pipeline.lib.models.split import user_weights

    frame = pl.DataFrame({"user_key": ["a", "a", "a", "b", "c", "c"]})
    w = user_weights(frame)
    totals = pl.DataFrame({"user_key": frame["user_key"], "w": w}).group_by("user_key").agg(pl.col("w").sum())
    assert totals["w"].to_list() == pytest.approx([2.0] * 3)  # mean 1 over 6 rows: 6 / 3 users each
    assert w.mean() == pytest.approx(1.0)
