"""Jobs, schedules and sensors that run growth_pipeline every day for every customer.

The daily pipeline alternates between (customer, day) and customer-wide assets, and a Dagster job holds assets
of one partitioning only, so a day is four runs, chained by the `daily_pipeline_next_stage` sensor when the
previous one succeeds (a failed stage stops that customer's day, visibly, instead of scoring stale data). The
four jobs and their assets are ``DAILY_JOBS`` in growth_pipeline/pipeline_shape.py: ingest, the customer's
identities, daily activity with scoring and drift, then features, analytics and the report.

Every run carries the tag `growth/customer`, so dagster.yaml's queue runs one run per customer at a time, and
each job a `dagster/max_runtime` sized for one partition (config.RunLimits): run monitoring fails a run that
outlives it, so a stuck run does not hold its customer for ever.
"""

from datetime import UTC, date, datetime

import dagster as dg

from growth_pipeline.config import RunLimits
from growth_pipeline.defs.models import REASON_TAG, SHIFT_START_TAG, TRIGGER_TAG
from growth_pipeline.defs.partitions import customer_day_partitions, customer_partitions
from growth_pipeline.defs.resources import GrowthResource
from growth_pipeline.lib.automation.retraining import DriftSignal, RequestLog, RetrainState, plan, yesterday
from growth_pipeline.pipeline_shape import CUSTOMER_TAG, DAILY_JOBS, MODEL_ASSET_NAMES, model_asset_name, next_daily_job
from growth_pipeline.run_guard import MAX_RUNTIME_TAG, RETRAIN_JOB, run_trains

DAY_TAG = "growth/day"
PIPELINE_TAG = "growth/pipeline"

_PARTITIONS = {"customer_day": customer_day_partitions, "customer": customer_partitions}
_LIMITS = RunLimits.from_env()


def _max_runtime(job: str, partitioning: str) -> dict[str, str]:
    """The job's `dagster/max_runtime` for a run of one partition; a run over a range of days gets more when
    the run queue sizes it (run_guard.CustomerRunCoordinator)."""
    days = 1 if partitioning == "customer_day" else 0
    return {MAX_RUNTIME_TAG: str(_LIMITS.seconds(days=days, trains=run_trains(job, None)))}


daily_ingest_job, customer_refresh_job, daily_scoring_job, customer_outputs_job = (
    dg.define_asset_job(
        j.name,
        selection=list(j.assets),
        partitions_def=_PARTITIONS[j.partitioning],
        description=j.description,
        tags=_max_runtime(j.name, j.partitioning),
    )
    for j in DAILY_JOBS
)
retrain_job = dg.define_asset_job(
    RETRAIN_JOB,
    selection=list(MODEL_ASSET_NAMES),
    partitions_def=customer_partitions,
    tags=_max_runtime(RETRAIN_JOB, "customer"),
    description="Retrain a customer's models (all, or those a run request selects); each new version goes "
    "through the champion/challenger gate.",
)


def _tags(customer: str, day: date | str, **extra: str) -> dict[str, str]:
    return {CUSTOMER_TAG: customer, DAY_TAG: str(day), PIPELINE_TAG: "daily", **extra}


def _registered(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_dynamic_partitions(customer_partitions.name))


@dg.schedule(
    cron_schedule="0 6 * * *",
    job=daily_ingest_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 06:00 UTC: yesterday (in each customer's timezone) for every customer; the "
    "daily_pipeline_next_stage sensor carries each customer's day through scoring and drift.",
)
def daily_refresh(context: dg.ScheduleEvaluationContext, growth: GrowthResource):
    now = context.scheduled_execution_time or datetime.now(UTC)
    known = _registered(context.instance)
    requests, skipped = [], []
    for customer in growth.registry().customers:
        if customer.id not in known:  # the customer_registry sensor has not added it yet
            skipped.append(customer.id)
            continue
        day = yesterday(now, customer.timezone)
        requests.append(
            dg.RunRequest(
                run_key=f"daily:{customer.id}:{day}", partition_key=f"{customer.id}|{day}", tags=_tags(customer.id, day)
            )
        )
    if not requests:
        return dg.SkipReason(f"no registered customer (not yet registered: {', '.join(skipped) or 'none'})")
    if skipped:
        context.log.warning(f"not yet registered as partitions, skipped: {', '.join(skipped)}")
    return requests


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[daily_ingest_job, customer_refresh_job, daily_scoring_job],
    request_jobs=[customer_refresh_job, daily_scoring_job, customer_outputs_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Starts the next stage of a customer's daily pipeline when the previous one "
    "succeeded (runs started by the daily_refresh schedule only).",
)
def daily_pipeline_next_stage(context: dg.RunStatusSensorContext):
    run = context.dagster_run
    if run.tags.get(PIPELINE_TAG) != "daily":
        return dg.SkipReason(f"run {run.run_id} is not part of the daily pipeline")
    nxt = next_daily_job(run.job_name)
    if nxt is None:
        return dg.SkipReason(f"{run.job_name} is the last stage")
    customer, day = run.tags[CUSTOMER_TAG], run.tags[DAY_TAG]
    return dg.RunRequest(
        run_key=f"daily:{customer}:{day}:{nxt.name}",
        job_name=nxt.name,
        partition_key=f"{customer}|{day}" if nxt.partitioning == "customer_day" else customer,
        tags=_tags(customer, day),
    )


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrains a customer's model when model_drift says its world changed (feature or score "
    "drift over the customer's thresholds) or its published scores underperform, once post-drift data can "
    "train and test it (model_drift waits about two label horizons after the shift began); at most one "
    "request per customer, model and shift, and per cooldown (customers.yaml monitoring.cooldown_days, in "
    "days of data), recorded in GROWTH_HOME/state/retrain_requests.json, which the retrain-on-drift command "
    "shares. The retrained model goes through the same champion/challenger gate.",
)
def retrain_on_drift(context: dg.SensorEvaluationContext, growth: GrowthResource):
    state = RetrainState.from_cursor(context.cursor)
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("model_drift"), after_storage_id=state.after_storage_id),
        limit=200,
        ascending=True,
    )
    signals = []
    for record in result.records:
        mat = record.asset_materialization
        keys = customer_day_partitions.get_partition_key_from_str(mat.partition).keys_by_dimension
        retrain = mat.metadata.get("retrain")
        starts = mat.metadata.get("shift_start")
        starts = starts.value if starts is not None else {}
        for customer, models in (retrain.value if retrain is not None else {}).items():
            for model, reason in models.items():
                start = starts.get(customer, {}).get(model)
                signals.append(
                    DriftSignal(
                        customer,
                        model,
                        date.fromisoformat(keys["day"]),
                        reason,
                        record.storage_id,
                        date.fromisoformat(start) if start else None,
                    )
                )
        state.after_storage_id = record.storage_id
    if not signals:
        return dg.SensorResult(skip_reason="no model asked to be retrained", cursor=state.to_cursor())
    registry = growth.registry()
    cooldowns = {c.id: c.monitoring.cooldown_days for c in registry.customers}
    with RequestLog.locked(growth.paths.state_dir) as log:  # shared with the retrain-on-drift command
        decisions = plan(signals, state, cooldowns, log)
    requests = []
    for d in decisions:
        s = d.signal
        if not d.request:
            context.log.info(f"{s.customer}/{s.model}: drift on {s.day} not acted on: {d.why}")
            continue
        context.log.info(
            f"{s.customer}/{s.model}: retraining requested (drift on {s.day}, shift began {s.shift_start}): {s.reason}"
        )
        requests.append(
            dg.RunRequest(
                run_key=f"retrain:{s.customer}:{s.model}:{s.storage_id}",
                partition_key=s.customer,
                asset_selection=[dg.AssetKey(model_asset_name(s.model))],
                tags={
                    CUSTOMER_TAG: s.customer,
                    DAY_TAG: s.day.isoformat(),
                    TRIGGER_TAG: "drift",
                    REASON_TAG: s.reason[:2000],
                    # the model trains on the drift split (post-drift snapshots, the latest test set)
                    **({SHIFT_START_TAG: s.shift_start.isoformat()} if s.shift_start else {}),
                },
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=state.to_cursor())


@dg.schedule(
    cron_schedule="0 3 * * 1",
    job=retrain_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Mondays 03:00 UTC: retrain every customer's models (off by default; drift-triggered "
    "retraining is the normal path). Each new version goes through the champion gate.",
)
def weekly_retrain(context: dg.ScheduleEvaluationContext, growth: GrowthResource):
    known = _registered(context.instance)
    stamp = (context.scheduled_execution_time or datetime.now(UTC)).date().isoformat()
    return [
        dg.RunRequest(
            run_key=f"weekly:{c.id}:{stamp}",
            partition_key=c.id,
            tags={CUSTOMER_TAG: c.id, TRIGGER_TAG: "weekly_schedule"},
        )
        for c in growth.registry().customers
        if c.id in known
    ]
