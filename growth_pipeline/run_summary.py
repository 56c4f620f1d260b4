"""The table the demo ends with: per customer and model, the family serving (the MLflow champion), its test
metric with the 90% bootstrap interval, the scores published on the last scored day, and the report's path."""

from __future__ import annotations

from dataclasses import dataclass

from growth_pipeline.config import Customer, Paths


@dataclass(frozen=True)
class ModelRow:
    customer: str
    model: str
    serving: str  # "catboost v3", or "none"
    test_metric: str  # "roc_auc 0.812 [0.790, 0.833]" or "-"
    scores: str  # users scored on the last scored day, or "-"
    why_none: str = ""  # why no version serves (the latest training's decision)


def model_rows(customer: Customer, paths: Paths) -> list[ModelRow]:
    """One row per enabled model of the customer, read from the MLflow registry and the customer's warehouse."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from growth_pipeline.lib.models import registry
    from growth_pipeline.lib.models.labels import label_specs
    from growth_pipeline.lib.models.mlflow_store import registered_model_name, tracking_uri
    from growth_pipeline.lib.models.model_report import interval_text

    uri = tracking_uri(paths)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    scored = scores_published(customer, paths)
    rows = []
    for name in label_specs(customer):
        registered = registered_model_name(customer.id, name)
        try:
            mv = client.get_model_version_by_alias(registered, registry.CHAMPION)
        except MlflowException:
            mv = None
        if mv is None:
            rows.append(ModelRow(customer.id, name, "none", "-", "-", registry.why_no_champion(uri, customer.id, name)))
            continue
        run = client.get_run(mv.run_id)
        kind = run.data.tags.get("kind", "classifier")
        metric = "roc_auc" if kind == "classifier" else "normalized_gini"
        rows.append(
            ModelRow(
                customer.id,
                name,
                f"{run.data.tags.get('family', 'catboost')} v{mv.version}",
                f"{metric} {interval_text(dict(run.data.metrics), 'model', metric)}",
                f"{scored[name]:,}" if name in scored else "-",
            )
        )
    return rows


def scores_published(customer: Customer, paths: Paths) -> dict[str, int]:
    """Users scored per model on the customer's last scored day (empty before the first scoring run)."""
    from growth_pipeline.lib.warehouse.connection import open_warehouse
    from growth_pipeline.lib.warehouse.sql import fetch, table_exists

    db = paths.warehouse(customer.id)
    if not db.exists():
        return {}
    with open_warehouse(db, read_only=True) as con:
        if not table_exists(con, "marts.user_scores"):  # not scored yet
            return {}
        rows = fetch(con, "user_scores_counts_latest")
    return {model: int(n) for model, n in rows}


def report_path(customer: Customer, paths: Paths) -> str:
    path = paths.reports(customer.id) / "index.html"
    return str(path) if path.exists() else "(no report yet)"
