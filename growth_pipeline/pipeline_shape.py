"""The pipeline's shape, written once: its stages in dependency order, the assets of each, the model names, and
the four jobs of the daily pipeline. The CLI, the jobs, schedules and sensors (defs/automation.py) and the
tests read it from here. No Dagster import: lib/ and the CLI read it too.

growth_pipeline_tests/test_pipeline_shape.py checks it against the Definitions: every asset in exactly one
stage, and no asset depending on a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The models every customer can have (customers.yaml `models:` enables or tunes each); one asset per model.
MODEL_NAMES = ("churn", "conversion", "goal", "ltv")


def model_asset_name(model: str) -> str:
    """The asset (and Dagster step) of one model, e.g. ``churn`` -> ``churn_model``."""
    return f"{model}_model"


MODEL_ASSET_NAMES = tuple(model_asset_name(m) for m in MODEL_NAMES)
ANALYSIS_ASSET_NAMES = ("channels", "top_users", "channel_ltv", "cohort_retention", "campaign_lift")
SCORING_ASSET_NAMES = ("user_scores", "model_drift")

# Every run of the CLI, the schedules and the sensors carries it: dagster.yaml queues one run per customer.
CUSTOMER_TAG = "growth/customer"
# A (customer, day) asset materialized over a range of days in one run: Dagster's run tags for the range
# (the public names of dagster's ASSET_PARTITION_RANGE_START_TAG / _END_TAG).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

Partitioning = Literal["customer_day", "customer"]


@dataclass(frozen=True)
class Stage:
    """Assets built together, in one run per customer. ``customer_day`` stages run over a range of days
    (scoring over the last days of it only), ``customer`` stages once per customer."""

    name: str
    partitioning: Partitioning
    assets: tuple[str, ...]
    scores: bool = False  # runs over the last days of a range only (the CLI's --score-days)


INGEST = Stage("ingest", "customer_day", ("landed_exports", "raw_events"))
IDENTITIES = Stage("identities", "customer", ("identities", "event_catalog"))
ACTIVITY = Stage("activity", "customer_day", ("user_daily",))
MODELS = Stage("models", "customer", ("user_features", *MODEL_ASSET_NAMES))
SCORING = Stage("scoring", "customer_day", SCORING_ASSET_NAMES, scores=True)
OUTPUTS = Stage("outputs", "customer", (*ANALYSIS_ASSET_NAMES, "customer_report"))

# In dependency order: a stage reads only the assets of earlier stages (and of itself).
STAGES = (INGEST, IDENTITIES, ACTIVITY, MODELS, SCORING, OUTPUTS)
ALL_ASSETS = tuple(a for stage in STAGES for a in stage.assets)
# What loading a customer's days is: the stages up to daily activity (tests and benchmarks build on it).
LOAD_STAGES = (INGEST, IDENTITIES, ACTIVITY)


@dataclass(frozen=True)
class DailyJob:
    """One run of a customer's day in the daily pipeline (the daily_refresh schedule starts the first, the
    daily_pipeline_next_stage sensor each next one). Models are not retrained daily: the retrain job does that."""

    name: str
    partitioning: Partitioning
    assets: tuple[str, ...]
    description: str


DAILY_JOBS = (
    DailyJob(
        "daily_ingest",
        "customer_day",
        INGEST.assets,
        "A customer's day: download (Mixpanel API customers) and load the raw events.",
    ),
    DailyJob(
        "customer_refresh",
        "customer",
        IDENTITIES.assets,
        "A customer's identities and event catalogue after new raw events.",
    ),
    DailyJob(
        "daily_scoring",
        "customer_day",
        (*ACTIVITY.assets, *SCORING.assets),
        "A customer's day: daily activity, scores by the champion models, drift and realised performance.",
    ),
    DailyJob(
        "customer_outputs",
        "customer",
        ("user_features", *OUTPUTS.assets),
        "A customer's feature snapshot, growth analytics and report after the day's scores.",
    ),
)


def next_daily_job(job_name: str) -> DailyJob | None:
    """The job that follows ``job_name`` in a customer's day, None after the last (or for another job)."""
    names = [j.name for j in DAILY_JOBS]
    if job_name not in names or job_name == names[-1]:
        return None
    return DAILY_JOBS[names.index(job_name) + 1]
