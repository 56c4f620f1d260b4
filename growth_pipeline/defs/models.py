"""Models: churn, conversion, a custom goal and lifetime value per customer; CatBoost, linear and buy-till-you-die
candidates, the best honest one serving, tracked in MLflow, promoted to champion only when better."""

from functools import partial

import dagster as dg

from growth_pipeline.defs.features import user_features
from growth_pipeline.defs.partitions import customer_partitions, png_markdown
from growth_pipeline.defs.resources import GrowthResource, MlflowResource
from growth_pipeline.lib.models.candidates import describe_family
from growth_pipeline.lib.models.model_report import (
    candidates_table,
    drivers_table,
    interval_text,
    reasons_table,
    shown_metrics,
)
from growth_pipeline.lib.models.train_step import DISABLED, NOT_ENOUGH_DATA, TrainingResult, train_and_register
from growth_pipeline.lib.scoring.explain import global_importance
from growth_pipeline.pipeline_shape import MODEL_NAMES, model_asset_name

GROUP = "models"
TRIGGER_TAG = "growth/trigger"  # drift | weekly_schedule | manual (set by sensors and schedules)
REASON_TAG = "growth/retrain_reason"
SHIFT_START_TAG = "growth/shift_start"  # a drift retrain: the day the shift began (the model trains on the drift split)
DESCRIPTIONS = {
    "churn": "Churn risk: among users active in the last 28 days, the probability of no activity in the next "
    "14 days (or of the customer's churn event, if configured).",
    "conversion": "Conversion: among recent sign-ups not yet converted, the probability of a conversion event in "
    "the next 30 days.",
    "goal": "Custom goal: among active users who have not reached it, the probability of the customer's goal "
    "event (e.g. 'Project Created') in the next 14 days.",
    "ltv": "Predicted lifetime value: revenue of each active user in the next 90 days.",
}


def _model_asset(name: str) -> dg.AssetsDefinition:
    asset_name = model_asset_name(name)

    @dg.asset(
        name=asset_name,
        partitions_def=customer_partitions,
        group_name=GROUP,
        deps=[user_features],
        kinds={"catboost", "mlflow"},
        description=DESCRIPTIONS[name] + " Candidates (CatBoost, a logistic / ridge regression and, for churn, "
        "ltv and 'buys again', a buy-till-you-die model) are trained on weekly as-of snapshots "
        "(closer together for a short "
        "history), the best on the pooled validation snapshots serves, and every candidate is reported on the "
        "latest matured snapshot with a bootstrap 90% interval; logged to MLflow and registered as <customer>-"
        + name
        + "; the new version becomes champion only if it beats the one-feature rule and, clearly, the "
        "champion. Horizons, populations: customers.yaml `models`.",
        check_specs=[
            dg.AssetCheckSpec(
                "beats_baselines",
                asset=asset_name,
                blocking=True,
                description="The serving candidate beats the one-feature rule on the test "
                "set (ltv: and its total is within 15% of actual).",
            )
        ],
    )
    def _model(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
        customer = growth.customer(context.partition_key)
        result = train_and_register(
            customer,
            name,
            warehouse=partial(growth.warehouse, customer.id, read_only=True),
            paths=growth.paths,
            tracking_uri=mlflow.uri(growth.paths),
            artifact_root=mlflow.artifacts(growth.paths),
            run_id=context.run_id,
            code_version=growth.code_version,
            trigger=_trigger(context.run.tags),
            thread_count=growth.model_threads,
            log=context.log.info,
            warn=context.log.warning,
        )
        return _materialization(result)

    return _model


def _trigger(run_tags) -> dict[str, str]:
    """Why this training happened (a drift sensor's or schedule's run tags), carried into MLflow."""
    trigger = {"trigger": run_tags.get(TRIGGER_TAG, "manual")}
    if run_tags.get(REASON_TAG):
        trigger["trigger.reason"] = run_tags[REASON_TAG]
    if run_tags.get(SHIFT_START_TAG):
        trigger["trigger.shift_start"] = run_tags[SHIFT_START_TAG]
    return trigger


def _materialization(result: TrainingResult) -> dg.MaterializeResult:
    """The asset's metadata and its beats_baselines check: passed for a disabled model, a warning for too little
    data, an error for a model the gate refuses."""
    if result.outcome == DISABLED:
        return dg.MaterializeResult(
            metadata={"outcome": "disabled"},
            check_results=[
                dg.AssetCheckResult(check_name="beats_baselines", passed=True, metadata={"outcome": "model disabled"})
            ],
        )
    if result.outcome == NOT_ENOUGH_DATA:
        return dg.MaterializeResult(
            metadata={"outcome": "not enough data", "reason": result.reason},
            check_results=[
                dg.AssetCheckResult(
                    check_name="beats_baselines",
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"outcome": "not enough data", "reason": result.reason},
                )
            ],
        )
    tm, logged, decision = result.trained, result.logged, result.decision
    return dg.MaterializeResult(
        metadata={
            "outcome": decision.outcome,
            "decision": decision.reason,
            "family": f"{tm.family}: {describe_family(tm.family, tm.kind)}",
            "candidates": dg.MetadataValue.md(candidates_table(tm.metrics, tm.kind, tm.family)),
            "trigger": " - ".join(result.trigger.values()),
            "mlflow_run": dg.MetadataValue.url(logged.run_url),
            "registered_model": f"{logged.registered_name} v{logged.version}",
            "test_as_of": str(tm.split.test),
            "rows": dg.MetadataValue.json(tm.rows),
            "metrics": dg.MetadataValue.json(shown_metrics(tm.metrics, tm.kind)),
            f"{tm.primary_metric}": round(tm.metrics[f"model.{tm.primary_metric}"], 4),
            f"{tm.primary_metric}_90pct_interval": interval_text(tm.metrics, "model", tm.primary_metric),
            "top_drivers": dg.MetadataValue.md(
                drivers_table(global_importance(tm.shap_values, tm.feature_names).head(10))
            ),
            "highest_scores_with_reasons": dg.MetadataValue.md(reasons_table(tm.reasons, tm.kind)),
            "gains_and_lift": png_markdown(tm.charts["gains_and_lift.png"], "gains and lift"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="beats_baselines",
                passed=decision.beats_baselines,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"reason": decision.reason, tm.primary_metric: round(decision.new_value, 4)},
            )
        ],
    )


MODEL_ASSETS = [_model_asset(n) for n in MODEL_NAMES]
