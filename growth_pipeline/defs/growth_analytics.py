"""Growth analytics per customer as of its latest day (marts tables and charts), and the customer report."""

import dagster as dg

from growth_pipeline.defs.features import user_daily
from growth_pipeline.defs.models import MODEL_ASSETS
from growth_pipeline.defs.partitions import ALL_DAYS_OF_CUSTOMER, customer_partitions, png_markdown
from growth_pipeline.defs.resources import GrowthResource, MlflowResource
from growth_pipeline.defs.scoring import user_scores
from growth_pipeline.lib.analytics.marts import ANALYSES
from growth_pipeline.lib.analytics.steps import build_analysis, publish_report, table_markdown
from growth_pipeline.lib.warehouse.connection import MissingInput

GROUP = "analytics"
DESCRIPTIONS = {
    "channels": "Users, paying users and revenue per acquisition channel (`marts.channels`), each event type per "
    "channel as counts and per user (`marts.channel_actions`), and purchases by category and channel "
    "where the customer names a category property (`marts.category_purchases`).",
    "top_users": "The most profitable users: the top N by revenue to date, with channel and share of revenue "
    "(`marts.top_users`; N is customers.yaml `analytics.top_users`).",
    "channel_ltv": "Lifetime value per channel (`marts.channel_ltv`): average order value x repeat purchases per "
    "month x average retention in months, over the channel's paying users (definitions in README).",
    "cohort_retention": "Weekly cohort retention (`marts.cohort_retention`): the share of each sign-up week's users "
    "active in each following complete week.",
    "campaign_lift": "Campaign lift (`marts.campaign_lift`): the cumulative response (first purchase) rate by day "
    "since sign-up of campaign A against campaign B as baseline, and the lift A / B "
    "(customers.yaml `analytics.campaign_a` / `campaign_b`, by default the two biggest channels).",
}


def _analysis_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        partitions_def=customer_partitions,
        group_name=GROUP,
        kinds={"duckdb"},
        deps=[dg.AssetDep(user_daily, partition_mapping=ALL_DAYS_OF_CUSTOMER), "identities"],
        description=DESCRIPTIONS[name] + " As of the customer's latest loaded day; that day's rows are "
        "replaced on every run.",
    )
    def _asset(context: dg.AssetExecutionContext, growth: GrowthResource) -> dg.MaterializeResult:
        try:
            result = build_analysis(growth.warehouses, growth.customer(context.partition_key), name)
        except MissingInput as exc:
            raise dg.Failure(str(exc)) from None
        meta = {"as_of": str(result.as_of), "dagster/row_count": sum(t.height for t in result.tables.values())}
        for table, frame in result.tables.items():
            meta[f"marts.{table}"] = dg.MetadataValue.md(table_markdown(frame))
        for fname, png in result.charts.items():
            meta[fname.removesuffix(".png")] = png_markdown(png, fname)
        if result.notes:
            meta["notes"] = "; ".join(result.notes)
        return dg.MaterializeResult(metadata=meta)

    return _asset


ANALYSIS_ASSETS = [_analysis_asset(n) for n in ANALYSES]


@dg.asset(
    partitions_def=customer_partitions,
    group_name="report",
    kinds={"html"},
    deps=[*ANALYSIS_ASSETS, *MODEL_ASSETS, dg.AssetDep(user_scores, partition_mapping=ALL_DAYS_OF_CUSTOMER)],
)
def customer_report(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
    """The customer's report, a static HTML page at ``GROWTH_HOME/reports/<customer>/index.html`` (charts next to
    it): each champion model's quality (AUC, lift, calibration, in plain words), top drivers, the latest published
    scores (distribution, bands, revenue at risk), channel analytics, LTV per channel and cohorts, with the date
    of the data and of each model. Regenerated after scoring; written atomically."""
    published = publish_report(growth.warehouses, growth.customer(context.partition_key), mlflow.uri(growth.paths))
    content = published.content
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(published.path)),
            "data_as_of": str(content.as_of),
            "scores_day": str(content.scores_day) if content.scores_day else "no scores yet",
            "models": ", ".join(f"{m.name} v{m.version}" for m in content.models) or "no champion yet",
            "charts": len(content.charts),
        }
    )


REPORT_ASSETS = [customer_report]
