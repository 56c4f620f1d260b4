"""raw.events loading: typed columns, time normalisation, Mixpanel's dedup, bad input, idempotent atomic days."""

import subprocess
import sys
import textwrap
from datetime import datetime

import duckdb
import pytest

from growth_pipeline.lib.ingest.raw_events import load_day
from growth_pipeline_tests.conftest import D1, D2, epoch, event, write_export


def load(con, tmp_path, day, name=None, tz="UTC", timestamps="utc"):
    f = tmp_path / (name or f"{day}.jsonl")
    return load_day(con, day=day, files=[f], root=tmp_path, timezone_name=tz, timestamps=timestamps)


def rows(con, sql="SELECT event, distinct_id, time, insert_id FROM raw.events ORDER BY time, event"):
    return con.execute(sql).fetchall()


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()


def test_typed_columns_and_seconds_or_milliseconds(con, tmp_path):
    t = epoch(2024, 3, 1, 10)
    write_export(
        tmp_path / f"{D1}.jsonl",
        [
            event("Task Created", "u1", t, "i1", __device_id="d1", __user_id="u1", plan="pro"),
            event("Task Created", "u2", t * 1000 + 250, "i2"),  # milliseconds
            event("Login", "u3", t + 0.5, None),  # fractional seconds, no insert id
        ],
    )
    result = load(con, tmp_path, D1)
    assert (result.loaded, result.rejected, result.duplicates) == (3, 0, 0)
    got = con.execute(
        "SELECT event, distinct_id, time, insert_id, device_id, user_id, properties->>'plan', "
        "event_date, source_line FROM raw.events ORDER BY time, distinct_id"
    ).fetchall()
    base = datetime(2024, 3, 1, 10)
    assert got[0] == ("Task Created", "u1", base, "i1", "d1", "u1", "pro", D1, 1)
    assert got[1][2] == datetime(2024, 3, 1, 10, 0, 0, 250000)  # ms kept as ms
    assert got[2][2] == datetime(2024, 3, 1, 10, 0, 0, 500000) and got[2][3] is None


def test_project_timezone_times_are_converted_to_utc(con, tmp_path):
    # An old project in Asia/Kolkata wrote 09:30 local wall-clock as if it were UTC epoch.
    write_export(tmp_path / f"{D1}.jsonl", [event("Login", "u1", epoch(2024, 3, 1, 9, 30), "i1")])
    load(con, tmp_path, D1, tz="Asia/Kolkata", timestamps="project_timezone")
    assert rows(con)[0][2] == datetime(2024, 3, 1, 4, 0)  # 09:30 IST is 04:00 UTC


def test_dedup_within_day_and_against_stored_days(con, tmp_path):
    t = epoch(2024, 3, 1, 23, 59)
    write_export(
        tmp_path / f"{D1}.jsonl",
        [
            event("Buy", "u1", t, "a"),
            event("Buy", "u1", t, "a"),  # exact duplicate
            event("Buy", "u1", t * 1000, "a"),  # same time in ms: duplicate
            event("Buy", "u1", t, "b"),  # other insert id: kept
            event("Buy", "u2", t, "a"),  # other user: kept
            event("Buy", "u1", t, None),
            event("Buy", "u1", t, None),  # no insert id: never deduped
        ],
    )
    r1 = load(con, tmp_path, D1)
    assert (r1.loaded, r1.duplicates_in_day, r1.duplicates_of_stored) == (5, 2, 0)
    # the next day's file re-sends one of yesterday's events (same time) plus a new one
    write_export(tmp_path / f"{D2}.jsonl", [event("Buy", "u1", t, "a"), event("Buy", "u1", t + 120, "c")])
    r2 = load(con, tmp_path, D2)
    assert (r2.loaded, r2.duplicates_in_day, r2.duplicates_of_stored) == (1, 0, 1)
    assert con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] == 6


def test_bad_records_are_rejected_with_file_line_reason_and_good_ones_load(con, tmp_path):
    good = event("Login", "u1", epoch(2024, 3, 1), "g1")
    split = '{"event": "Login", "properties": {"time": ' + str(epoch(2024, 3, 1, 13)) + ', "distinct_id": "u9", '
    lines = [
        good,  # 1
        '{"event": "Login", "properties": {"time": 17',  # 2 truncated JSON
        split,
        '"$insert_id": "s1"}}',  # 3-4 one record over two lines
        event(None, "u2", epoch(2024, 3, 1)),  # 5 event null
        event("Login", None, epoch(2024, 3, 1)),  # 6 no distinct_id
        event("Login", "u3", None),  # 7 no time
        event("Login", "u4", "yesterday"),  # 8 time not a number
        "[1, 2, 3]",  # 9 not an object
        "",  # 10 blank: skipped, not an error
        "terminated early",  # 11 stray line
        event("Login", "u5", epoch(2024, 3, 1), "g2"),  # 12
    ]
    write_export(tmp_path / f"{D1}.jsonl.gz", lines)
    r = load(con, tmp_path, D1, name=f"{D1}.jsonl.gz")
    assert r.loaded == 3 and r.rejected == 7
    got = con.execute(
        "SELECT source_file, line_number, reason, raw_text FROM raw.rejected_events ORDER BY line_number"
    ).fetchall()
    assert [(g[1], g[2].split(":")[0]) for g in got] == [
        (2, "malformed JSON"),
        (5, "missing field"),
        (6, "missing field"),
        (7, "missing field"),
        (8, "properties.time is not a number"),
        (9, "record is not a JSON object"),
        (11, "stray 'terminated early' line"),
    ]
    assert {g[0] for g in got} == {f"{D1}.jsonl.gz"}
    assert "properties.distinct_id" in got[2][2] and "properties.time" in got[3][2]
    assert got[0][3].startswith('{"event": "Login", "properties": {"time": 17')  # raw text kept
    loaded = rows(con, "SELECT distinct_id, source_line FROM raw.events ORDER BY source_line")
    assert loaded == [("u1", 1), ("u9", 3), ("u5", 12)]
    assert r.rejected_reasons["missing field"] == 3


def test_truncated_gzip_keeps_lines_read_and_records_the_damage(con, tmp_path):
    path = write_export(
        tmp_path / f"{D1}.jsonl.gz", [event("Login", f"u{i}", epoch(2024, 3, 1), f"i{i}") for i in range(2000)]
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    r = load(con, tmp_path, D1, name=path.name)
    assert 0 < r.loaded < 2000
    # the damage marks the day incomplete (file, byte offset); only the line cut in two is a rejected record
    assert r.incomplete.startswith(f"{D1}.jsonl.gz: truncated gzip: the compressed data ends at byte ")
    assert con.execute("SELECT incomplete FROM raw.day_loads").fetchall() == [(r.incomplete,)]
    reasons = [x[0] for x in con.execute("SELECT reason FROM raw.rejected_events").fetchall()]
    assert len(reasons) == 1 and reasons[0].startswith("malformed JSON")


def test_reloading_a_day_replaces_exactly_that_day(con, tmp_path):
    write_export(tmp_path / f"{D1}.jsonl", [event("A", "u1", epoch(2024, 3, 1), "1"), "garbage"])
    write_export(tmp_path / f"{D2}.jsonl", [event("B", "u2", epoch(2024, 3, 2), "2")])
    load(con, tmp_path, D1)
    load(con, tmp_path, D2)
    cols = (
        "event, distinct_id, time, insert_id, device_id, user_id, properties::VARCHAR, event_date, source_file, "
        "source_line"
    )
    before = con.execute(f"SELECT {cols} FROM raw.events ORDER BY ALL").fetchall()
    rejected_before = con.execute(
        "SELECT event_date, source_file, line_number, reason, raw_text FROM raw.rejected_events ORDER BY ALL"
    ).fetchall()
    load(con, tmp_path, D1)
    load(con, tmp_path, D1)
    assert con.execute(f"SELECT {cols} FROM raw.events ORDER BY ALL").fetchall() == before
    assert (
        con.execute(
            "SELECT event_date, source_file, line_number, reason, raw_text FROM raw.rejected_events ORDER BY ALL"
        ).fetchall()
        == rejected_before
    )
    # a corrected file replaces the day and leaves the other day alone
    write_export(tmp_path / f"{D1}.jsonl", [event("C", "u3", epoch(2024, 3, 1), "3")])
    load(con, tmp_path, D1)
    assert rows(con, "SELECT event, event_date FROM raw.events ORDER BY event") == [("B", D2), ("C", D1)]
    assert con.execute("SELECT count(*) FROM raw.rejected_events").fetchall()[0][0] == 0


def test_a_crash_mid_write_leaves_the_old_day(tmp_path):
    db = tmp_path / "w.duckdb"
    write_export(tmp_path / f"{D1}.jsonl", [event("Old", f"u{i}", epoch(2024, 3, 1), str(i)) for i in range(50)])
    with duckdb.connect(str(db)) as c:
        load(c, tmp_path, D1)
    write_export(tmp_path / f"{D1}.jsonl", [event("New", f"u{i}", epoch(2024, 3, 1), str(i)) for i in range(80)])
    # A separate process deletes the old day and inserts the new one, then dies before COMMIT.
    script = textwrap.dedent(f"""
        import os, duckdb
        from datetime import date
        from pathlib import Path
        import growth_pipeline.lib.ingest.raw_events as re_mod
        real = re_mod.run_sql
        def dying(con, name, **kw):
            real(con, name, **kw)
            if name == "raw_replace_day":
                assert con.execute("SELECT count(*) FROM raw.events WHERE event = 'New'").fetchall()[0][0] == 80
                os._exit(9)
        re_mod.run_sql = dying
        con = duckdb.connect({str(db)!r})
        re_mod.load_day(con, day=date(2024, 3, 1), files=[Path({str(tmp_path / f"{D1}.jsonl")!r})],
                        root=Path({str(tmp_path)!r}), timezone_name="UTC", timestamps="utc")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    with duckdb.connect(str(db)) as c:
        assert c.execute("SELECT event, count(*) FROM raw.events GROUP BY 1").fetchall() == [("Old", 50)]
