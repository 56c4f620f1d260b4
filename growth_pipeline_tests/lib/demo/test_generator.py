"""The demo-data generator (growth_pipeline.lib.demo.generator and the simulation, records and files it writes):
determinism, layout, times and days, dirt, identity merge and behaviour changes."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.demo.apps import CUISINES
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DEMO_TIMEZONES, BehaviourChange, DemoSpec, DemoSummary
from growth_pipeline_tests.lib.demo.demo_files import (
    FD_SPEC,
    PP_SPEC,
    all_files,
    dedup_key,
    local_date,
    physical_lines,
    read_all,
    seconds,
)


# ------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("customer", ["powerplay", "foodie"])
def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path, customer):
    spec = DemoSpec(customer, n_users=120, start=date(2024, 5, 1), days=5, seed=3)
    generate_demo(spec, tmp_path / "a")
    generate_demo(spec, tmp_path / "b")
    a, b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) >= 7
    assert a == b
    generate_demo(DemoSpec(customer, n_users=120, start=date(2024, 5, 1), days=5, seed=4), tmp_path / "c")
    c = all_files(tmp_path / "c")
    common = [k for k in a if k in c and k.endswith((".gz", ".json")) and not k.startswith("truth")]
    assert common and all(a[k] != c[k] for k in common)


def test_rerun_overwrites_previous_export(tmp_path):
    spec = DemoSpec("foodie", n_users=80, start=date(2024, 5, 1), days=4, seed=1)
    other = DemoSpec("foodie", n_users=80, start=date(2024, 5, 1), days=4, seed=2)
    generate_demo(spec, tmp_path / "x")
    generate_demo(other, tmp_path / "x")  # different seed: other part counts; stale parts must go
    generate_demo(other, tmp_path / "fresh")
    assert all_files(tmp_path / "x") == all_files(tmp_path / "fresh")


# ------------------------------------------------------------------------------------------------ layout
def test_powerplay_day_files_cover_every_day(pp):
    summary, out, days, _ = pp
    names = sorted(p.name for p in out.glob("*.jsonl.gz"))
    assert names == [f"{(PP_SPEC.start + timedelta(days=k)).isoformat()}.jsonl.gz" for k in range(PP_SPEC.days)]
    assert summary.files == PP_SPEC.days
    assert all(d.records for d in days)


def test_foodie_object_storage_layout(fd):
    summary, out, days, _ = fd
    files = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith("truth"))
    pat = re.compile(r"^2195193/mp_master_event/(\d{4})/(\d{2})/(\d{2})/part-\d{5}\.json(\.gz)?$")
    per_day = Counter()
    for f in files:
        m = pat.match(str(f.relative_to(out)))
        assert m, f
        per_day[date(int(m[1]), int(m[2]), int(m[3]))] += 1
    assert sorted(per_day) == [FD_SPEC.start + timedelta(days=k) for k in range(FD_SPEC.days)]
    assert set(per_day.values()) <= {3, 4}
    assert summary.files == len(files)
    assert any(f.suffix == ".json" for f in files) and any(f.suffix == ".gz" for f in files)
    for f in files:  # .gz really is gzip, .json really is plain
        assert (f.read_bytes()[:2] == b"\x1f\x8b") == (f.suffix == ".gz")


def test_foodie_events_cuisines_prices_and_channels(fd):
    _, _, days, truth = fd
    events, cuisines, sources = Counter(), set(), set()
    buys = 0
    for d in days:
        for rec, line, _ in d.records:
            p = rec["properties"]
            events[rec["event"]] += 1
            assert p["mp_country_code"] == "US"
            if "cuisine" in p:
                cuisines.add(p["cuisine"])
                assert isinstance(p["meal_id"], int)
            if "utm_source" in p:
                sources.add(p["utm_source"])
                assert p["utm_campaign"]
            if rec["event"] == "Buy":
                buys += 1
                assert isinstance(p["price"], (int, float)) and p["price"] >= 3
                assert re.search(r'"price":\d+\.\d{2}[,}]', line)
                assert p["cuisine"] in CUISINES
    assert cuisines == set(CUISINES)
    assert sources == {"facebook", "twitter", "reddit", "pinterest"}
    for ev in ("Sign Up", "Page View", "Meal Viewed", "Like", "Share", "Buy"):
        assert events[ev] > 0, ev
    assert buys > 20
    assert set(truth["channel"].unique()) == sources


def test_powerplay_events_and_properties(pp):
    _, _, days, _ = pp
    events, oses, cities = Counter(), Counter(), set()
    for d in days:
        for rec, _, _ in d.records:
            p = rec["properties"]
            events[rec["event"]] += 1
            oses[p["$os"]] += 1
            cities.add(p["$city"])
            assert p["mp_country_code"] == "IN"
            assert p["mp_processing_time_ms"] >= seconds(p["time"]) * 1000
            if rec["event"] == "Subscription Purchased":
                assert p["currency"] == "INR" and isinstance(p["amount"], int) and p["amount"] > 0 and p["plan"]
    for ev in (
        "Sign Up",
        "App Open",
        "Project Created",
        "Task Created",
        "Task Completed",
        "Attendance Marked",
        "Material Request Created",
        "Photo Uploaded",
        "Report Generated",
        "Subscription Purchased",
    ):
        assert events[ev] > 0, ev
    assert oses.most_common(1)[0][0] == "Android" and oses["iOS"] > 0 and oses["Windows"] + oses["Mac OS X"] > 0
    assert {"Mumbai", "Pune", "Bengaluru"} <= cities


# ----------------------------------------------------------------------------------------- times & days
@pytest.mark.parametrize("which", ["pp", "fd"])
def test_every_event_falls_on_its_file_day_except_late_resends(which, request):
    summary, _, days, _ = request.getfixturevalue(which)
    spec = PP_SPEC if which == "pp" else FD_SPEC
    tz = DEMO_TIMEZONES[spec.customer]
    prev_keys: set = set()
    off_day = 0
    for d in days:
        keys = set()
        for rec, _, _ in d.records:
            t = rec["properties"]["time"]
            assert isinstance(t, int) and t > 0
            got = local_date(t, tz)
            if got != d.day:
                # a late re-send: a copy of a record of the previous day's file
                assert got == d.day - timedelta(days=1)
                assert dedup_key(rec) in prev_keys
                off_day += 1
            keys.add(dedup_key(rec))
        prev_keys = keys
    assert off_day == summary.late_duplicates > 0


def test_dst_day_has_23_hours_of_events(fd):
    _, _, days, _ = fd
    dst = next(d for d in days if d.day == date(2024, 3, 10))
    hours = {
        datetime.fromtimestamp(seconds(r["properties"]["time"]), ZoneInfo("America/Los_Angeles")).hour
        for r, _, _ in dst.records
    }
    assert 2 not in hours  # 02:00-03:00 does not exist that day
    assert len(hours) >= 18


def test_millisecond_share(pp):
    _, _, days, _ = pp
    times = [r["properties"]["time"] for d in days for r, _, _ in d.records]
    share = np.mean([t >= 100_000_000_000 for t in times])
    assert len(times) > 15_000
    assert 0.04 < share < 0.06
    assert all(len(str(t)) == 13 for t in times if t >= 100_000_000_000)


def test_time_in_project_timezone_encodes_local_wall_clock(tmp_path):
    base = DemoSpec(
        "foodie", n_users=150, start=date(2024, 3, 8), days=4, seed=9, duplicate_share=0, malformed_per_day=0
    )
    local = DemoSpec(
        "foodie",
        n_users=150,
        start=date(2024, 3, 8),
        days=4,
        seed=9,
        duplicate_share=0,
        malformed_per_day=0,
        time_in_project_timezone=True,
    )
    generate_demo(base, tmp_path / "utc")
    generate_demo(local, tmp_path / "local")
    tz = ZoneInfo("America/Los_Angeles")
    utc_by_id = {r["properties"]["$insert_id"]: r for d in read_all(base, tmp_path / "utc") for r, _, _ in d.records}
    n = 0
    for d in read_all(local, tmp_path / "local"):
        for rec, _, _ in d.records:
            p = rec["properties"]
            true = utc_by_id[p["$insert_id"]]["properties"]
            t_true, t_local = seconds(true["time"]), seconds(p["time"])
            assert t_local - t_true == datetime.fromtimestamp(t_true, tz).utcoffset().total_seconds()
            # read as UTC, the wall clock falls on the file's day; processing time stays true UTC ms
            assert datetime.fromtimestamp(t_local, UTC).date() == d.day
            assert p["mp_processing_time_ms"] == true["mp_processing_time_ms"]
            n += 1
    assert n == len(utc_by_id) > 1000


# ------------------------------------------------------------------------------------------------- dirt
@pytest.mark.parametrize("which", ["pp", "fd"])
def test_duplicates_share_keys_and_are_counted(which, request):
    summary, _, days, _ = request.getfixturevalue(which)
    spec = PP_SPEC if which == "pp" else FD_SPEC
    by_key: dict[tuple, list[tuple[date, str]]] = defaultdict(list)
    n_records = 0
    for d in days:
        for rec, line, _ in d.records:
            by_key[dedup_key(rec)].append((d.day, line))
            n_records += 1
    copies = sum(len(v) - 1 for v in by_key.values())
    assert copies == summary.duplicates > 0
    assert n_records - copies == summary.events
    assert 0.5 * spec.duplicate_share < summary.duplicates / summary.events < 2 * spec.duplicate_share
    same_day = [v for v in by_key.values() if len(v) > 1 and v[0][0] == v[1][0]]
    next_day = [v for v in by_key.values() if len(v) > 1 and v[0][0] != v[1][0]]
    assert same_day and next_day
    assert all(v[0][1] == v[1][1] for v in same_day)  # in-day copies are byte-identical
    for v in next_day:  # late re-sends: same key, later processing time, in the next day's file
        assert v[1][0] == v[0][0] + timedelta(days=1)
        a, b = json.loads(v[0][1])["properties"], json.loads(v[1][1])["properties"]
        assert b["mp_processing_time_ms"] > a["mp_processing_time_ms"]
    assert len(next_day) == summary.late_duplicates


@pytest.mark.parametrize("which", ["pp", "fd"])
def test_malformed_lines_present_and_counted(which, request):
    summary, _, days, _ = request.getfixturevalue(which)
    spec = PP_SPEC if which == "pp" else FD_SPEC
    found = Counter()
    for d in days:
        found.update(d.bad)
    expected = {k: v for k, v in summary.malformed.items() if v}
    assert dict(found) == expected
    assert sum(v for k, v in summary.malformed.items() if k != "terminated_early") == spec.malformed_per_day * spec.days
    for kind in ("truncated", "split", "missing_distinct_id", "string_time"):
        assert found[kind] > 0, kind
    if which == "pp":
        assert found["terminated_early"] >= 1
    else:
        assert found["terminated_early"] == 0  # object storage has no export-API "terminated early"
    joined = [json.loads(s) for d in days for s in d.split_joined]
    assert all(r["properties"]["distinct_id"] and isinstance(r["properties"]["time"], int) for r in joined)


def test_terminated_early_is_the_last_line_of_its_file(pp):
    _, out, _, _ = pp
    hits = 0
    for f in sorted(out.glob("*.jsonl.gz")):
        lines = physical_lines(f)
        if "terminated early" in lines:
            assert lines.index("terminated early") == len(lines) - 1
            hits += 1
    assert hits >= 1


def test_no_dirt_when_disabled(tmp_path):
    spec = DemoSpec(
        "powerplay", n_users=100, start=date(2024, 1, 1), days=5, ms_share=0.0, duplicate_share=0.0, malformed_per_day=0
    )
    s = generate_demo(spec, tmp_path)
    days = read_all(spec, tmp_path)
    assert s.duplicates == 0 and sum(s.malformed.values()) == 0
    assert all(not d.bad for d in days)
    assert all(r["properties"]["time"] < 100_000_000_000 for d in days for r, _, _ in d.records)
    assert sum(len(d.records) for d in days) == s.events


# ------------------------------------------------------------------------------------------- identities
def test_anonymous_then_identified_users(pp):
    _, _, days, truth = pp
    by_did: dict[str, list[dict]] = defaultdict(list)
    for d in days:
        for rec, _, _ in d.records:
            by_did[rec["properties"]["distinct_id"]].append(rec)
    identify = {r["properties"]["$identified_id"]: r for v in by_did.values() for r in v if r["event"] == "$identify"}
    alias = {r["properties"]["alias"]: r for v in by_did.values() for r in v if r["event"] == "$create_alias"}

    checked = Counter()
    for row in truth.iter_rows(named=True):
        uid, dev, anon = row["user_id"], row["device_id"], row["anon_distinct_id"]
        signup = int(row["signup_time"].timestamp())
        mine = by_did.get(uid, [])
        assert mine, uid  # everyone signs up inside the window
        assert all(seconds(r["properties"]["time"]) >= signup - 1 for r in mine)
        anon_events = by_did.get(anon, [])
        assert all(seconds(r["properties"]["time"]) <= signup for r in anon_events)
        sign_ups = [r for r in mine if r["event"] == "Sign Up"]
        assert len(sign_ups) >= 1
        if row["id_merge"] == "simplified":
            assert anon == f"$device:{dev}"
            assert all(r["properties"]["$device_id"] == dev for r in anon_events)
            assert sign_ups[0]["properties"]["$device_id"] == dev
            assert sign_ups[0]["properties"]["$user_id"] == uid
            assert all(r["properties"]["$user_id"] == uid for r in mine if not r["event"].startswith("$"))
            mobile = row["platform"] != "web"
            assert all(("$device_id" in r["properties"]) == mobile for r in mine if r["event"] != "Sign Up")
            checked["simplified"] += bool(anon_events)
        elif row["id_merge"] == "identify":
            assert anon == dev
            ident = identify[uid]["properties"]
            assert ident["$anon_distinct_id"] == anon and ident["distinct_id"] == uid
            assert all("$user_id" not in r["properties"] for r in mine)
            checked["identify"] += bool(anon_events)
        else:
            al = alias[uid]["properties"]
            assert al["distinct_id"] == anon == dev
            checked["alias"] += 1
    assert checked["simplified"] > 100 and checked["identify"] > 5 and checked["alias"] >= 1

    known = set(truth["anon_distinct_id"]) | set(truth["user_id"])
    never = [did for did in by_did if did not in known]
    assert never and all(
        all(r["event"] in ("App Open", "Login", "Page View", "Onboarding Viewed") for r in by_did[did]) for did in never
    )
    assert any(did.startswith("$device:") for did in never)


# ---------------------------------------------------------------------------------------- drift support
def test_behaviour_change_halves_the_event_rate(tmp_path):
    kw = dict(customer="powerplay", n_users=1000, start=date(2024, 1, 1), days=20, seed=21)
    change = BehaviourChange(start=date(2024, 1, 11), event="Task Created", factor=0.5)
    base, changed = DemoSpec(**kw), DemoSpec(**kw, behaviour_change=change)
    generate_demo(base, tmp_path / "base")
    generate_demo(changed, tmp_path / "changed")
    # the hidden truth does not depend on the behaviour change
    assert pl.read_parquet(tmp_path / "base" / "truth.parquet").equals(
        pl.read_parquet(tmp_path / "changed" / "truth.parquet")
    )
    # before the change the files are byte-identical
    for k in range(10):
        name = f"{kw['start'] + timedelta(days=k)}.jsonl.gz"
        assert (tmp_path / "base" / name).read_bytes() == (tmp_path / "changed" / name).read_bytes()

    def counts(spec, out):
        before, after, other_after = 0, 0, 0
        for d in read_all(spec, out):
            for rec in {dedup_key(r): r for r, _, _ in d.records}.values():
                if local_date(rec["properties"]["time"], "Asia/Kolkata") != d.day:
                    continue
                if rec["event"] == "Task Created":
                    if d.day < change.start:
                        before += 1
                    else:
                        after += 1
                elif d.day >= change.start and rec["event"] == "Task Completed":
                    other_after += 1
        return before, after, other_after

    b0, a0, o0 = counts(base, tmp_path / "base")
    b1, a1, o1 = counts(changed, tmp_path / "changed")
    assert b0 == b1 > 500
    assert 0.44 < a1 / a0 < 0.56
    assert abs(o1 / o0 - 1) < 0.01  # other events untouched (but for malformed-line victims)


def test_behaviour_change_rejects_outcome_events(tmp_path):
    bad = BehaviourChange(start=date(2024, 1, 2), event="Subscription Purchased", factor=0.5)
    with pytest.raises(ValueError):
        generate_demo(DemoSpec("powerplay", n_users=10, start=date(2024, 1, 1), days=2, behaviour_change=bad), tmp_path)


def test_unknown_customer_and_summary_type(tmp_path):
    with pytest.raises(ValueError):
        generate_demo(DemoSpec("acme", n_users=10, start=date(2024, 1, 1), days=2), tmp_path)
    s = generate_demo(DemoSpec("foodie", n_users=20, start=date(2024, 1, 1), days=2), tmp_path)
    assert isinstance(s, DemoSummary) and s.customer == "foodie" and s.days == 2 and s.out_dir == tmp_path
