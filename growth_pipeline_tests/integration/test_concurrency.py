"""Two runs of one customer never write its DuckDB file at once; different customers run in parallel."""

import shutil
import subprocess
import sys
import textwrap

import dagster as dg

from growth_pipeline.config import REPO_ROOT
from growth_pipeline.lib.warehouse.connection import open_warehouse
from growth_pipeline_tests.dagster_queue import add_run, dequeued


def test_repository_dagster_yaml_queues_runs_per_customer(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)

        def run(status, **tags):
            return add_run(instance, status, **tags)

        # powerplay is already running a day partition
        run(
            dg.DagsterRunStatus.STARTED,
            **{"dagster/partition/customer": "powerplay", "dagster/partition": "powerplay|2026-05-01"},
        )
        pp_day = run(
            dg.DagsterRunStatus.QUEUED,
            **{"dagster/partition/customer": "powerplay", "dagster/partition": "powerplay|2026-05-02"},
        )
        pp_cli = run(dg.DagsterRunStatus.QUEUED, **{"growth/customer": "powerplay", "dagster/partition": "powerplay"})
        foodie_day = run(
            dg.DagsterRunStatus.QUEUED,
            **{"dagster/partition/customer": "foodie", "dagster/partition": "foodie|2026-05-01"},
        )
        foodie_day2 = run(
            dg.DagsterRunStatus.QUEUED,
            **{"dagster/partition/customer": "foodie", "dagster/partition": "foodie|2026-05-02"},
        )
        acme = run(dg.DagsterRunStatus.QUEUED, **{"dagster/partition": "acme"})
        launched = dequeued(instance)
        assert pp_day not in launched  # same customer: waits for the running one
        assert foodie_day in launched and acme in launched  # other customers go ahead in parallel
        assert foodie_day2 not in launched  # ...but only one run per customer at a time
        # pp_cli carries growth/customer only: it is not blocked by the dagster/partition/customer tag,
        # which is why the warehouse file lock below exists as the second line.
        assert pp_cli in launched
    finally:
        instance.dispose()


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from growth_pipeline.lib.warehouse.connection import open_warehouse
    db, tag, hold = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    with open_warehouse(db) as con:
        start = time.time()
        con.execute("CREATE TABLE IF NOT EXISTS log (tag VARCHAR, t0 DOUBLE, t1 DOUBLE)")
        time.sleep(hold)
        con.execute("INSERT INTO log VALUES (?, ?, ?)", [tag, start, time.time()])
    print(tag, "ok")
""")


def _writers(dbs_and_tags, hold=1.5):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), tag, str(hold)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for db, tag in dbs_and_tags
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=False):
        assert p.returncode == 0, err


def test_two_processes_on_one_warehouse_queue_instead_of_failing(tmp_path):
    db = tmp_path / "powerplay.duckdb"
    _writers([(db, "a"), (db, "b")])
    with open_warehouse(db, read_only=True) as con:
        (a0, a1), (b0, b1) = con.execute("SELECT t0, t1 FROM log ORDER BY t0").fetchall()
    assert b0 >= a1  # the second writer started only after the first one finished


def test_different_customers_write_in_parallel(tmp_path):
    _writers([(tmp_path / "powerplay.duckdb", "a"), (tmp_path / "foodie.duckdb", "b")], hold=2.0)
    spans = []
    for name in ("powerplay", "foodie"):
        with open_warehouse(tmp_path / f"{name}.duckdb", read_only=True) as con:
            spans.append(con.execute("SELECT t0, t1 FROM log").fetchall()[0])
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1  # the two writes overlapped in time
