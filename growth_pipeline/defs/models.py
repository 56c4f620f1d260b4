"""Models: churn, conversion, a custom goal and lifetime value per customer; CatBoost, linear and buy-till-you-die
candidates, the best honest one serving, tracked in MLflow, promoted to champion only when better."""

import math

import dagster as dg

from growth_pipeline.defs.features import user_features
from growth_pipeline.defs.partitions import customer_partitions, png_markdown
from growth_pipeline.defs.resources import GrowthResource, MlflowResource
from growth_pipeline.lib.demo.oracle import truth_oracle
from growth_pipeline.lib.features.user_features import read_customer_activity
from growth_pipeline.lib.models import tracking
from growth_pipeline.lib.models.candidates import describe_family
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.metrics import classifier_metrics, paired_bootstrap_win_rate, regression_metrics
from growth_pipeline.lib.models.model_report import candidates_table, interval_text
from growth_pipeline.lib.models.promotion import decide
from growth_pipeline.lib.models.training import NotEnoughData, train_model
from growth_pipeline.lib.scoring.explain import global_importance
from growth_pipeline.pipeline_shape import MODEL_NAMES, model_asset_name

GROUP = "models"
TRIGGER_TAG = "growth/trigger"  # drift | weekly_schedule | manual (set by sensors and schedules)
REASON_TAG = "growth/retrain_reason"
DESCRIPTIONS = {
    "churn": "Churn risk: among users active in the last 28 days, the probability of no activity in the next "
    "14 days (or of the customer's churn event, if configured).",
    "conversion": "Conversion: among recent sign-ups not yet converted, the probability of a conversion event in "
    "the next 30 days.",
    "goal": "Custom goal: among active users who have not reached it, the probability of the customer's goal "
    "event (e.g. 'Project Created') in the next 14 days.",
    "ltv": "Predicted lifetime value: revenue of each active user in the next 90 days.",
}
SHOWN = {
    "classifier": ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift", "lift_quality"),
    "ltv": ("normalized_gini", "spearman", "rmse", "mae", "decile_mape", "total_ratio"),
}


def _reasons_table(reasons, kind: str, n: int = 10) -> str:
    """The test-set users with the highest scores and their top reasons, as markdown."""
    if reasons is None or reasons.is_empty():
        return "(none)"
    fmt = (lambda v: f"{v:.1%}") if kind == "classifier" else (lambda v: f"{v:,.0f}")
    rows = [
        f"| {r['user_key']} | {fmt(r['score'])} | {r['reason_1']} | {r['reason_2']} | {r['reason_3']} |"
        for r in reasons.head(n).iter_rows(named=True)
    ]
    return "| user | score | reason 1 | reason 2 | reason 3 |\n|---|---:|---|---|---|\n" + "\n".join(rows)


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
        spec = label_specs(customer).get(name)
        if spec is None:
            return dg.MaterializeResult(
                metadata={"outcome": "disabled"},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="beats_baselines", passed=True, metadata={"outcome": "model disabled"}
                    )
                ],
            )
        with growth.warehouse(customer.id, read_only=True) as con:
            act = read_customer_activity(con, customer)
        settings = customer.models
        try:
            tm = train_model(
                act,
                spec,
                customer.id,
                thread_count=growth.model_threads,
                step_days=settings.snapshot_step_days,
                max_train=settings.max_train_snapshots,
                search=settings.hyperparameter_search,
                search_trials=settings.search_trials,
                oracle=truth_oracle(customer.source_path(growth.paths) / "truth.parquet"),
                log=context.log.info,
            )
        except NotEnoughData as exc:
            context.log.warning(f"{customer.id}/{name}: not enough data: {exc}")
            tracking.log_not_enough_data(
                mlflow.uri(growth.paths),
                mlflow.artifacts(growth.paths),
                customer.id,
                name,
                str(exc),
                dagster_run_id=context.run_id,
            )
            return dg.MaterializeResult(
                metadata={"outcome": "not enough data", "reason": str(exc)},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="beats_baselines",
                        passed=False,
                        severity=dg.AssetCheckSeverity.WARN,
                        metadata={"outcome": "not enough data", "reason": str(exc)},
                    )
                ],
            )
        uri = mlflow.uri(growth.paths)
        registered = tracking.registered_model_name(customer.id, name)
        champion = tracking.load_model(uri, registered, "champion")
        if champion is not None:  # the champion, scored on the same test set as the challenger
            y = tm.test_frame["label"].to_numpy()
            scored = champion.predict(tm.test_frame)
            m = classifier_metrics(y, scored) if tm.kind == "classifier" else regression_metrics(y, scored)
            tm.metrics.update({f"champion.{k}": v for k, v in m.items()})
            tm.metrics["champion.new_win_rate"] = paired_bootstrap_win_rate(
                y, tm.test_predictions["model"], scored, tm.kind
            )
        # Why this training happened (a drift sensor's or schedule's run tags), carried into MLflow.
        trigger = {"trigger": context.run.tags.get(TRIGGER_TAG, "manual")}
        if context.run.tags.get(REASON_TAG):
            trigger["trigger.reason"] = context.run.tags[REASON_TAG]
        logged = tracking.log_training_run(
            tm,
            tracking_uri=uri,
            artifact_root=mlflow.artifacts(growth.paths),
            dagster_run_id=context.run_id,
            code_version=growth.code_version,
            partition=customer.id,
            extra_tags=trigger,
        )
        if tm.reasons is not None:
            tracking.log_table_csv(uri, logged.run_id, tm.reasons, "reasons_test_set.csv")
        decision = decide(tm.kind, tm.metrics, has_champion=champion is not None)
        tracking.record_decision(uri, logged, decision)
        context.log.info(f"{customer.id}/{name}: v{logged.version} {decision.outcome}: {decision.reason}")
        shown = {}
        for who in (
            "model",
            "catboost",
            "logistic",
            "linear",
            "btyd",
            "historical_average",
            "rule",
            "champion",
            "oracle",
            "oracle_traits",
            "oracle_observed",
        ):
            for k in SHOWN[tm.kind]:
                for key in (f"{who}.{k}", f"{who}.{k}_lo90", f"{who}.{k}_hi90"):
                    value = tm.metrics.get(key)
                    if value is not None and not math.isnan(value):
                        shown[key] = round(value, 4)
        importance = global_importance(tm.shap_values, tm.feature_names).head(10)
        return dg.MaterializeResult(
            metadata={
                "outcome": decision.outcome,
                "decision": decision.reason,
                "family": f"{tm.family}: {describe_family(tm.family, tm.kind)}",
                "candidates": dg.MetadataValue.md(candidates_table(tm.metrics, tm.kind, tm.family)),
                "trigger": " - ".join(trigger.values()),
                "mlflow_run": dg.MetadataValue.url(logged.run_url),
                "registered_model": f"{logged.registered_name} v{logged.version}",
                "test_as_of": str(tm.split.test),
                "rows": dg.MetadataValue.json(tm.rows),
                "metrics": dg.MetadataValue.json(shown),
                f"{tm.primary_metric}": round(tm.metrics[f"model.{tm.primary_metric}"], 4),
                f"{tm.primary_metric}_90pct_interval": interval_text(tm.metrics, "model", tm.primary_metric),
                "top_drivers": dg.MetadataValue.md(
                    "| feature | mean abs contribution |\n|---|---:|\n"
                    + "\n".join(
                        f"| {f} | {v:.4f} |" for f, v in importance.select("feature", "mean_abs_shap").iter_rows()
                    )
                ),
                "highest_scores_with_reasons": dg.MetadataValue.md(_reasons_table(tm.reasons, tm.kind)),
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

    return _model


MODEL_ASSETS = [_model_asset(n) for n in MODEL_NAMES]
