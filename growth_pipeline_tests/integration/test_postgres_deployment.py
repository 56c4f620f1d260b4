"""The PostgreSQL deployment, for real: a PostgreSQL server is started for this module (Debian's binaries), then

* a Dagster instance from ``deploy/postgres/dagster.yaml`` (selected through ``GROWTH_DAGSTER_YAML``, connection
  from ``DAGSTER_PG_*``) runs real ingestion assets and reads the runs and materializations back from PostgreSQL,
  with the same run queue per customer as the repository's dagster.yaml;
* an ``mlflow server`` with its backend store in PostgreSQL receives a real CatBoost model through
  ``growth_pipeline.lib.models.run_logging`` and ``registry`` (``MLFLOW_TRACKING_URI=http://...``), which is
  registered, promoted and loaded back.

Without the server binaries the module is skipped, except under CI (``CI`` set), where it fails: run
``./dev system-packages`` to install them.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from growth_pipeline import dagster_runs
from growth_pipeline.config import REPO_ROOT, Paths, customer_like, customers_yaml, load_customers
from growth_pipeline.defs.resources import MlflowResource
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.models import mlflow_store, model_artifacts, registry, run_logging
from growth_pipeline.lib.models.promotion import decide
from growth_pipeline_tests.dagster_queue import add_run, dequeued
from growth_pipeline_tests.lib.models.trained_models import clf_tm, data  # noqa: F401  (module fixtures: a small real model)

pytestmark = pytest.mark.postgres

PG_DEPLOY_YAML = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"
ROLE = "growth"
START = date(2026, 1, 1)
DAYS = 2


# ------------------------------------------------------------------------------------------ the PostgreSQL server


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str

    def connect(self, db: str):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=db)

    def query(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        con = self.connect(db)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    """A throw-away PostgreSQL server on 127.0.0.1:<free port> with a password role and two databases."""
    bindir = _pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        msg = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian's postgresql package)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}: run `./dev system-packages` before the tests")
        pytest.skip(f"{msg}; `./dev system-packages` installs them")

    # initdb refuses to run as root: run the server as the `postgres` OS user the Debian package creates. The
    # folder is made in /tmp (pytest's tmp_path is private to root, which postgres could not enter).
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "running as root needs the `postgres` OS user of Debian's postgresql package: "
                "run `./dev system-packages`"
            )
    base = Path(tempfile.mkdtemp(prefix="growth-pg-"))
    data_dir, sock_dir, log_file = base / "data", base / "sock", base / "server.log"
    sock_dir.mkdir()
    superpw = secrets.token_hex(12)
    (base / "pwfile").write_text(superpw + "\n")
    prefix: list[str] = []
    if as_root:
        shutil.chown(base, "postgres", "postgres")
        for p in (sock_dir, base / "pwfile"):
            shutil.chown(p, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*cmd: str) -> None:
        proc = subprocess.run([*prefix, *cmd], cwd=base, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = log_file.read_text() if log_file.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}")

    port = _free_port()
    pg_ctl = str(bindir / "pg_ctl")
    run(
        str(bindir / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        "postgres",
        "--pwfile",
        str(base / "pwfile"),
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    # throw-away data: no fsync, so the server starts and migrates quickly
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {sock_dir} -c fsync=off -c synchronous_commit=off "
        f"-c full_page_writes=off -c max_connections=100"
    )
    started = False
    try:
        run(pg_ctl, "-D", str(data_dir), "-l", str(log_file), "-o", opts, "-w", "-t", "60", "start")
        started = True
        password = secrets.token_hex(12)
        import psycopg2

        admin = psycopg2.connect(host=str(sock_dir), port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (password,))
            for db in ("dagster", "mlflow"):
                cur.execute(f"CREATE DATABASE {db} OWNER {ROLE}")
        admin.close()
        yield PgServer("127.0.0.1", port, ROLE, password)
    finally:
        if started:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                cwd=base,
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------- Dagster on PostgreSQL


def test_deploy_yaml_has_the_repository_instance_settings_with_postgres_storage():
    deploy = yaml.safe_load(PG_DEPLOY_YAML.read_text())
    repo = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    storage = deploy.pop("storage")
    repo.pop("storage", None)
    assert deploy == repo  # run queue per customer, run monitoring, telemetry off: the same
    fields = storage["postgres"]["postgres_db"]
    assert fields.pop("scheme") == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3 otherwise
    assert fields == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }  # no secret in the file


@pytest.fixture(scope="module")
def pg_growth(pg, tmp_path_factory):
    """GROWTH_HOME, a small demo customer `pp` and the DAGSTER_PG_* / GROWTH_DAGSTER_YAML environment."""
    root = tmp_path_factory.mktemp("pg-deploy")
    generate_demo(DemoSpec("powerplay", n_users=40, start=START, days=DAYS, seed=3), root / "src")
    powerplay = load_customers(REPO_ROOT / "customers.yaml").get("powerplay")
    cfg = root / "customers.yaml"
    cfg.write_text(
        customers_yaml([customer_like(powerplay, "pp", root / "src"), customer_like(powerplay, "qq", root / "src")])
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTH_HOME", str(root / "home"))
    mp.setenv("GROWTH_CUSTOMERS", str(cfg))
    mp.setenv("GROWTH_DAGSTER_YAML", str(PG_DEPLOY_YAML))
    mp.setenv("DAGSTER_HOME", str(root / "unused"))  # prepare_dagster_home replaces it; undo() restores it
    for key, value in {
        "HOST": pg.host,
        "PORT": str(pg.port),
        "USER": pg.user,
        "PASSWORD": pg.password,
        "DB": "dagster",
    }.items():
        mp.setenv(f"DAGSTER_PG_{key}", value)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        yield Paths(root / "home")
    finally:
        mp.undo()


def test_dagster_instance_in_postgres_runs_assets_and_queues_per_customer(pg, pg_growth):
    paths = pg_growth
    instance = dagster_runs.dagster_instance(paths)  # what growth-pipeline ui/demo/materialize use
    try:
        copied = paths.dagster_home / "dagster.yaml"
        assert copied.read_bytes() == PG_DEPLOY_YAML.read_bytes()
        assert pg.password not in copied.read_text()
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

        assert sorted(instance.get_dynamic_partitions("customer")) == ["pp", "qq"]  # registered at start-up
        assert dagster_runs.register_customers(instance, ["pp", "qq"]) == []
        end = START + timedelta(days=DAYS - 1)
        assert dagster_runs.materialize_range(instance, "pp", START, end, select=["landed_exports", "raw_events"])
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        run_id = runs[0].run_id
    finally:
        instance.dispose()

    # A new instance (another process would do the same) reads it all back from PostgreSQL.
    again = dg.DagsterInstance.from_config(str(paths.dagster_home))
    try:
        assert again.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        assert set(again.get_dynamic_partitions("customer")) == {"pp", "qq"}
        days = {f"pp|{START + timedelta(days=i)}" for i in range(DAYS)}
        assert again.get_materialized_partitions(dg.AssetKey("raw_events")) == days
        assert again.get_materialized_partitions(dg.AssetKey("landed_exports")) == days
        latest = again.get_latest_materialization_event(dg.AssetKey("raw_events"))
        assert latest is not None and latest.run_id == run_id
        meta = latest.asset_materialization.metadata
        assert meta["loaded"].value > 0 and "duplicates" in meta and "rejected" in meta

        # ... and they are rows in the PostgreSQL database, not files
        assert pg.query("dagster", "SELECT run_id, status FROM runs") == [(run_id, "SUCCESS")]
        ((n,),) = pg.query(
            "dagster",
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE %s",
            ("%raw_events%",),
        )
        assert n == DAYS
        assert not list(paths.dagster_home.glob("**/*.db"))  # no SQLite storage beside it

        # the run queue: at most one run per customer, other customers in parallel
        coordinator = again.run_coordinator
        assert isinstance(coordinator, dg.QueuedRunCoordinator)
        limits = {lim["key"]: lim for lim in coordinator.get_run_queue_config().tag_concurrency_limits}
        assert set(limits) == {"dagster/partition/customer", "dagster/partition", "growth/customer"}
        assert all(lim["limit"] == 1 and lim["value"] == {"applyLimitPerUniqueValue": True} for lim in limits.values())

        def queued(status, **tags):
            return add_run(again, status, **tags)

        queued(
            dg.DagsterRunStatus.STARTED, **{"dagster/partition/customer": "pp", "dagster/partition": "pp|2026-01-01"}
        )
        pp_next = queued(
            dg.DagsterRunStatus.QUEUED, **{"dagster/partition/customer": "pp", "dagster/partition": "pp|2026-01-02"}
        )
        # two runs of qq as the CLI starts them (a day range, then the customer-wide assets)
        qq_day = queued(dg.DagsterRunStatus.QUEUED, **{"growth/customer": "qq", "dagster/partition/customer": "qq"})
        qq_wide = queued(dg.DagsterRunStatus.QUEUED, **{"growth/customer": "qq", "dagster/partition": "qq"})
        launched = dequeued(again)
        assert pp_next not in launched  # pp is running: its next run waits
        assert launched == {qq_day} or launched == {qq_wide}  # qq goes ahead, one run at a time
    finally:
        again.dispose()


# ------------------------------------------------------------------------------- MLflow server on PostgreSQL


@pytest.fixture(scope="module")
def mlflow_server(pg, tmp_path_factory) -> Iterator[str]:
    """``mlflow server`` with its backend store in the `mlflow` database and proxied file artifacts; its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {
        **os.environ,
        # the password reaches libpq through PGPASSWORD: not on the command line, not in a file
        "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg2://{pg.user}@{pg.host}:{pg.port}/mlflow",
        "PGPASSWORD": pg.password,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--artifacts-destination",
        (root / "artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}):\n{(root / 'server.log').read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health:\n{(root / 'server.log').read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
        log.close()


def test_models_log_register_and_load_through_an_mlflow_server_on_postgres(
    pg,
    mlflow_server,
    clf_tm,  # noqa: F811
    data,  # noqa: F811
    monkeypatch,
    tmp_path,
):  # noqa: F811
    uri = mlflow_server
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert mlflow_store.tracking_uri(Paths(tmp_path / "home")) == uri
    assert MlflowResource().artifacts(Paths(tmp_path / "home")) is None  # the server places artifacts

    logged = run_logging.log_training_run(
        clf_tm,
        tracking_uri=uri,
        artifact_root=None,
        dagster_run_id="dagster-run-1",
        code_version="test",
        partition="acme",
    )
    decision = decide("classifier", clf_tm.metrics, has_champion=False)
    assert decision.promote, decision.reason
    registry.record_decision(uri, logged, decision)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(logged.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
    assert run.data.tags["customer"] == "acme" and run.data.tags["promotion.decision"] == "promoted"
    assert run.data.metrics["model.roc_auc"] == pytest.approx(clf_tm.metrics["model.roc_auc"])
    assert run.data.metrics["rows.train"] == clf_tm.rows["train"]
    assert "catboost.depth" in run.data.params
    arts = {a.path for a in client.list_artifacts(logged.run_id)}
    assert {"model_meta.json", model_artifacts.REFERENCE_ARTIFACT, "feature_importance.csv", "charts"} <= arts

    name = mlflow_store.registered_model_name("acme", "conversion")
    assert (logged.registered_name, logged.version) == (name, "1")
    aliases = client.get_registered_model(name).aliases
    assert aliases == {"champion": "1", "challenger": "1"}

    loaded = registry.load_model(uri, name, "champion")
    assert loaded is not None and loaded.version == "1" and loaded.run_id == logged.run_id
    test = data["test"]
    np.testing.assert_allclose(loaded.predict(test), clf_tm.predict(test))
    reference = loaded.reference()
    assert reference is not None and reference.height == test.height

    # the backend store is the PostgreSQL database
    assert pg.query("mlflow", "SELECT status FROM runs WHERE run_uuid = %s", (logged.run_id,)) == [("FINISHED",)]
    assert pg.query("mlflow", "SELECT name, version FROM model_versions") == [(name, 1)]
    assert sorted(
        pg.query("mlflow", "SELECT alias, version FROM registered_model_aliases WHERE name = %s", (name,))
    ) == [("challenger", 1), ("champion", 1)]
    assert not list(tmp_path.iterdir())
