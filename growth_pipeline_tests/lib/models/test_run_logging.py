"""A training run logged to a real SQLite MLflow store (growth_pipeline.lib.models.run_logging)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from growth_pipeline.lib.models import model_artifacts, registry, run_logging
from growth_pipeline_tests.lib.models.trained_models import CATS, FEATURES, SECRET, SPLIT, artifact_paths, log_run


def test_log_training_run_records_everything(store, clf_tm):
    paths, uri, root, cwd = store
    logged = log_run(clf_tm, uri, root, partition="acme")
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

    arts = artifact_paths(client, logged.run_id)
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


def test_secrets_in_values_are_redacted(store, clf_tm):
    _, uri, root, _ = store
    tm = replace(clf_tm, label_definition={**clf_tm.label_definition, "note": f"token {SECRET} here"})
    logged = log_run(tm, uri, root)
    params = MlflowClient(uri).get_run(logged.run_id).data.params
    assert params["label.note"] == "token *** here"


def test_ltv_run_without_shap_or_importance(store, ltv_tm):
    paths, uri, root, _ = store
    logged = log_run(ltv_tm, uri, root)
    client = MlflowClient(uri, registry_uri=uri)
    run = client.get_run(logged.run_id)
    arts = artifact_paths(client, logged.run_id)
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


def test_failed_logging_marks_the_run_failed(store, clf_tm, monkeypatch):
    import mlflow

    _, uri, root, _ = store

    def boom(tm):
        raise RuntimeError("signature exploded")

    monkeypatch.setattr(model_artifacts, "signature_and_example", boom)
    with pytest.raises(RuntimeError, match="signature exploded"):
        log_run(clf_tm, uri, root)
    assert mlflow.active_run() is None
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("acme/conversion")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert registry.load_model(uri, "acme-conversion", alias="challenger") is None
