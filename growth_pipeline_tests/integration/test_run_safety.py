"""Runs never hang a customer, and concurrent start-up is safe (issue 13, items 3 and 4).

Real processes throughout: `growth-pipeline` commands in subprocesses on a throw-away GROWTH_HOME, a `kill -9`
mid-load, the repository's dagster.yaml with its run queue, and the queued-run daemon's own dequeue logic.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from filelock import FileLock

from growth_pipeline.config import (
    REPO_ROOT,
    ConfigError,
    RunLimits,
    customer_like,
    customers_yaml,
    load_customers,
)
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.models.mlflow_store import mlflow_client
from growth_pipeline.lib.warehouse.connection import open_warehouse
from growth_pipeline.pipeline_shape import CUSTOMER_TAG
from growth_pipeline.run_guard import (
    HOST_TAG,
    MAX_RUNTIME_TAG,
    PID_TAG,
    launcher_tags,
    process_alive,
    sized_tags,
)
from growth_pipeline_tests.dagster_queue import add_run, dequeued

START = date(2026, 1, 1)
TIMEOUT_S = 600  # a command on a loaded 2-core machine: start-up alone can take a minute


def _world(tmp_path: Path, customers: list[str], users: int, days: int) -> dict[str, str]:
    """Demo exports for ``customers`` outside GROWTH_HOME, their customers.yaml, and the environment of a
    growth-pipeline command on an empty GROWTH_HOME."""
    base = load_customers(REPO_ROOT / "customers.yaml").get("powerplay")
    entries = []
    for i, c in enumerate(customers):
        generate_demo(DemoSpec("powerplay", n_users=users, start=START, days=days, seed=i + 1), tmp_path / "src" / c)
        entries.append(customer_like(base, c, tmp_path / "src" / c))
    (tmp_path / "customers.yaml").write_text(customers_yaml(entries))
    env = {**os.environ, "GROWTH_HOME": str(tmp_path / "home"), "GROWTH_CUSTOMERS": str(tmp_path / "customers.yaml")}
    for name in ("MLFLOW_TRACKING_URI", "GROWTH_FIRST_DAY", "DAGSTER_HOME", "GROWTH_DAGSTER_YAML"):
        env.pop(name, None)
    return env


def _materialize(customer: str, days: int) -> list[str]:
    end = date.fromordinal(START.toordinal() + days - 1)
    cli = [sys.executable, "-m", "growth_pipeline.cli", "materialize", "--customer", customer]
    return cli + ["--start", str(START), "--end", str(end), "--select", "landed_exports,raw_events"]


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home / "dagster"))


def _loaded_days(home: Path, customer: str) -> int:
    with open_warehouse(home / "warehouse" / f"{customer}.duckdb", read_only=True) as con:
        return con.execute("SELECT count(DISTINCT event_date) FROM raw.day_loads").fetchall()[0][0]


def test_a_killed_cli_run_is_failed_by_the_next_command_which_completes(tmp_path):
    """kill -9 of `growth-pipeline materialize` in the middle of raw_events: its run stays STARTED and holds the
    customer's queue slot; the next command marks it FAILURE (its process is gone), frees the slot, and loads
    the whole range itself."""
    days = 30
    env = _world(tmp_path, ["aa"], users=200, days=days)
    home = tmp_path / "home"
    victim = subprocess.Popen(_materialize("aa", days), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT_S
    while not (home / "dagster" / "dagster.yaml").exists():  # written by the command under its init lock
        assert victim.poll() is None and time.monotonic() < deadline, "the command never initialised GROWTH_HOME"
        time.sleep(0.2)
    with FileLock(str(home / "init.lock"), timeout=TIMEOUT_S):  # this process opens the instance once it exists
        pass
    instance = _instance(home)
    try:
        run = None
        while run is None:  # wait for raw_events to start loading
            assert victim.poll() is None and time.monotonic() < deadline, "raw_events never started"
            for r in instance.get_runs(filters=dg.RunsFilter(tags={CUSTOMER_TAG: "aa"})):
                started = instance.get_records_for_run(r.run_id, of_type=dg.DagsterEventType.STEP_START).records
                if any(e.event_log_entry.step_key == "raw_events" for e in started):
                    run = r
            time.sleep(0.1)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=60)
        done_steps = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
        assert "raw_events" not in {e.event_log_entry.step_key for e in done_steps}  # killed mid-load
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # a zombie run
        assert run.tags[PID_TAG] == str(victim.pid) and run.tags[HOST_TAG]
        assert int(run.tags[MAX_RUNTIME_TAG]) == RunLimits.from_env().seconds(days=days)
        waiting = add_run(instance, dg.DagsterRunStatus.QUEUED, **{CUSTOMER_TAG: "aa"})  # e.g. a scheduled run
        assert waiting not in dequeued(instance)  # the dead run holds aa's queue slot

        t0 = time.monotonic()
        nxt = subprocess.run(_materialize("aa", days), env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        took = time.monotonic() - t0
        assert nxt.returncode == 0, nxt.stdout + nxt.stderr
        assert f"marked failed: run {run.run_id} of aa (its process is gone)" in nxt.stdout
        assert f"({days} days)" in nxt.stdout and took < TIMEOUT_S
        killed = instance.get_run_record_by_id(run.run_id)
        assert killed.dagster_run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert f"pid {victim.pid}" in failure[-1].event_log_entry.dagster_event.message
        assert waiting in dequeued(instance)  # the slot is free
        assert _loaded_days(home, "aa") == days
    finally:
        instance.dispose()
        if victim.poll() is None:
            victim.kill()


def _fresh_dagster_home(home: Path) -> Path:
    """A Dagster home whose storage one process created alone."""
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_dynamic_partitions("customer")
    return home


def _schema_versions(dagster_home: Path) -> dict[str, list]:
    """The alembic version stamped in each SQLite database of a Dagster home (runs, schedules, event index)."""
    versions = {}
    for db in ("history/runs.db", "schedules/schedules.db", "history/runs/index.db"):
        with closing(sqlite3.connect(dagster_home / db)) as con:
            versions[db] = con.execute("SELECT version_num FROM alembic_version").fetchall()
    return versions


def test_three_commands_at_once_on_an_empty_growth_home_all_succeed(tmp_path):
    """Three `materialize` of different customers started together on an empty GROWTH_HOME (before, the
    SQLite schedule storage got two schema versions and broke the instance for good): all succeed, and the
    instance, the customers' partitions and the MLflow store work afterwards."""
    customers = ["aa", "bb", "cc"]
    env = _world(tmp_path, customers, users=40, days=3)
    home = tmp_path / "home"
    assert not home.exists()
    procs = [
        subprocess.Popen(_materialize(c, 3), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for c in customers
    ]
    outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(outs)
    instance = _instance(home)
    try:
        runs = instance.get_runs()
        assert len(runs) == 3 and {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert sorted(r.tags[CUSTOMER_TAG] for r in runs) == customers
        assert sorted(instance.get_dynamic_partitions("customer")) == customers  # each registered once
        instance.all_instigator_state()  # the schedule storage opens (it is what broke)
        instance.add_dynamic_partitions("customer", ["dd"])  # and the instance still writes
        assert "dd" in instance.get_dynamic_partitions("customer")
    finally:
        instance.dispose()
    assert _schema_versions(home / "dagster") == _schema_versions(_fresh_dagster_home(tmp_path / "reference"))
    assert all(_loaded_days(home, c) == 3 for c in customers)
    assert mlflow_client(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}").search_experiments() is not None
    logs = sorted((home / "logs").glob("materialize-*.log"))
    assert len(logs) == 3  # one log per command, even when started in the same second


def test_every_queued_run_gets_its_customer_and_size_and_orphans_free_the_queue(tmp_path, monkeypatch):
    """The repository's dagster.yaml: a run submitted with only partition tags (the UI, a backfill) is tagged
    growth/customer and a max runtime sized by its range; submitting it fails the customer's run whose process
    is gone, so it can be launched; a run of a live process is left alone."""
    monkeypatch.delenv("GROWTH_MAX_RUNTIME_PER_DAY_S", raising=False)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not process_alive(dead.pid) and process_alive(os.getpid(), launcher_tags().get("growth/pid_start"))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.run_monitoring_enabled and instance.run_monitoring_start_timeout_seconds == 300
        assert instance.run_monitoring_max_runtime_seconds == 86400  # for a run without a tag
        orphan = add_run(
            instance, dg.DagsterRunStatus.STARTED, **{CUSTOMER_TAG: "acme", **launcher_tags(), PID_TAG: str(dead.pid)}
        )
        alive = add_run(instance, dg.DagsterRunStatus.STARTED, **{CUSTOMER_TAG: "foodie", **launcher_tags()})
        backfill = add_run(
            instance,
            dg.DagsterRunStatus.NOT_STARTED,
            **{
                "dagster/asset_partition_range_start": "acme|2026-01-01",
                "dagster/asset_partition_range_end": "acme|2026-10-27",  # 300 days in one run
            },
        )
        assert backfill not in dequeued(instance)
        instance.run_coordinator.submit_run(dg.SubmitRunContext(instance.get_run_by_id(backfill), workspace=None))
        run = instance.get_run_by_id(backfill)
        assert run.status == dg.DagsterRunStatus.QUEUED and run.tags[CUSTOMER_TAG] == "acme"
        assert int(run.tags[MAX_RUNTIME_TAG]) == RunLimits().seconds(days=300, trains=True) == 226800  # 63 hours
        assert instance.get_run_by_id(orphan).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
        assert backfill in dequeued(instance)
    finally:
        instance.dispose()


def test_run_sizes_come_from_configuration(monkeypatch):
    from growth_pipeline.defs.automation import customer_refresh_job, daily_ingest_job, retrain_job

    limits = RunLimits()
    assert int(daily_ingest_job.tags[MAX_RUNTIME_TAG]) == limits.seconds(days=1) == 4200
    assert int(customer_refresh_job.tags[MAX_RUNTIME_TAG]) == limits.base_s
    assert int(retrain_job.tags[MAX_RUNTIME_TAG]) == limits.seconds(trains=True) == 46800  # a Powerplay-size retrain
    one_day = {"dagster/partition": "acme|2026-05-01", "dagster/partition/customer": "acme"}
    one_day |= {"dagster/partition/day": "2026-05-01", MAX_RUNTIME_TAG: daily_ingest_job.tags[MAX_RUNTIME_TAG]}
    assert sized_tags(one_day, "daily_ingest", None) == {CUSTOMER_TAG: "acme"}  # the job's own size fits
    assert sized_tags({"dagster/partition": "acme", MAX_RUNTIME_TAG: "999999"}, "retrain", None) == {
        CUSTOMER_TAG: "acme"
    }  # more set by hand is kept
    monkeypatch.setenv("GROWTH_MAX_RUNTIME_PER_DAY_S", "60")
    assert RunLimits.from_env().seconds(days=10) == 3600 + 600
    monkeypatch.setenv("GROWTH_MAX_RUNTIME_MODELS_S", "2h")
    with pytest.raises(ConfigError, match="GROWTH_MAX_RUNTIME_MODELS_S='2h'"):
        RunLimits.from_env()
