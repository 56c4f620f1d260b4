"""Benchmark: loading one Mixpanel export day, our loader beside DuckDB's own and a naive one, in one run.

    .venv/bin/python benchmarks/ingest.py --events 2000000

Writes one gzipped day of ``--events`` Export API records (about 400 bytes of JSON each, 1% repeated
``$insert_id``s), then runs each loader in its own process (so each peak resident memory is its own) and prints
seconds and peak RSS side by side:

- DuckDB bare scan: ``read_json_auto`` and a count (the floor: decompress and parse);
- DuckDB typed load: the typed columns we keep (event, distinct_id, time, insert_id, properties as JSON) into a
  table, with nothing checked;
- naive: ``json.loads`` per line, pandas, ``drop_duplicates`` (what a hand-written loader does);
- ours: ``load_day`` into a fresh warehouse (every line checked, rejects kept, dedup within the day);
- the fixed cost of a run: ``growth-pipeline materialize --select raw_events`` on a one-event day, beside a bare
  ``python -c "import dagster"``.

Issue 14's targets: ours within 1.5x of the typed load with peak RSS under 1.5 GB; the fixed cost within 2 s of
importing Dagster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAY = date(2026, 3, 2)

TYPED_LOAD = """
CREATE TABLE events AS
SELECT event, properties->>'distinct_id' AS distinct_id, (properties->>'time')::BIGINT AS time,
       properties->>'$."$insert_id"' AS insert_id, properties
FROM read_json('{file}', format = 'newline_delimited', columns = {{event: 'VARCHAR', properties: 'JSON'}})
"""


def write_day(path: Path, events: int) -> int:
    """One day of export records, written by DuckDB itself (fast), gzipped; returns the file's size."""
    import duckdb

    start = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp())
    users = max(1, events // 25)
    sql = f"""
    COPY (
      SELECT ['Page View', 'Task Created', 'Project Opened', 'Report Exported', 'Invite Sent'][1 + i % 5] AS event,
             {{'time': {start} + (i * 86399) // {events}, 'distinct_id': 'user-' || (hash(i) % {users}),
               '$insert_id': md5(i::VARCHAR),
               'mp_processing_time_ms': {start * 1000} + i, '$browser': 'Chrome', '$os': 'Mac OS X',
               '$city': 'Austin', '$region': 'Texas', 'mp_country_code': 'US', '$screen_width': 1440,
               'utm_source': ['google', 'newsletter', 'direct'][1 + i % 3], 'project_id': 'p-' || (i % 9973),
               'plan': ['free', 'pro', 'enterprise'][1 + i % 3], 'duration_ms': i % 7919}} AS properties
      FROM (SELECT CASE WHEN i % 100 = 99 THEN i - 1 ELSE i END AS i FROM range({events}) r(i))  -- 1% resent
    ) TO '{path}' (FORMAT json, COMPRESSION gzip)
    """
    with duckdb.connect() as con:
        con.execute(sql)
    return path.stat().st_size


def run_one(kind: str, file: Path, work: Path) -> None:
    """Runs in a child process: one loader, then prints the rows it kept."""
    if kind in ("bare", "typed"):
        import duckdb

        with duckdb.connect(str(work / f"{kind}.duckdb")) as con:
            if kind == "bare":
                rows = con.execute(f"SELECT count(*) FROM read_json_auto('{file}')").fetchone()[0]
            else:
                con.execute(TYPED_LOAD.format(file=file))
                rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    elif kind == "naive":
        import gzip

        import pandas as pd

        records = []
        with gzip.open(file, "rt") as fh:
            for line in fh:
                rec = json.loads(line)
                p = rec["properties"]
                records.append((rec["event"], p["distinct_id"], p["time"], p.get("$insert_id"), json.dumps(p)))
        frame = pd.DataFrame(records, columns=["event", "distinct_id", "time", "insert_id", "properties"])
        rows = len(frame.drop_duplicates(["event", "distinct_id", "time", "insert_id"]))
    elif kind == "ours":
        import duckdb

        from growth_pipeline.lib.ingest.raw_events import load_day

        with duckdb.connect(str(work / "ours.duckdb")) as con:
            load = load_day(con, day=DAY, files=[file], root=file.parent, timezone_name="UTC", timestamps="utc")
            rows = load.loaded
    else:
        raise SystemExit(f"unknown loader {kind}")
    print(rows)


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Seconds, peak RSS (GB) of the child, and its last line of output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-2000:]}\n{err[-2000:]}")
    lines = out.strip().splitlines()
    return seconds, usage.ru_maxrss / 2**20, lines[-1] if lines else ""


def fixed_cost(work: Path) -> list[tuple[str, float, float, str]]:
    """A one-event day through the CLI, beside importing Dagster, each in a fresh process."""
    home, src = work / "home", work / "src"
    src.mkdir(parents=True, exist_ok=True)
    record = {"event": "Page View", "properties": {"time": 1772452800, "distinct_id": "u1", "$insert_id": "a"}}
    (src / f"{DAY}.jsonl").write_text(json.dumps(record) + "\n")
    customers = work / "customers.yaml"
    customers.write_text(
        f"customers:\n  - id: bench\n    name: Bench\n    timezone: UTC\n    history_start: {DAY}\n"
        f"    source: {{kind: local_folder, path: {src}}}\n"
        "    events: {signup: Sign Up, conversion: [Buy], goal: [Buy], churn_event: Cancel}\n"
    )
    env = dict(os.environ, GROWTH_HOME=str(home), GROWTH_CUSTOMERS=str(customers))
    cli = [sys.executable, "-m", "growth_pipeline.cli"]
    measure([*cli, "init"], env)  # the one-time set-up of GROWTH_HOME is not a run's cost
    rows = [("python -c 'import dagster'", *measure([sys.executable, "-c", "import dagster"]))]
    run = [*cli, "materialize", "--customer", "bench", "--select", "raw_events", "--start", str(DAY), "--end", str(DAY)]
    rows.append(("growth-pipeline materialize raw_events, one-event day", *measure(run, env)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--run-one", help=argparse.SUPPRESS)
    ap.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_one:
        run_one(args.run_one, args.file, args.work)
        return

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        file = work / "src" / f"{DAY}.jsonl.gz"
        file.parent.mkdir()
        t0 = time.perf_counter()
        size = write_day(file, args.events)
        took = time.perf_counter() - t0
        print(f"one day of {args.events:,} events: {size / 2**20:,.0f} MB gzipped, written in {took:.1f} s")
        print()
        print("| loader | seconds | peak RSS GB | rows kept | vs typed load |")
        print("|---|---:|---:|---:|---:|")
        rows = []
        for kind, label in [
            ("bare", "DuckDB bare scan (read_json_auto, count)"),
            ("typed", "DuckDB typed load (5 columns into a table)"),
            ("naive", "naive json.loads + pandas + drop_duplicates"),
            ("ours", "ours: load_day (checks, rejects, dedup)"),
        ]:
            cmd = [sys.executable, __file__, "--run-one", kind, "--file", str(file), "--work", str(work)]
            rows.append((label, *measure(cmd)))
        typed = rows[1][1]
        for label, seconds, rss, kept in rows:
            print(f"| {label} | {seconds:.1f} | {rss:.2f} | {int(kept):,} | {seconds / typed:.2f}x |")
        print()
        print("| fixed cost of a run | seconds | peak RSS GB |")
        print("|---|---:|---:|")
        for label, seconds, rss, _ in fixed_cost(work):
            print(f"| {label} | {seconds:.1f} | {rss:.2f} |")


if __name__ == "__main__":
    main()
