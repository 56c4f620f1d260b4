"""Small real CatBoost models (module-scoped fixtures) and throw-away MLflow stores for the tests of
growth_pipeline.lib.models (mlflow_store, run_logging, model_artifacts, registry); the PostgreSQL deployment test
reuses the classifier. Nothing may land in the working directory.
"""

from __future__ import annotations

import shutil
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
from growth_pipeline.lib.models import mlflow_store, run_logging
from growth_pipeline.lib.models.calibration import Calibrator
from growth_pipeline.lib.models.model_types import SplitDates, TrainedModel, model_input

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


def log_run(tm, uri, root, run="dagster-run-1", **kw):
    return run_logging.log_training_run(
        tm, tracking_uri=uri, artifact_root=root, dagster_run_id=run, code_version="abc123", **kw
    )


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for f in client.list_artifacts(run_id, path):
        out |= artifact_paths(client, run_id, f.path) if f.is_dir else {f.path}
    return out
