"""MLflow tracking and registry (growth_pipeline.lib.models: mlflow_store, run_logging, model_artifacts,
registry) and the promotion rule (growth_pipeline.lib.models.promotion).

Real SQLite MLflow stores in tmp_path and real (small) CatBoost models; nothing may land in the working directory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor, Pool
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from growth_pipeline.config import Paths
from growth_pipeline.lib.analytics import charts
from growth_pipeline.lib.models import mlflow_store, model_artifacts, registry, run_logging
from growth_pipeline.lib.models.calibration import Calibrator
from growth_pipeline.lib.models.model_types import SplitDates, TrainedModel, model_input
from growth_pipeline.lib.models.promotion import Decision, decide

SECRET = "zz-secret-zz"
FEATURES = ["sessions_7d", "days_active_28d", "plan", "revenue_28d"]
CATS = ["plan"]
SPLIT = SplitDates(
    train=(date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15)), valid=date(2024, 2, 1), test=date(2024, 3, 1)
)


def _frame(rng: np.random.Generator, n: int, offset: int) -> pl.DataFrame:
    sessions = rng.poisson(5, n).astype(float)
    days = rng.integers(0, 29, n).astype(float)
    plan = rng.choice(["free", "pro", "team"], n)
    revenue = np.where(rng.uniform(size=n) < 0.3, rng.lognormal(3, 1, n), 0.0)
    z = -2.0 + 0.25 * sessions + 0.08 * days + np.where(plan == "pro", 1.0, 0.0)
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    ltv = np.where(rng.uniform(size=n) < 0.4, revenue * 0.8 + sessions * 3, 0.0)
    return pl.DataFrame(
        {
            "user_key": [f"u{offset + i}" for i in range(n)],
            "label": label,
            "ltv": ltv,
            "sessions_7d": sessions,
            "days_active_28d": days,
            "plan": plan,
            "revenue_28d": revenue,
        }
    )


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(7)
    return {"train": _frame(rng, 600, 0), "valid": _frame(rng, 200, 1000), "test": _frame(rng, 200, 2000)}


def _x(frame: pl.DataFrame):
    return model_input(frame, FEATURES, CATS).to_pandas()


def _chart(y, p) -> bytes:
    return charts.gains_and_lift_chart(y, {"model": p}, "gains")


@pytest.fixture(scope="module")
def clf_tm(data) -> TrainedModel:
    tr, va, te = data["train"], data["valid"], data["test"]
    model = CatBoostClassifier(
        iterations=50,
        depth=4,
        thread_count=2,
        allow_writing_files=False,
        verbose=False,
        random_seed=0,
        cat_features=CATS,
    )
    model.fit(_x(tr), tr["label"].to_numpy())
    cal = Calibrator("platt").fit(model.predict_proba(_x(va))[:, 1], va["label"].to_numpy())
    test_frame = te.select("user_key", "label", *FEATURES)
    p = cal.transform(model.predict_proba(_x(te))[:, 1])
    shap_values = model.get_feature_importance(Pool(_x(te), cat_features=CATS), type="ShapValues")[:, :-1]
    y = te["label"].to_numpy()
    return TrainedModel(
        customer="acme",
        model_name="conversion",
        kind="classifier",
        model=model,
        feature_names=FEATURES,
        cat_features=CATS,
        calibrator=cal,
        label_definition={"kind": "conversion", "horizon_days": 28, "population": "active_7d"},
        catboost_params=model.get_all_params(),
        split=SPLIT,
        metrics={
            "model.roc_auc": float(roc_auc_score(y, p)),
            "logistic.roc_auc": 0.61,
            "rule.roc_auc": 0.58,
            "model.log_loss": 0.5,
            "oracle.roc_auc": float("nan"),
            "champion.roc_auc": None,
        },
        rows={"train": tr.height, "valid": va.height, "test": te.height, "test_positives": int(y.sum())},
        test_frame=test_frame,
        test_predictions={"model": p},
        importance=pl.DataFrame({"feature": FEATURES, "importance": model.get_feature_importance().tolist()}),
        shap_values=shap_values,
        charts={"gains.png": _chart(y, p), "calibration.png": _chart(y, p)},
        notes=["synthetic data for tests"],
    )


@pytest.fixture(scope="module")
def ltv_tm(data) -> TrainedModel:
    tr, te = data["train"], data["test"]
    model = CatBoostRegressor(
        iterations=50,
        depth=4,
        thread_count=2,
        allow_writing_files=False,
        verbose=False,
        random_seed=0,
        cat_features=CATS,
    )
    model.fit(_x(tr), tr["ltv"].to_numpy())
    return TrainedModel(
        customer="acme",
        model_name="ltv",
        kind="ltv",
        model=model,
        feature_names=FEATURES,
        cat_features=CATS,
        calibrator=None,
        label_definition={"kind": "ltv", "horizon_days": 90},
        catboost_params=model.get_all_params(),
        split=SPLIT,
        metrics={"model.normalized_gini": 0.4, "linear.normalized_gini": 0.3, "model.total_ratio": 1.02},
        rows={"train": tr.height, "test": te.height},
        test_frame=te.select("user_key", pl.col("ltv").alias("label"), *FEATURES),
        importance=None,
        shap_values=None,
        charts={},
    )


@pytest.fixture(scope="session")
def blank_store(tmp_path_factory) -> Path:
    """An empty, migrated MLflow SQLite database: copying it saves each test the ~3 s of schema migrations."""
    db = tmp_path_factory.mktemp("blank-mlflow") / "mlflow.db"
    MlflowClient(f"sqlite:///{db.as_posix()}").search_experiments()
    return db


@pytest.fixture
def store(tmp_path, monkeypatch, blank_store):
    """A fresh SQLite store under tmp_path/home/mlflow, the CWD moved to an empty folder, a secret in the env."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MIXPANEL_SERVICE_ACCOUNT_SECRET", SECRET)
    paths = Paths(tmp_path / "home")
    uri = mlflow_store.tracking_uri(paths)
    shutil.copyfile(blank_store, paths.mlflow_dir / "mlflow.db")
    yield paths, uri, mlflow_store.artifact_root(paths), cwd
    assert sorted(p.name for p in cwd.iterdir()) == [], "something was written to the working directory"


def _log(tm, uri, root, run="dagster-run-1", **kw):
    return run_logging.log_training_run(
        tm, tracking_uri=uri, artifact_root=root, dagster_run_id=run, code_version="abc123", **kw
    )


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for f in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, f.path) if f.is_dir else {f.path}
    return out


# ------------------------------------------------------------------------------------------------- locations


def test_tracking_uri_defaults_to_sqlite_under_mlflow_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    paths = Paths(tmp_path / "home")
    uri = mlflow_store.tracking_uri(paths)
    assert uri == f"sqlite:///{(tmp_path / 'home' / 'mlflow' / 'mlflow.db').as_posix()}"
    assert paths.mlflow_dir.is_dir()
    root = mlflow_store.artifact_root(paths)
    assert root == (paths.mlflow_dir / "artifacts").as_uri() and root.startswith("file:///")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert mlflow_store.tracking_uri(paths) == "http://mlflow.internal:5000"
    assert not mlflow_store.is_local_store("http://mlflow.internal:5000") and mlflow_store.is_local_store(uri)


def test_run_url(monkeypatch):
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    assert mlflow_store.run_url("3", "abc") == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    monkeypatch.setenv("MLFLOW_UI_URL", "https://mlflow.example.com/")
    assert mlflow_store.run_url("3", "abc") == "https://mlflow.example.com/#/experiments/3/runs/abc"


# --------------------------------------------------------------------------------------------------- logging


def test_log_training_run_records_everything(store, clf_tm):
    paths, uri, root, cwd = store
    logged = _log(clf_tm, uri, root, partition="acme")
    assert os.environ.get("MLFLOW_TRACKING_URI") is None, "the process-wide URI leaked out of the call"

    client = MlflowClient(uri, registry_uri=uri)
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == logged.run_name == "acme-conversion-2024-03-01"
    assert logged.run_url == f"http://127.0.0.1:5000/#/experiments/{logged.experiment_id}/runs/{logged.run_id}"
    exp = client.get_experiment(logged.experiment_id)
    assert exp.name == "acme/conversion" and exp.tags["customer"] == "acme" and exp.tags["model"] == "conversion"
    assert exp.artifact_location.startswith(root)

    tags = run.data.tags
    expected = {
        "customer": "acme",
        "model": "conversion",
        "kind": "classifier",
        "dagster_run_id": "dagster-run-1",
        "code_version": "abc123",
        "partition": "acme",
        "primary_metric": "roc_auc",
        "as_of_train_first": "2024-01-01",
        "as_of_train_last": "2024-01-15",
        "as_of_valid": "2024-02-01",
        "as_of_test": "2024-03-01",
    }
    assert {k: tags.get(k) for k in expected} == expected
    assert "acme" in tags["mlflow.note.content"] and "synthetic data for tests" in tags["mlflow.note.content"]

    params = run.data.params
    assert params["catboost.depth"] == "4"
    assert params["catboost.iterations"] == "50"
    assert params["label.horizon_days"] == "28" and params["label.kind"] == "conversion"
    assert params["features.list"] == ",".join(FEATURES) and params["features.count"] == "4"
    assert params["features.categorical"] == "plan"
    assert params["split.train"] == "2024-01-01,2024-01-08,2024-01-15"
    assert params["split.valid"] == "2024-02-01" and params["split.test"] == "2024-03-01"
    assert set(clf_tm.catboost_params) <= {k.removeprefix("catboost.") for k in params if k.startswith("catboost.")}

    metrics = run.data.metrics
    assert metrics["model.roc_auc"] == pytest.approx(clf_tm.metrics["model.roc_auc"])
    assert metrics["logistic.roc_auc"] == 0.61 and metrics["rule.roc_auc"] == 0.58
    assert "oracle.roc_auc" not in metrics and "champion.roc_auc" not in metrics  # NaN / None skipped
    assert metrics["rows.train"] == 600 and metrics["rows.test"] == 200 and "rows.test_positives" in metrics

    arts = _artifacts(client, logged.run_id)
    assert {
        "charts/gains.png",
        "charts/calibration.png",
        "feature_importance.csv",
        "feature_importance.json",
        "shap_summary.png",
        "model_meta.json",
    } <= arts
    local = Path(client.download_artifacts(logged.run_id, "shap_summary.png", str(paths.home / "dl")))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads(
        Path(client.download_artifacts(logged.run_id, "model_meta.json", str(paths.home / "dl"))).read_text()
    )
    assert meta["feature_names"] == FEATURES and meta["cat_features"] == CATS and meta["kind"] == "classifier"
    assert meta["calibrator"] == clf_tm.calibrator.to_dict() and meta["split"] == SPLIT.as_dict()
    imp = pl.read_csv(client.download_artifacts(logged.run_id, "feature_importance.csv", str(paths.home / "dl")))
    assert imp["feature"].to_list() == FEATURES

    assert logged.registered_name == "acme-conversion" and logged.version == "1"
    assert logged.model_uri == "models:/acme-conversion/1"
    mv = client.get_model_version_by_alias("acme-conversion", "challenger")
    assert str(mv.version) == "1" and mv.run_id == logged.run_id
    assert mv.tags["run_id"] == logged.run_id and mv.tags["as_of_test"] == "2024-03-01"

    # artifacts live under <mlflow_dir>/artifacts, the database under <mlflow_dir>
    assert (paths.mlflow_dir / "mlflow.db").is_file()
    assert any((paths.mlflow_dir / "artifacts").rglob("shap_summary.png"))

    # no secret anywhere in the run
    everything = [*params.items(), *tags.items(), *((k, str(v)) for k, v in metrics.items())]
    assert not [kv for kv in everything if SECRET in kv[0] or SECRET in kv[1]]
    assert not [k for k in params if "MIXPANEL" in k.upper() or "SECRET" in k.upper()]


def test_signature_is_typed(store, clf_tm):
    _, uri, root, _ = store
    logged = _log(clf_tm, uri, root)
    from mlflow.models import get_model_info

    with mlflow_store.mlflow_uris(uri):
        info = get_model_info(logged.model_uri)
    inputs = {c["name"]: c["type"] for c in info.signature.inputs.to_dict()}
    assert inputs == {"sessions_7d": "double", "days_active_28d": "double", "plan": "string", "revenue_28d": "double"}
    assert info.signature.outputs is not None


def test_secrets_in_values_are_redacted(store, clf_tm):
    _, uri, root, _ = store
    tm = replace(clf_tm, label_definition={**clf_tm.label_definition, "note": f"token {SECRET} here"})
    logged = _log(tm, uri, root)
    params = MlflowClient(uri).get_run(logged.run_id).data.params
    assert params["label.note"] == "token *** here"


def test_ltv_run_without_shap_or_importance(store, ltv_tm):
    paths, uri, root, _ = store
    logged = _log(ltv_tm, uri, root)
    client = MlflowClient(uri, registry_uri=uri)
    run = client.get_run(logged.run_id)
    arts = _artifacts(client, logged.run_id)
    assert "shap_summary.png" not in arts and "feature_importance.csv" not in arts and "model_meta.json" in arts
    assert run.data.tags["shap_summary"] == "skipped" and "no SHAP values" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["primary_metric"] == "normalized_gini" and "partition" not in run.data.tags
    assert run.data.metrics["model.total_ratio"] == 1.02
    loaded = registry.load_model(uri, "acme-ltv", alias="challenger")
    assert loaded is not None and loaded.calibrator is None and loaded.kind == "ltv"
    np.testing.assert_array_equal(loaded.predict(ltv_tm.test_frame), ltv_tm.predict(ltv_tm.test_frame))


def test_long_feature_list_is_split_into_numbered_params(clf_tm):
    names = [f"feature_with_a_rather_long_name_{i:04d}" for i in range(400)]
    tm = replace(clf_tm, feature_names=names, catboost_params={"depth": 4, "class_names": [0, 1]})
    params = run_logging._params(tm)
    assert "features.list" not in params and params["features.count"] == "400"
    pieces = [params[f"features.list.{i}"] for i in range(1, 10) if f"features.list.{i}" in params]
    assert len(pieces) >= 2 and all(len(p) <= run_logging.MAX_PARAM_VALUE for p in pieces)
    assert ",".join(pieces).split(",") == names
    assert params["catboost.class_names"] == "[0, 1]"


def test_shap_plot_caps_rows_and_falls_back_to_category_codes(clf_tm, monkeypatch):
    import shap

    big = pl.concat([clf_tm.test_frame] * 11)  # 2,200 rows
    tm = replace(clf_tm, test_frame=big, shap_values=np.vstack([clf_tm.shap_values] * 11))
    real, seen = shap.summary_plot, []

    def picky(sv, features, **kw):  # a shap that refuses string columns
        seen.append((sv.shape, list(features.dtypes.astype(str))))
        if any(features[c].dtype == object or str(features[c].dtype) in ("str", "string") for c in CATS):
            raise TypeError("could not convert string to float: 'pro'")
        return real(sv, features, **kw)

    monkeypatch.setattr(shap, "summary_plot", picky)
    png, note = model_artifacts.shap_summary_png(tm)
    assert note is None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert [shape for shape, _ in seen] == [(model_artifacts.SHAP_MAX_ROWS, 4)] * 2
    assert seen[1][1][FEATURES.index("plan")].startswith("int")

    png, note = model_artifacts.shap_summary_png(replace(clf_tm, shap_values=clf_tm.shap_values[:, :2]))
    assert png is None and "shape" in note


def test_failed_logging_marks_the_run_failed(store, clf_tm, monkeypatch):
    import mlflow

    _, uri, root, _ = store

    def boom(tm):
        raise RuntimeError("signature exploded")

    monkeypatch.setattr(model_artifacts, "signature_and_example", boom)
    with pytest.raises(RuntimeError, match="signature exploded"):
        _log(clf_tm, uri, root)
    assert mlflow.active_run() is None
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("acme/conversion")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert registry.load_model(uri, "acme-conversion", alias="challenger") is None


def test_retry_on_locked_database(monkeypatch):
    monkeypatch.setattr(mlflow_store, "LOCK_BACKOFF_SECONDS", 0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert mlflow_store.retry(flaky) == "ok" and len(calls) == 3

    def always_locked():
        calls.append(1)
        raise RuntimeError("database is locked")

    calls.clear()
    with pytest.raises(RuntimeError):
        mlflow_store.retry(always_locked)
    assert len(calls) == mlflow_store.LOCK_RETRIES

    def other():
        calls.append(1)
        raise ValueError("no such table")

    calls.clear()
    with pytest.raises(ValueError):
        mlflow_store.retry(other)
    assert len(calls) == 1


# ------------------------------------------------------------------------------------------ loading, promotion


def test_load_model_predicts_like_the_trained_model(store, clf_tm):
    _, uri, root, _ = store
    logged = _log(clf_tm, uri, root)
    loaded = registry.load_model(uri, "acme-conversion", alias="challenger")
    assert loaded is not None
    assert (loaded.version, loaded.run_id, loaded.kind) == ("1", logged.run_id, "classifier")
    assert loaded.feature_names == FEATURES and loaded.cat_features == CATS
    assert loaded.label_definition == clf_tm.label_definition and loaded.split == SPLIT.as_dict()
    assert loaded.metrics["model.roc_auc"] == pytest.approx(clf_tm.metrics["model.roc_auc"])
    assert loaded.calibrator.to_dict() == clf_tm.calibrator.to_dict()
    np.testing.assert_array_equal(loaded.predict(clf_tm.test_frame), clf_tm.predict(clf_tm.test_frame))
    # a frame without a column and with a null category still scores (model_input fills them)
    partial = clf_tm.test_frame.drop("revenue_28d").with_columns(pl.lit(None, pl.Utf8).alias("plan"))
    assert np.isfinite(loaded.predict(partial)).all()

    assert registry.load_model(uri, "acme-conversion") is None  # no champion yet
    assert registry.load_model(uri, "acme-conversion", alias="nope") is None
    assert registry.load_model(uri, "nobody-conversion", alias="challenger") is None


def test_promotion_aliases_and_tags(store, clf_tm):
    _, uri, root, _ = store
    client = MlflowClient(uri, registry_uri=uri)

    first = _log(clf_tm, uri, root, run="run-1")
    d1 = decide("classifier", clf_tm.metrics, has_champion=False)
    assert d1.promote and d1.champion_value is None
    registry.record_decision(uri, first, d1)
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"
    assert registry.champion_version(uri, "acme-conversion") == "1"
    r1 = client.get_run(first.run_id).data.tags
    assert r1["promotion.decision"] == "promoted" and r1["promotion.champion_version_before"] == "none"
    assert r1["promotion.reason"] == d1.reason

    champ = registry.load_model(uri, "acme-conversion")
    m2 = {
        **clf_tm.metrics,
        "champion.roc_auc": float(
            roc_auc_score(clf_tm.test_frame["label"].to_numpy(), champ.predict(clf_tm.test_frame))
        ),
    }
    second = _log(replace(clf_tm, metrics=m2), uri, root, run="run-2")
    assert second.version == "2"
    d2 = decide("classifier", m2, has_champion=True, champion_version=champ.version)
    assert not d2.promote and d2.beats_baselines and d2.reason.startswith("champion v1 keeps")
    registry.record_decision(uri, second, d2)
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("acme-conversion", "challenger").version) == "2"
    r2 = client.get_run(second.run_id).data
    assert r2.tags["promotion.decision"] == "kept" and r2.tags["promotion.champion_version_before"] == "1"
    assert r2.metrics["champion.roc_auc"] == pytest.approx(m2["champion.roc_auc"])
    v2 = client.get_model_version("acme-conversion", "2").tags
    assert v2["promotion.decision"] == "kept" and v2["promotion.reason"] == d2.reason
    assert client.get_model_version("acme-conversion", "1").tags["promotion.decision"] == "promoted"

    refused = Decision(
        promote=False,
        beats_baselines=False,
        reason="model roc_auc 0.5 does not beat logistic 0.6",
        primary_metric="roc_auc",
        new_value=0.5,
        champion_value=None,
    )
    registry.record_decision(uri, second, refused)
    assert client.get_run(second.run_id).data.tags["promotion.decision"] == "refused"
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"


# ------------------------------------------------------------------------------------------------ the rule

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


def test_why_a_model_has_no_champion_in_words(store, clf_tm):
    _, uri, root, _ = store
    assert registry.why_no_champion(uri, "acme", "conversion") == "no champion: never trained"
    run_id = run_logging.log_not_enough_data(
        uri, root, "acme", "conversion", "conversion: fewer than 10 users who converted in a 30-day window"
    )
    assert registry.why_no_champion(uri, "acme", "conversion") == (
        "no model: not enough data (conversion: fewer than 10 users who converted in a 30-day window)"
    )
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    logged = _log(clf_tm, uri, root)
    registry.record_decision(
        uri,
        logged,
        Decision(
            promote=False,
            beats_baselines=False,
            reason="model roc_auc 0.55 does not beat rule 0.58",
            primary_metric="roc_auc",
            new_value=0.55,
            champion_value=None,
        ),
    )
    assert registry.why_no_champion(uri, "acme", "conversion") == (
        "no champion: no candidate beat the one-feature rule on the test set "
        "(model roc_auc 0.55 does not beat rule 0.58)"
    )


# --------------------------------------------------------------------------------------------- reference scores


def test_reference_scores_come_only_from_the_customers_hook(tmp_path):
    from growth_pipeline.config import REPO_ROOT, customer_like, load_customers
    from growth_pipeline.lib.models.reference_scores import load_hook, reference_oracle

    pp = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "pp", tmp_path)
    assert pp.models.reference_scores is not None  # the demo customers opt in, in customers.yaml
    assert reference_oracle(pp, Paths(tmp_path)) is None  # no truth file in the source folder: no references
    plain = pp.model_copy(update={"models": pp.models.model_copy(update={"reference_scores": None})})
    assert reference_oracle(plain, Paths(tmp_path)) is None
    with pytest.raises(ValueError, match="cannot be imported"):
        load_hook("growth_pipeline.nowhere:oracle")
