"""The growth-pipeline command: quiet output (a line per stage, the rest in a log file), and dates outside the
day partitions refused in one line that says what to set."""

import os
import subprocess
import sys
from datetime import date

from growth_pipeline import cli, cli_output
from growth_pipeline.config import REPO_ROOT, Customer, customer_like, customers_yaml, load_customers
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec

QUIET = """
import os, sys, warnings
from pathlib import Path
from growth_pipeline import cli_output
with cli_output.quiet_terminal(Path(sys.argv[1])) as out:
    print("a print from a library")
    warnings.warn("a library warning")
    os.system("echo from a child process; echo child on stderr >&2")
    out.write("customer  ingest  3 days\\n")
"""


def test_quiet_terminal_sends_library_output_and_child_processes_to_the_log(tmp_path):
    log = tmp_path / "run.log"
    done = subprocess.run([sys.executable, "-c", QUIET, str(log)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "customer  ingest  3 days\n" and done.stderr == ""
    text = log.read_text()
    for line in ("a print from a library", "a library warning", "from a child process", "child on stderr"):
        assert line in text


def test_progress_line_is_one_result_line_off_a_terminal(tmp_path):
    path = tmp_path / "out.txt"
    with path.open("w") as out, cli_output.StageProgress(out, "acme ingest", 2, poll=lambda: 1, delay_s=0) as p:
        p.finish("3 days: 120 events")
    assert path.read_text().startswith("acme ingest 3 days: 120 events (") and path.read_text().count("\n") == 1


def test_a_date_before_the_first_partition_names_growth_first_day(capsys):
    message = cli.range_error("acme", date(1997, 1, 1), date(1997, 1, 3))
    assert "GROWTH_FIRST_DAY=1997-01-01" in message and "history_start: 1997-01-01" in message
    assert "\n" not in message
    assert cli.main(["materialize", "--customer", "powerplay", "--start", "1997-01-01", "--end", "1997-01-03"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GROWTH_FIRST_DAY=1997-01-01" in err
    assert "after the last day partition" in cli.range_error("acme", date(2026, 1, 1), date(2999, 1, 1))


def test_a_1997_customer_with_history_start_loads_and_the_terminal_gets_one_line_per_stage(tmp_path):
    """history_start moves the first day partition; the CLI prints the log's path and one line for the stage."""
    generate_demo(DemoSpec("powerplay", n_users=30, start=date(1997, 1, 1), days=3, seed=3), tmp_path / "src")
    old = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "old", tmp_path / "src")
    old = Customer.model_validate({**old.model_dump(mode="json", exclude_none=True), "history_start": "1997-01-01"})
    (tmp_path / "customers.yaml").write_text(customers_yaml([old]))
    env = {**os.environ, "GROWTH_HOME": str(tmp_path / "home"), "GROWTH_CUSTOMERS": str(tmp_path / "customers.yaml")}
    env.pop("GROWTH_FIRST_DAY", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "growth_pipeline.cli", "materialize", "--customer", "old"]
        + ["--start", "1997-01-01", "--end", "1997-01-03", "--select", "landed_exports,raw_events"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("full log: "), done.stdout
    assert lines[1].startswith("old        ingest     1997-01-01..1997-01-03 (3 days): ") and " events (" in lines[1]
    assert done.stderr == ""
    log = lines[0].removeprefix("full log: ")
    assert log.startswith(str(tmp_path / "home" / "logs")) and "STEP_SUCCESS" in open(log).read()
