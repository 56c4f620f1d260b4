"""Where the MLflow store lives and how it is reached (growth_pipeline.lib.models.mlflow_store)."""

from __future__ import annotations

import pytest

from growth_pipeline.config import Paths
from growth_pipeline.lib.models import mlflow_store


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
