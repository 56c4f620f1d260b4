"""Logging one training to MLflow: the run (tags, parameters, metrics, description, charts, importance, SHAP plot,
drift reference, ``model_meta.json``), the model registered as a new version with the ``challenger`` alias, and
the runs of trainings that stopped at "not enough data". No Dagster import.

One MLflow experiment per customer and model (``<customer>/<model_name>``), one run per training, one registered
model per customer and model (``<customer>-<model_name>``); :mod:`~growth_pipeline.lib.models.registry` moves
``champion`` when the promotion rule says so.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from growth_pipeline.lib.models import candidates, model_artifacts
from growth_pipeline.lib.models.mlflow_store import (
    MAX_TAG_VALUE,
    ensure_experiment,
    is_local_store,
    mlflow_client,
    mlflow_uris,
    redact,
    registered_model_name,
    retry,
    run_url,
    secret_values,
    valid_key,
)
from growth_pipeline.lib.models.model_types import TrainedModel
from growth_pipeline.lib.models.registry import CHALLENGER

log = logging.getLogger(__name__)

MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict), default=str)
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _chunks(value: str, limit: int, sep: str | None = None) -> list[str]:
    """Split ``value`` into pieces of at most ``limit`` characters, at ``sep`` boundaries when possible."""
    if len(value) <= limit:
        return [value]
    if sep:
        out, cur = [], ""
        for part in value.split(sep):
            cand = part if not cur else cur + sep + part
            if len(cand) <= limit:
                cur = cand
                continue
            if cur:
                out.append(cur)
            while len(part) > limit:  # a single item longer than the limit: hard split
                out.append(part[:limit])
                part = part[limit:]
            cur = part
        if cur:
            out.append(cur)
        return out
    return [value[i : i + limit] for i in range(0, len(value), limit)]


def _put_param(params: dict[str, str], key: str, value: Any, sep: str | None = None) -> None:
    """``params[key] = value``, or ``key.1``, ``key.2``, ... when the value is longer than MLflow allows."""
    text = _stringify(value)
    pieces = _chunks(text, MAX_PARAM_VALUE, sep)
    if len(pieces) == 1:
        params[valid_key(key)] = pieces[0]
    else:
        for i, piece in enumerate(pieces, start=1):
            params[valid_key(f"{key}.{i}")] = piece


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    run_name: str
    run_url: str
    model_uri: str  # models:/<registered_name>/<version>
    registered_name: str
    version: str


def _run_name(tm: TrainedModel) -> str:
    return f"{tm.customer}-{tm.model_name}-{tm.split.test.isoformat()}"


def _params(tm: TrainedModel) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in sorted((tm.catboost_params or {}).items()):
        _put_param(params, f"catboost.{name}", value)
    for name, value in sorted((tm.family_params or {}).items()):
        _put_param(params, f"{tm.family}.{name}", value)
    for name, value in sorted((tm.label_definition or {}).items()):
        _put_param(params, f"label.{name}", value)
    params["family"] = tm.family
    params["training.user_weights"] = str(tm.weights).lower()
    for name, value in sorted((tm.weighting or {}).items()):
        if not _is_number(value):  # the numbers are metrics (_metrics)
            params[f"training.weights.{name}"] = str(value).lower() if isinstance(value, bool) else _stringify(value)
    if tm.split.shift_start is not None:
        params["split.shift_start"] = tm.split.shift_start.isoformat()
    params["features.count"] = str(len(tm.feature_names))
    _put_param(params, "features.list", ",".join(tm.feature_names), sep=",")
    _put_param(params, "features.categorical", ",".join(tm.cat_features), sep=",")
    split = tm.split.as_dict()
    _put_param(params, "split.train", ",".join(split["train"]), sep=",")
    params["split.valid"] = split["valid"]
    _put_param(params, "split.valid_all", ",".join(split["valid_all"]), sep=",")
    params["split.test"] = split["test"]
    params["split.step_days"] = str(split["step_days"])
    return params


def _metrics(tm: TrainedModel) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (tm.metrics or {}).items():
        if value is None or not _is_number(value) or math.isnan(float(value)):
            continue
        out[name] = float(value)
    for name, value in (tm.weighting or {}).items():
        if _is_number(value):
            out[f"training.weights.{name}"] = float(value)
    for split, n in (tm.rows or {}).items():
        if n is not None and _is_number(n):
            out[f"rows.{split}"] = float(n)
    return out


def _description(tm: TrainedModel, extra_notes: list[str]) -> str:
    primary = tm.primary_metric
    val = tm.metrics.get(f"model.{primary}") if tm.metrics else None
    val_txt = f"{val:.4f}" if _is_number(val) and not math.isnan(float(val)) else "n/a"
    train = [d.isoformat() for d in tm.split.train]
    train_txt = f"{train[0]} to {train[-1]} ({len(train)} snapshots)" if train else "no snapshots"
    label = ", ".join(f"{k}={_stringify(v)}" for k, v in sorted((tm.label_definition or {}).items()))
    rows = ", ".join(f"{k} {v}" for k, v in (tm.rows or {}).items())
    text = (
        f"{candidates.describe_family(tm.family, tm.kind)} serving '{tm.model_name}' for customer "
        f"'{tm.customer}' on {len(tm.feature_names)} features "
        f"({len(tm.cat_features)} categorical); label: {label or 'n/a'}. Trained on as-of dates {train_txt}, "
        f"validated on {tm.split.valid.isoformat()}, tested on {tm.split.test.isoformat()}; rows: {rows or 'n/a'}. "
        f"Test {primary} of the model: {val_txt}; every candidate (catboost, logistic/linear, btyd), the rule "
        f"and historical-average baselines and the champion are in this run's metrics, with 90% intervals."
    )
    notes = [*(tm.notes or []), *extra_notes]
    if notes:
        text += " Notes: " + " ".join(n.rstrip(".") + "." for n in notes)
    return text


def log_training_run(
    tm: TrainedModel,
    *,
    tracking_uri: str,
    artifact_root: str | None,
    dagster_run_id: str,
    code_version: str,
    partition: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Log ``tm`` as one MLflow run, register its model as a new version with alias ``challenger``.

    ``extra_tags`` (e.g. why the run was started: ``trigger=drift``, the drift reason) are added to the run.

    The run ends FINISHED, or FAILED when anything raises (the exception propagates).
    """
    import mlflow
    import mlflow.catboost

    if artifact_root and not is_local_store(tracking_uri):
        log.info(
            "tracking server %s decides artifact locations; ignoring artifact_root %s", tracking_uri, artifact_root
        )
        artifact_root = None
    client = mlflow_client(tracking_uri)
    exp_id = ensure_experiment(client, tm.customer, tm.model_name, artifact_root)
    name = _run_name(tm)
    reg_name = registered_model_name(tm.customer, tm.model_name)
    secrets = secret_values()

    shap_png, shap_note = model_artifacts.shap_summary_png(tm)
    extra_notes = [shap_note] if shap_note else []
    train_dates = sorted(tm.split.train)
    tags = {
        "customer": tm.customer,
        "model": tm.model_name,
        "kind": tm.kind,
        "as_of_train_first": train_dates[0].isoformat() if train_dates else "",
        "as_of_train_last": train_dates[-1].isoformat() if train_dates else "",
        "as_of_valid": tm.split.valid.isoformat(),
        "as_of_test": tm.split.test.isoformat(),
        "dagster_run_id": dagster_run_id,
        "code_version": code_version,
        "primary_metric": tm.primary_metric,
        "family": tm.family,
        "mlflow.note.content": _description(tm, extra_notes)[:MAX_TAG_VALUE],
    }
    if partition is not None:
        tags["partition"] = partition
    tags.update(extra_tags or {})
    if shap_note:
        tags["shap_summary"] = "skipped"
    tags = {k: redact(str(v), secrets) for k, v in tags.items()}
    params = {k: redact(v, secrets) for k, v in _params(tm).items()}
    metrics = _metrics(tm)

    with mlflow_uris(tracking_uri):
        run = retry(mlflow.start_run, experiment_id=exp_id, run_name=name, tags=tags)
        with run:  # ends the run: FINISHED, or FAILED on an exception
            run_id = run.info.run_id
            from mlflow.entities import Metric, Param

            now = int(time.time() * 1000)
            retry(
                client.log_batch,
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )

            with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
                tmpdir = Path(tmp)
                if tm.charts:
                    charts = tmpdir / "charts"
                    charts.mkdir()
                    for fname, data in tm.charts.items():
                        (charts / Path(fname).name).write_bytes(data)
                    mlflow.log_artifacts(str(charts), artifact_path="charts")
                if tm.importance is not None:
                    csv = tmpdir / "feature_importance.csv"
                    tm.importance.write_csv(csv)
                    mlflow.log_artifact(str(csv))
                    retry(mlflow.log_table, data=tm.importance.to_pandas(), artifact_file="feature_importance.json")
                if shap_png is not None:
                    png = tmpdir / "shap_summary.png"
                    png.write_bytes(shap_png)
                    mlflow.log_artifact(str(png))
                ref = tmpdir / model_artifacts.REFERENCE_ARTIFACT
                model_artifacts.drift_reference(tm).write_parquet(ref)
                mlflow.log_artifact(str(ref))
            meta = {
                "feature_names": list(tm.feature_names),
                "cat_features": list(tm.cat_features),
                "kind": tm.kind,
                "model_name": tm.model_name,
                "customer": tm.customer,
                "label_definition": tm.label_definition,
                "split": tm.split.as_dict(),
                "calibrator": tm.calibrator.to_dict() if tm.calibrator is not None else None,
                "importance_share": model_artifacts.importance_share(tm),
                "family": tm.family,
                "estimator": model_artifacts.estimator_meta(tm),
            }
            mlflow.log_dict(json.loads(json.dumps(meta, default=str)), "model_meta.json")

            signature, example = model_artifacts.signature_and_example(tm)
            info = model_artifacts.log_estimator(tm, signature, example)
            # Registered separately from log_model (same effect as registered_model_name=...), so that a
            # "database is locked" retry re-registers without logging the model a second time.
            mv = retry(
                mlflow.register_model,
                info.model_uri,
                reg_name,
                tags={
                    "run_id": run_id,
                    "as_of_test": tm.split.test.isoformat(),
                    "customer": tm.customer,
                    "model": tm.model_name,
                },
            )
            version = str(mv.version)
            retry(client.set_registered_model_alias, reg_name, CHALLENGER, version)
            retry(client.set_tag, run_id, "registered_model", f"{reg_name}/{version}")

    return LoggedRun(
        run_id=run_id,
        experiment_id=exp_id,
        run_name=name,
        run_url=run_url(exp_id, run_id),
        model_uri=f"models:/{reg_name}/{version}",
        registered_name=reg_name,
        version=version,
    )


def tag_run(tracking_uri: str, run_id: str, tags: dict[str, str]) -> None:
    client = mlflow_client(tracking_uri)
    for k, v in tags.items():
        retry(client.set_tag, run_id, valid_key(k), str(v)[:MAX_TAG_VALUE])


def log_table_csv(tracking_uri: str, run_id: str, frame: pl.DataFrame, artifact_file: str) -> None:
    """Attach a table to an existing run as CSV (e.g. the test set's scores with their reasons)."""
    retry(mlflow_client(tracking_uri).log_text, run_id, frame.write_csv(), artifact_file)


def log_not_enough_data(
    tracking_uri: str,
    artifact_root: str | None,
    customer: str,
    model_name: str,
    reason: str,
    *,
    dagster_run_id: str = "",
    extra_tags: dict[str, str] | None = None,
) -> str:
    """Record a training that stopped at "not enough data" as a run of its own (no model), so the MLflow UI and
    the report can say why a model has no champion. Returns the run id."""
    if artifact_root and not is_local_store(tracking_uri):
        artifact_root = None
    client = mlflow_client(tracking_uri)
    exp_id = ensure_experiment(client, customer, model_name, artifact_root)
    tags = {
        "customer": customer,
        "model": model_name,
        "dagster_run_id": dagster_run_id,
        "promotion.decision": "not enough data",
        "promotion.reason": reason[:MAX_TAG_VALUE],
        "mlflow.note.content": f"Not trained: {reason}"[:MAX_TAG_VALUE],
        **(extra_tags or {}),
    }
    secrets = secret_values()
    run = retry(
        client.create_run,
        exp_id,
        run_name=f"{customer}-{model_name}-not-enough-data",
        tags={k: redact(str(v), secrets) for k, v in tags.items()},
    )
    retry(client.set_terminated, run.info.run_id, "FINISHED")
    return run.info.run_id
