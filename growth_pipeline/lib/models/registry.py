"""The model registry: loading the version behind an alias with its metadata, and promotion. Promotion uses
registry **aliases** (stages are deprecated): every new version gets ``challenger`` when it is logged
(:mod:`~growth_pipeline.lib.models.run_logging`); :func:`record_decision` moves ``champion`` when the rule of
:mod:`growth_pipeline.lib.models.promotion` says so. No Dagster import."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from growth_pipeline.lib.models import candidates
from growth_pipeline.lib.models.mlflow_store import MAX_TAG_VALUE, experiment_name, mlflow_client, retry
from growth_pipeline.lib.models.model_artifacts import load_estimator, load_reference

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from growth_pipeline.lib.models.promotion import Decision
    from growth_pipeline.lib.models.run_logging import LoggedRun

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class LoadedModel:
    registered_name: str
    version: str
    run_id: str
    kind: str
    model: Any  # native catboost model
    feature_names: list[str]
    cat_features: list[str]
    calibrator: Any | None
    label_definition: dict[str, Any]
    metrics: dict[str, float]
    split: dict[str, Any]
    importance_share: dict[str, float] | None = None  # feature -> share of mean |SHAP| on the test set
    tracking_uri: str = ""
    family: str = "catboost"  # catboost | logistic | linear | btyd

    def reference(self) -> pl.DataFrame | None:
        """The drift reference logged with this version (model inputs + ``__score__``), or None for versions
        logged before references existed."""
        return load_reference(self.tracking_uri, self.run_id)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability (classifiers) or predicted value (ltv), as ``TrainedModel.predict``."""
        return candidates.predict(
            self.family, self.kind, self.model, self.feature_names, self.cat_features, self.calibrator, frame
        )

    def contributions(self, frame: pl.DataFrame, thread_count: int = 2) -> np.ndarray:
        """Rows x feature_names: what pushes each row's score up (see candidates.contributions)."""
        return candidates.contributions(
            self.family, self.kind, self.model, self.feature_names, self.cat_features, frame, thread_count=thread_count
        )


def alias_version(client: MlflowClient, registered_name: str, alias: str) -> Any | None:
    """The model version behind ``alias``, or None when the registered model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return retry(client.get_model_version_by_alias, registered_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_model(tracking_uri: str, registered_name: str, alias: str = CHAMPION) -> LoadedModel | None:
    """The model version behind ``registered_name@alias`` with its metadata; None if there is none."""
    from growth_pipeline.lib.models.calibration import Calibrator

    client = mlflow_client(tracking_uri)
    mv = alias_version(client, registered_name, alias)
    if mv is None:
        return None
    run = retry(client.get_run, mv.run_id)
    with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
        meta_path = retry(client.download_artifacts, mv.run_id, "model_meta.json", tmp)
        meta = json.loads(Path(meta_path).read_text())
    family = meta.get("family", "catboost")  # versions logged before other families existed are CatBoost
    model = load_estimator(tracking_uri, f"models:/{registered_name}/{mv.version}", family, meta.get("estimator"))
    cal = meta.get("calibrator")
    return LoadedModel(
        registered_name=registered_name,
        version=str(mv.version),
        run_id=mv.run_id,
        kind=meta["kind"],
        model=model,
        feature_names=list(meta["feature_names"]),
        cat_features=list(meta["cat_features"]),
        calibrator=Calibrator.from_dict(cal) if cal else None,
        label_definition=meta.get("label_definition") or {},
        metrics=dict(run.data.metrics),
        split=meta.get("split") or {},
        importance_share=dict(meta.get("importance_share") or {}),
        tracking_uri=tracking_uri,
        family=family,
    )


def version_metrics(tracking_uri: str, registered_name: str, version: str) -> dict[str, float]:
    """The test metrics of the run behind one registered version (what it promised when it was trained)."""
    client = mlflow_client(tracking_uri)
    mv = retry(client.get_model_version, registered_name, str(version))
    return dict(retry(client.get_run, mv.run_id).data.metrics)


def champion_version(tracking_uri: str, registered_name: str) -> str | None:
    """The version the ``champion`` alias points at, or None."""
    mv = alias_version(mlflow_client(tracking_uri), registered_name, CHAMPION)
    return str(mv.version) if mv is not None else None


def record_decision(tracking_uri: str, logged: LoggedRun, decision: Decision) -> None:
    """Move ``champion`` to the new version if ``decision.promote``; tag run and version with the decision."""
    client = mlflow_client(tracking_uri)
    mv_before = alias_version(client, logged.registered_name, CHAMPION)
    before = str(mv_before.version) if mv_before is not None else "none"
    if decision.promote:
        retry(client.set_registered_model_alias, logged.registered_name, CHAMPION, logged.version)
    outcome = "promoted" if decision.promote else ("kept" if decision.beats_baselines else "refused")
    tags = {
        "promotion.decision": outcome,
        "promotion.reason": decision.reason[:MAX_TAG_VALUE],
        "promotion.champion_version_before": before,
    }
    for k, v in tags.items():
        retry(client.set_tag, logged.run_id, k, v)
        retry(client.set_model_version_tag, logged.registered_name, logged.version, k, v)


def why_no_champion(tracking_uri: str, customer: str, model_name: str) -> str:
    """In words, why a model has no champion: the latest training run's decision and reason."""
    client = mlflow_client(tracking_uri)
    exp = retry(client.get_experiment_by_name, experiment_name(customer, model_name))
    runs = (
        retry(client.search_runs, [exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if exp is not None
        else []
    )
    if not runs:
        return "no champion: never trained"
    tags = runs[0].data.tags
    decision, reason = tags.get("promotion.decision", ""), tags.get("promotion.reason", "")
    if decision == "not enough data":
        return f"no model: not enough data ({reason})"
    if decision == "refused":
        return f"no champion: no candidate beat the one-feature rule on the test set ({reason})"
    return f"no champion yet (latest training: {decision or 'unfinished'}{'; ' + reason if reason else ''})"
