"""Daily operation: every customer's users scored with the champion models and published, and the models
watched for drift and for how their published scores turned out."""

import dagster as dg

from growth_pipeline.defs.features import user_daily
from growth_pipeline.defs.models import MODEL_ASSETS
from growth_pipeline.defs.partitions import (
    ALL_DAYS_OF_CUSTOMER,
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource, MlflowResource
from growth_pipeline.lib.scoring.steps import check_drift, score_users
from growth_pipeline.lib.warehouse.connection import MissingInput

GROUP = "scoring"


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    kinds={"catboost", "duckdb", "parquet"},
    deps=[user_daily, *(dg.AssetDep(m, partition_mapping=ALL_DAYS_OF_CUSTOMER) for m in MODEL_ASSETS)],
)
def user_scores(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
    """The day's scores of every user in each model's population, by the champion models (``marts.user_scores``):
    calibrated probability (ltv: predicted revenue over its horizon), percentile within the customer, band
    (high / medium / low, customers.yaml `scoring`), the top 3 reasons in words, the model name and version, and
    revenue at risk (probability of churn x predicted ltv). Published atomically as
    ``GROWTH_HOME/exports/<customer>/user_scores_<day>.parquet`` and ``.csv`` (and ``user_scores_latest.*``).
    A day is replaced, never appended: re-running it gives the same rows."""
    scored = score_users(
        growth.warehouses,
        growth.registry(),
        group_by_customer(customer_days(context)),
        mlflow.uri(growth.paths),
        thread_count=growth.model_threads,
        warn=context.log.warning,
    )
    last = scored.last
    return dg.MaterializeResult(
        metadata={
            "unscored_models": dg.MetadataValue.json(scored.unscored),
            "champions": dg.MetadataValue.json(scored.champions),
            "day": str(last.day),
            "days": len(scored.days),
            "dagster/row_count": scored.rows,
            "users_scored": last.users_scored,
            "revenue_at_risk": last.revenue_at_risk,
            "export_parquet": dg.MetadataValue.path(str(last.files["parquet"])),
            "export_csv": dg.MetadataValue.path(str(last.files["csv"])),
            "per_model": dg.MetadataValue.md(last.per_model_markdown()),
            "highest_churn_risk": dg.MetadataValue.md(last.top_markdown("churn")),
        }
    )


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    kinds={"duckdb", "mlflow"},
    deps=[user_scores],
)
def model_drift(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
    """How each champion model's world compares with the one it was trained in (``marts.model_drift``, per
    feature ``marts.feature_drift``): population stability index and a KS / chi-square test per feature between
    the champion's reference (its test population, logged to MLflow) and the day's scoring population; drift
    of the scores themselves; and realised performance: once the label window of an earlier scoring day has
    matured, the AUC (ltv: normalized Gini and total against actual) of the scores published that day against
    what happened. Thresholds: customers.yaml `monitoring`. The metadata `retrain` lists the models the
    `retrain_on_drift` sensor should retrain, with the reasons; `shift_start` when each drifting model's shift
    began; `retrain_pending` the drifting models that wait for post-drift labels ("retrain pending until <day>")."""
    try:
        checked = check_drift(
            growth.warehouses, growth.registry(), group_by_customer(customer_days(context)), mlflow.uri(growth.paths)
        )
    except MissingInput as exc:
        raise dg.Failure(str(exc)) from None
    return dg.MaterializeResult(
        metadata={
            "retrain": dg.MetadataValue.json(checked.retrain),
            "shift_start": dg.MetadataValue.json(checked.shift_start),
            "retrain_pending": dg.MetadataValue.json(checked.pending),
            "models_to_retrain": checked.models_to_retrain,
            "dagster/row_count": checked.rows,
            "verdicts": dg.MetadataValue.md(checked.verdict_table()),
        }
    )


SCORING_ASSETS = [user_scores, model_drift]
