"""The growth_pipeline code location: every asset, check, sensor and resource, assembled explicitly."""

from __future__ import annotations

import dagster as dg

from growth_pipeline.defs.customers import customer_registry
from growth_pipeline.defs.ingestion import landed_exports, raw_events
from growth_pipeline.defs.features import user_daily, user_features
from growth_pipeline.defs.models import MODEL_ASSETS
from growth_pipeline.defs.resources import GrowthResource, MixpanelExportResource, MlflowResource
from growth_pipeline.defs.warehouse_tables import event_catalog, identities

ASSETS = [landed_exports, raw_events, identities, event_catalog, user_daily, user_features, *MODEL_ASSETS]

defs = dg.Definitions(
    assets=ASSETS,
    sensors=[customer_registry],
    resources={
        "growth": GrowthResource(),
        "mixpanel": MixpanelExportResource(),
        "mlflow": MlflowResource(),
    },
)
