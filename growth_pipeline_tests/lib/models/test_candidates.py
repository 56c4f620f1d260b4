"""Every candidate family end to end on a small generated customer in a real DuckDB warehouse: trained, logged and
registered in a real MLflow store, loaded back, scoring users with reasons in words, and monitored for drift."""

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.models import mlflow_store, registry, run_logging
from growth_pipeline.lib.models.candidates import contributions, fit_linear
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.model_types import model_input
from growth_pipeline.lib.models.training import model_features, train_model
from growth_pipeline.lib.scoring import drift
from growth_pipeline.lib.scoring.scores import score_model
from growth_pipeline_tests.warehouse_builder import demo_activity

START = date(2026, 1, 1)
DAYS = 200


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    customer, act = demo_activity(root, "pp", n_users=700, start=START, days=DAYS, seed=5)
    return customer, act, root


@pytest.mark.parametrize(
    "model_name,family",
    [
        ("churn", "catboost"),
        ("churn", "logistic"),
        ("churn", "btyd"),
        ("ltv", "linear"),
        ("ltv", "btyd"),
        ("buys_again", "btyd"),
    ],
)
def test_family_trains_registers_loads_scores_with_reasons_and_is_monitored(warehouse, model_name, family):
    customer, act, root = warehouse
    if model_name == "buys_again":  # conversion among earlier buyers: "buys again within 30 days"
        model_name = "conversion"
        spec = replace(label_specs(customer)["conversion"], population="repeat_buyers", active_days=60)
    else:
        spec = label_specs(customer)[model_name]
    if model_name == "ltv":  # 200 days leave no room for the default 90-day horizon's training and test
        spec = replace(spec, horizon_days=45)
    tm = train_model(act, spec, "pp", families=(family,), log=lambda m: None)
    assert tm.family == family
    assert np.isfinite(tm.metrics[f"model.{tm.primary_metric}"])
    lo, hi = tm.metrics[f"model.{tm.primary_metric}_lo90"], tm.metrics[f"model.{tm.primary_metric}_hi90"]
    assert lo <= tm.metrics[f"model.{tm.primary_metric}"] <= hi

    uri = f"sqlite:///{(root / f'mlflow-{model_name}-{family}.db').as_posix()}"
    logged = run_logging.log_training_run(
        tm, tracking_uri=uri, artifact_root=(root / "artifacts").as_uri(), dagster_run_id="test", code_version="test"
    )
    loaded = registry.load_model(uri, logged.registered_name, registry.CHALLENGER)
    assert loaded.family == family
    np.testing.assert_allclose(loaded.predict(tm.test_frame), tm.test_predictions["model"], rtol=1e-9, atol=1e-12)
    # the registered version is a loadable MLflow model in its family's flavour, not only for our own loader
    import mlflow.pyfunc

    with mlflow_store.mlflow_uris(uri):
        pyfunc = mlflow.pyfunc.load_model(logged.model_uri)
    x = model_input(tm.test_frame.head(20), tm.feature_names, tm.cat_features).to_pandas()
    out = np.asarray(pyfunc.predict(x), dtype=np.float64).ravel()
    assert out.shape == (20,) and np.isfinite(out).all()
    if family == "btyd":  # its pyfunc gives the uncalibrated score itself
        np.testing.assert_allclose(out, loaded.model.predict(pl.from_pandas(x)), rtol=1e-12)
    run = mlflow_store.mlflow_client(uri).get_run(logged.run_id)
    assert run.data.tags["family"] == family and run.data.params["family"] == family

    day = act.last_day
    frame = model_features(act, day, spec)
    scores = score_model(model_name, loaded, frame, spec, day, labels=act.labels)
    assert scores.height > 50
    assert set(scores["model_family"]) == {family}
    assert scores["reason_1"].null_count() == 0 and scores["reason_3"].null_count() == 0
    assert not scores["reason_1"].str.contains("=").any(), "every reason is in words, not name = value"
    if family == "btyd":
        # a buy-till-you-die model reads recency, frequency and age only, and says so
        words = " ".join(scores["reason_1"].to_list())
        assert any(w in words for w in ("no activity for", "last purchase", "active on", "bought", "first"))

    # drift monitoring on the model's own test population: nothing drifted, importance shares add up
    reference = loaded.reference()
    assert reference is not None
    pop = model_features(act, tm.split.test, spec).join(tm.test_frame.select("user_key"), on="user_key")
    rep = drift.drift_report(
        model_name,
        reference,
        model_input(pop, loaded.feature_names, loaded.cat_features),
        loaded.predict(pop),
        loaded.feature_names,
        loaded.cat_features,
        loaded.importance_share,
        drift.Thresholds(),
    )
    assert rep.verdict in ("ok", "too few rows"), rep.reasons  # 149 earlier buyers: too few for a verdict
    assert not rep.features["drifted"].any()
    assert sum(loaded.importance_share.values()) == pytest.approx(1.0)


def test_linear_contributions_add_up_to_the_log_odds_against_the_average_user():
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 800
    x = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.2, np.nan, rng.exponential(3, n)),
            "c": rng.choice(["u", "v", "w"], n),
        }
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-(x["a"] + (x["c"] == "u"))))).astype(int).to_numpy()
    m = fit_linear("classifier", ["a", "b", "c"], ["c"], x, y)
    frame = pl.from_pandas(x)
    c = contributions("logistic", "classifier", m, ["a", "b", "c"], ["c"], frame)
    logit = m.pipeline.decision_function(x)
    # the contributions of a row add up to its log-odds minus those of the training mean
    z_mean = m.reference
    base = float(m.pipeline.named_steps["model"].intercept_[0] + z_mean @ m.coef)
    np.testing.assert_allclose(c.sum(axis=1), logit - base, atol=1e-9)
    # the feature that drives the label carries the largest contributions
    assert np.abs(c).mean(axis=0).argmax() in (0, 2)


def test_short_history_trains_on_closer_snapshots_with_users_weighted_equally(warehouse):
    customer, act, root = warehouse
    spec = label_specs(customer)["churn"]
    short = replace(act, daily=act.daily.filter(pl.col("day") < START + timedelta(days=100)), btyd_fits={})
    tm = train_model(short, spec, "pp", families=("logistic",), log=lambda m: None)
    assert tm.split.step_days < 7 and tm.weights
    assert len(tm.split.train) >= 8
    # no label window of training or validation reaches past the test date, as with weekly snapshots
    assert max(tm.split.valid_all) + timedelta(days=spec.horizon_days) <= tm.split.test
