"""Running the pipeline's assets in this process, as the ``growth-pipeline`` command does: the Dagster home in
``GROWTH_HOME/dagster`` and its one-time initialisation (under a lock), the tags every run carries, and a
customer's date range materialized as one run. The CLI's commands (growth_pipeline/cli.py) are built on it.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TextIO

from growth_pipeline import cli_output
from growth_pipeline.config import REPO_ROOT, CustomerRegistry, Paths, load_customers
from growth_pipeline.pipeline_shape import (
    ALL_ASSETS,
    CUSTOMER_TAG,
    MODEL_ASSET_NAMES,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    STAGES,
)

SCORE_DAYS = 15  # scored days at the end of a range: enough for the 14-day models' realised performance

INIT_LOCK_WAIT_S = 600.0


def prepare_dagster_home(paths: Paths) -> Path:
    """Point DAGSTER_HOME at GROWTH_HOME/dagster holding the repository's dagster.yaml (Dagster reads it only
    from DAGSTER_HOME). ``GROWTH_DAGSTER_YAML`` names another instance file to copy instead, e.g.
    ``deploy/postgres/dagster.yaml`` for an instance stored in PostgreSQL. The copy is atomic: a process reading
    the file never sees half of it."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    raw = os.environ.get("GROWTH_DAGSTER_YAML", "").strip()
    src = Path(raw).expanduser().resolve() if raw else REPO_ROOT / "dagster.yaml"
    if not src.is_file():
        raise SystemExit(f"GROWTH_DAGSTER_YAML: {src}: no such file")
    dst = home / "dagster.yaml"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        tmp = dst.with_name(f".dagster.yaml.{os.getpid()}")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class Initialised:
    instance: object  # dg.DagsterInstance (Dagster is imported lazily)
    new_customers: list[str]
    mlflow_created: bool
    failed_runs: list  # runs of dead CLI processes marked failed


def init_home(paths: Paths, registry: CustomerRegistry | None = None) -> Initialised:
    """Make GROWTH_HOME ready, once, whatever else starts at the same time: under a file lock
    (``GROWTH_HOME/init.lock``), the Dagster instance's storage (runs, event log, schedules), the customers as
    Dagster partitions, the local MLflow store and the warehouse folder. Concurrent first commands on an empty
    GROWTH_HOME otherwise race on the databases' creation and migrations. Then marks failed the runs of CLI
    processes that are gone (run_guard.fail_orphaned_runs), freeing their customers' queue slots."""
    import dagster as dg
    from filelock import FileLock, Timeout

    from growth_pipeline.lib.models.mlflow_store import mlflow_client, tracking_uri
    from growth_pipeline.run_guard import fail_orphaned_runs

    with warnings.catch_warnings():  # Dagster's BetaWarnings on import: nothing a user can act on
        warnings.simplefilter("ignore")
        from growth_pipeline.defs.partitions import customer_partitions

    registry = registry or load_customers()
    paths.home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.home / "init.lock"))
    try:
        lock.acquire(timeout=INIT_LOCK_WAIT_S)
    except Timeout:
        raise SystemExit(
            f"{paths.home / 'init.lock'}: another growth-pipeline command has been initialising GROWTH_HOME for "
            f"{INIT_LOCK_WAIT_S:.0f} s; is it stuck?"
        ) from None
    try:
        prepare_dagster_home(paths)
        instance = dg.DagsterInstance.get()
        # Touch every storage so that each is created (and migrated) here, under the lock.
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_dynamic_partitions(customer_partitions.name)
        new = register_customers(instance, registry.ids)
        uri = tracking_uri(paths)
        created = False
        if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
            mlflow_client(uri).search_experiments(max_results=1)  # creates the store's tables
            created = True
        paths.warehouse_dir.mkdir(parents=True, exist_ok=True)
        failed = fail_orphaned_runs(instance)
    finally:
        lock.release()
    return Initialised(instance, new, created, failed)


def dagster_instance(paths: Paths, registry: CustomerRegistry | None = None, out: TextIO | None = None):
    """The Dagster instance of GROWTH_HOME, initialised (init_home); names on ``out`` the runs of dead CLI
    processes it marked failed."""
    done = init_home(paths, registry)
    for run in done.failed_runs:
        (out or sys.stdout).write(
            f"marked failed: run {run.run_id} of {run.tags.get(CUSTOMER_TAG, '?')} (its process is gone)\n"
        )
    return done.instance


def register_customers(instance, customer_ids: list[str]) -> list[str]:
    from growth_pipeline.defs.partitions import customer_partitions

    known = set(instance.get_dynamic_partitions(customer_partitions.name))
    new = [c for c in customer_ids if c not in known]
    if new:
        instance.add_dynamic_partitions(customer_partitions.name, new)
    return new


def run_tags(customer: str, *, days: int = 0, trains: bool = False, **extra: str) -> dict[str, str]:
    """Tags of a run this process executes: its customer, its maximum runtime (config.RunLimits) and this
    process (run_guard.launcher_tags), so that the next command can tell when the process is gone."""
    from growth_pipeline.config import RunLimits
    from growth_pipeline.run_guard import MAX_RUNTIME_TAG, launcher_tags

    seconds = RunLimits.from_env().seconds(days=days, trains=trains)
    return {CUSTOMER_TAG: customer, MAX_RUNTIME_TAG: str(seconds), **launcher_tags(), **extra}


def materialize_range(
    instance,
    customer: str,
    start: date,
    end: date,
    select: list[str] | None = None,
    score_days: int = SCORE_DAYS,
    train: bool = True,
    out: TextIO | None = None,
) -> bool:
    """Materialize the selected assets of one customer for days start..end (inclusive), stage by stage in
    dependency order (pipeline_shape.STAGES): each day stage is one run over the whole range, each customer
    stage one run, scoring and drift one run over the last ``score_days`` days. ``train=False`` leaves the
    models as they are (daily operation: the drift sensor decides when to retrain). Prints one line per stage
    to ``out`` (stdout by default). Returns True when every run succeeded."""
    import dagster as dg

    from growth_pipeline.definitions import defs

    out = out or sys.stdout
    assets = list(defs.assets)
    wanted = select or list(ALL_ASSETS)
    unknown = sorted(set(wanted) - set(ALL_ASSETS))
    if unknown:
        raise SystemExit(f"unknown asset(s): {', '.join(unknown)}; choose from {', '.join(ALL_ASSETS)}")
    if not train:
        wanted = [a for a in wanted if a not in MODEL_ASSET_NAMES]
    for stage in STAGES:
        if stage.scores and score_days <= 0:
            continue
        selected = [a for a in stage.assets if a in wanted]
        if not selected:
            continue
        if stage.partitioning == "customer_day":
            first = max(start, end - timedelta(days=score_days - 1)) if stage.scores else start
            days = (end - first).days + 1
            kw = {
                "tags": run_tags(
                    customer,
                    days=days,
                    **{PARTITION_RANGE_START_TAG: f"{customer}|{first}", PARTITION_RANGE_END_TAG: f"{customer}|{end}"},
                )
            }
            what = f"{first}..{end} ({days} day{'s' if days > 1 else ''})"
        else:
            trains = any(a in MODEL_ASSET_NAMES for a in selected)
            kw = {"tags": run_tags(customer, trains=trains), "partition_key": customer}
            what = "all days"
        label = f"{customer:<10} {stage.name:<10}"
        since = datetime.now(UTC)
        with cli_output.StageProgress(
            out, label, len(selected), poll=partial(_steps_done, instance, customer, since)
        ) as progress:
            result = dg.materialize(
                assets, selection=selected, instance=instance, resources=defs.resources, raise_on_error=False, **kw
            )
            refused = gate_refusals(result)
            ok = result.success or bool(refused) and refused == failed_steps(result)
            status = (
                "" if ok else f"; FAILED: {', '.join(sorted(failed_steps(result) - refused))} (run {result.run_id})"
            )
            progress.finish(f"{what}: {cli_output.stage_counts(result, selected)}{status}")
        for line in cli_output.stage_details(result, selected):
            out.write(f"{'':<22}{line}\n")
        if not ok:
            return False
    return True


def _steps_done(instance, customer: str, since: datetime) -> int:
    """Steps finished so far in the customer's latest run started after ``since`` (for the progress line)."""
    import dagster as dg

    runs = instance.get_runs(filters=dg.RunsFilter(tags={CUSTOMER_TAG: customer}, created_after=since), limit=1)
    if not runs:
        return 0
    done = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    return len(instance.get_records_for_run(runs[0].run_id, of_type=done, limit=1000).records)


def failed_steps(result) -> set[str]:
    return {e.step_key for e in result.all_events if e.is_step_failure}


def gate_refusals(result) -> set[str]:
    """Model steps that failed only because their blocking beats_baselines check refused the new version: the
    champion/challenger gate doing its job, not an error of the run."""
    return {
        e.step_key
        for e in result.all_events
        if e.is_step_failure
        and e.step_key in MODEL_ASSET_NAMES
        and e.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"
    }
