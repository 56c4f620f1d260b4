"""Runs never hang a customer (docs/operations.md, "When a run dies").

* Every run of a customer carries ``growth/customer`` (the tag dagster.yaml's queue limits to one run per customer)
  and ``dagster/max_runtime`` sized by what it does (config.RunLimits): run monitoring cancels and fails a run
  that outlives it, so a stuck run frees its customer's queue slot.
* :class:`CustomerRunCoordinator` is dagster.yaml's run queue: Dagster's QueuedRunCoordinator that adds both tags
  at submit time to whatever it is handed (the UI's Materialize button, backfills, schedules, sensors), from the
  run's partition tags, before the run is queued.
* A run executed in the CLI's own process (``dg.materialize``) has no run worker Dagster could watch: it carries
  the process's host, pid and start time (:func:`launcher_tags`), and :func:`fail_orphaned_runs`, called by every
  CLI command at start-up and by the coordinator before it queues a customer's run, marks such a run failed when
  its process is gone (killed, crashed, the machine rebooted).

Imported by the Dagster webserver and daemon (through dagster.yaml): keep it light (no Definitions import).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import dagster as dg

from growth_pipeline.config import RunLimits
from growth_pipeline.pipeline_shape import (
    ALL_ASSETS,
    CUSTOMER_TAG,
    DAILY_JOBS,
    MODEL_ASSET_NAMES,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)

MAX_RUNTIME_TAG = dg.MAX_RUNTIME_SECONDS_TAG  # "dagster/max_runtime", seconds
HOST_TAG = "growth/host"
PID_TAG = "growth/pid"
PID_START_TAG = "growth/pid_start"  # the process's start time (Linux clock ticks): a reused pid is not our run

PARTITION_TAG = "dagster/partition"
CUSTOMER_PARTITION_TAG = "dagster/partition/customer"
DAY_PARTITION_TAG = "dagster/partition/day"

# Assets of the jobs in defs/automation.py (a run of a whole job has no asset selection of its own).
RETRAIN_JOB = "retrain"
JOB_ASSETS: dict[str, tuple[str, ...]] = {j.name: j.assets for j in DAILY_JOBS} | {RETRAIN_JOB: MODEL_ASSET_NAMES}
_ACTIVE = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


# ------------------------------------------------------------------------------------------------ run sizes


def run_customer(tags: Mapping[str, str]) -> str | None:
    """The customer a run belongs to, from its tags: ``growth/customer``, else its partition tags (a (customer,
    day) key is ``customer|day``: the customer dimension sorts first)."""
    for key in (CUSTOMER_TAG, CUSTOMER_PARTITION_TAG, PARTITION_TAG, PARTITION_RANGE_START_TAG):
        value = tags.get(key)
        if value:
            return value.split("|", 1)[0]
    return None


def run_days(tags: Mapping[str, str]) -> int:
    """How many days of (customer, day) partitions a run covers: its range, one day, or 0 (customer-wide)."""
    start, end = tags.get(PARTITION_RANGE_START_TAG), tags.get(PARTITION_RANGE_END_TAG)
    if start and end and "|" in start and "|" in end:
        try:
            first, last = (date.fromisoformat(v.rsplit("|", 1)[1]) for v in (start, end))
        except ValueError:
            return 1
        return max((last - first).days + 1, 1)
    return 1 if tags.get(DAY_PARTITION_TAG) else 0


def run_trains(job_name: str, asset_names: Iterable[str] | None) -> bool:
    """Whether a run builds a model: its asset selection, else its job's assets; unknown means yes (the
    generous budget)."""
    names = set(asset_names) if asset_names is not None else set(JOB_ASSETS.get(job_name, ALL_ASSETS))
    return bool(names & set(MODEL_ASSET_NAMES))


def sized_tags(
    tags: Mapping[str, str], job_name: str, asset_names: Iterable[str] | None, limits: RunLimits | None = None
) -> dict[str, str]:
    """The tags a run lacks: ``growth/customer`` from its partition, and ``dagster/max_runtime`` raised to the
    run's size when it has less (a job's tag is sized for one day; a backfill of 300 days in one run needs
    more). A larger value set by hand is kept."""
    limits = limits or RunLimits.from_env()
    extra: dict[str, str] = {}
    customer = run_customer(tags)
    if customer and not tags.get(CUSTOMER_TAG):
        extra[CUSTOMER_TAG] = customer
    size = limits.seconds(days=run_days(tags), trains=run_trains(job_name, asset_names))
    try:
        current = float(tags.get(MAX_RUNTIME_TAG) or 0)
    except ValueError:
        current = 0.0
    if size > current:
        extra[MAX_RUNTIME_TAG] = str(size)
    return extra


# ---------------------------------------------------------------------------------------- in-process runs


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None without /proc or the pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def launcher_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming the process a run executes in: its host, pid and (on Linux) start time."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    stat = _proc_stat(pid)
    if stat and len(stat) > 19:
        tags[PID_START_TAG] = stat[19]
    return tags


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` of this host is still the one that started the run (a zombie is gone; a pid
    reused by a later process is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc (macOS): the pid exists, trust it
    if stat[0] in ("Z", "X"):
        return False
    return not (start and len(stat) > 19 and stat[19] != start)


def fail_orphaned_runs(instance: dg.DagsterInstance, customer: str | None = None) -> list[dg.DagsterRun]:
    """Mark failed the unfinished runs executed in a process of this host that no longer exists (of one
    customer, or all); they would otherwise stay STARTED for ever and hold their customer's queue slot. Runs
    recorded on another host are left to run monitoring (their ``dagster/max_runtime``). Returns the runs
    marked failed."""
    host = socket.gethostname()
    tags = {HOST_TAG: host, **({CUSTOMER_TAG: customer} if customer else {})}
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(_ACTIVE), tags=tags)):
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid), run.tags.get(PID_START_TAG)):
            continue
        fresh = instance.get_run_by_id(run.run_id)  # it may have finished just before its process exited
        if fresh is None or fresh.is_finished:
            continue
        instance.report_run_failed(
            fresh,
            f"The process that executed this run (pid {pid} on {host}) is gone (killed or crashed): marked failed "
            f"by pid {os.getpid()} so that customer {run.tags.get(CUSTOMER_TAG, '?')!r} can run again.",
        )
        failed.append(fresh)
    return failed


# ------------------------------------------------------------------------------------------------ the queue


class CustomerRunCoordinator(dg.QueuedRunCoordinator):
    """dagster.yaml's run queue: Dagster's QueuedRunCoordinator (same configuration) that, before queueing a
    run, tags it with its customer and its size (:func:`sized_tags`) and fails that customer's runs whose
    in-process executor is gone (:func:`fail_orphaned_runs`), so every run of a customer, however launched,
    is limited by one tag and none waits behind a dead run."""

    def submit_run(self, context: dg.SubmitRunContext) -> dg.DagsterRun:
        run = context.dagster_run
        assets = [k.to_user_string() for k in run.asset_selection] if run.asset_selection is not None else None
        extra = sized_tags(run.tags, run.job_name, assets)
        if extra:
            self._instance.add_run_tags(run.run_id, extra)
            context = context._replace(dagster_run=run.with_tags({**run.tags, **extra}))
        customer = run_customer({**run.tags, **extra})
        if customer:
            fail_orphaned_runs(self._instance, customer)
        return super().submit_run(context)
