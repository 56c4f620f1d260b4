"""The growth_pipeline code location: every asset, check, sensor and resource, assembled explicitly."""

from __future__ import annotations

import dagster as dg

from growth_pipeline.defs.automation import (
    customer_outputs_job,
    customer_refresh_job,
    daily_ingest_job,
    daily_pipeline_next_stage,
    daily_refresh,
    daily_scoring_job,
    retrain_job,
    retrain_on_drift,
    weekly_retrain,
)
from growth_pipeline.defs.customers import customer_registry
from growth_pipeline.defs.features import user_daily, user_features
from growth_pipeline.defs.growth_analytics import ANALYSIS_ASSETS, REPORT_ASSETS
from growth_pipeline.defs.ingestion import landed_exports, raw_events
from growth_pipeline.defs.models import MODEL_ASSETS
from growth_pipeline.defs.resources import GrowthResource, MixpanelExportResource, MlflowResource
from growth_pipeline.defs.scoring import SCORING_ASSETS
from growth_pipeline.defs.warehouse_tables import event_catalog, identities

ASSETS = [
    landed_exports,
    raw_events,
    identities,
    event_catalog,
    user_daily,
    user_features,
    *MODEL_ASSETS,
    *SCORING_ASSETS,
    *ANALYSIS_ASSETS,
    *REPORT_ASSETS,
]

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[daily_ingest_job, customer_refresh_job, daily_scoring_job, customer_outputs_job, retrain_job],
    schedules=[daily_refresh, weekly_retrain],
    sensors=[customer_registry, daily_pipeline_next_stage, retrain_on_drift],
    resources={
        "growth": GrowthResource(),
        "mixpanel": MixpanelExportResource(),
        "mlflow": MlflowResource(),
    },
)
