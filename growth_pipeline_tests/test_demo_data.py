"""Tests of the demo-data generator: layout, dirt, identity merge, hidden truth and the oracle."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from growth_pipeline.lib.demo.apps import CUISINES
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DEMO_TIMEZONES, BehaviourChange, DemoSpec, DemoSummary
from growth_pipeline.lib.demo.truth import true_outcome_probability
from growth_pipeline.lib.demo.writer import day_files_for

PP_SPEC = DemoSpec("powerplay", n_users=500, start=date(2024, 1, 1), days=30, seed=11)
# spans the US daylight-saving switch of 2024-03-10 (a 23-hour local day)
FD_SPEC = DemoSpec("foodie", n_users=400, start=date(2024, 3, 5), days=12, seed=5)


# ------------------------------------------------------------------------------------------------ reading
def physical_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1] if text else []


def seconds(t: int) -> int:
    return t // 1000 if t >= 100_000_000_000 else t


class Day:
    """One day's files read back: valid records (with their raw line) and malformed lines by kind."""

    def __init__(self, day: date, files: list[Path]):
        self.day = day
        self.records: list[tuple[dict, str, str]] = []  # (record, line, file name)
        self.bad: Counter = Counter()
        self.split_joined: list[str] = []
        for f in files:
            lines = physical_lines(f)
            i = 0
            while i < len(lines):
                ln = lines[i]
                if ln == "terminated early":
                    self.bad["terminated_early"] += 1
                    i += 1
                    continue
                try:
                    rec = json.loads(ln)
                except ValueError:
                    if i + 1 < len(lines):
                        try:
                            json.loads(ln + lines[i + 1])
                        except ValueError:
                            pass
                        else:
                            self.bad["split"] += 1
                            self.split_joined.append(ln + lines[i + 1])
                            i += 2
                            continue
                    self.bad["truncated"] += 1
                    i += 1
                    continue
                props = rec["properties"]
                if "distinct_id" not in props:
                    self.bad["missing_distinct_id"] += 1
                elif isinstance(props["time"], str):
                    self.bad["string_time"] += 1
                else:
                    self.records.append((rec, ln, f.name))
                i += 1


def read_all(spec: DemoSpec, out: Path) -> list[Day]:
    return [
        Day(spec.start + timedelta(days=k), day_files_for(spec, out, spec.start + timedelta(days=k)))
        for k in range(spec.days)
    ]


def dedup_key(rec: dict) -> tuple:
    p = rec["properties"]
    return rec["event"], p["distinct_id"], p["time"], p["$insert_id"]


def local_date(t: int, tz: str) -> date:
    return datetime.fromtimestamp(seconds(t), ZoneInfo(tz)).date()


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Rank-based AUC (Mann-Whitney U) with average ranks for ties."""
    y = np.asarray(y, dtype=bool)
    ranks = pl.Series(score).rank("average").to_numpy()
    n1, n0 = y.sum(), (~y).sum()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def pp(tmp_path_factory):
    out = tmp_path_factory.mktemp("powerplay")
    summary = generate_demo(PP_SPEC, out)
    return summary, out, read_all(PP_SPEC, out), pl.read_parquet(out / "truth.parquet")


@pytest.fixture(scope="module")
def fd(tmp_path_factory):
    out = tmp_path_factory.mktemp("foodie")
    summary = generate_demo(FD_SPEC, out)
    return summary, out, read_all(FD_SPEC, out), pl.read_parquet(out / "truth.parquet")


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


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


# ------------------------------------------------------------------------------------------------ truth
def user_events(days: list[Day], truth: pl.DataFrame) -> dict[str, list[tuple[int, str, dict]]]:
    """Events per user id (identified and anonymous ids mapped), each (time s, event, properties)."""
    anon_to_user = dict(zip(truth["anon_distinct_id"], truth["user_id"], strict=False))
    out: dict[str, list] = defaultdict(list)
    for d in days:
        for rec, _, _ in d.records:
            p = rec["properties"]
            uid = anon_to_user.get(p["distinct_id"], p["distinct_id"])
            out[uid].append((seconds(p["time"]), rec["event"], p))
    return out


@pytest.mark.parametrize("which", ["pp", "fd"])
def test_truth_one_row_per_user_and_consistent_with_events(which, request):
    summary, out, days, truth = request.getfixturevalue(which)
    spec = PP_SPEC if which == "pp" else FD_SPEC
    meta = json.loads((out / "truth.json").read_text())
    goal_ev, conv_ev = meta["goal_event"], meta["conversion_event"]
    assert truth.height == spec.n_users == summary.users
    assert truth["user_id"].n_unique() == truth.height and truth["device_id"].n_unique() == truth.height
    for c in (
        "user_id",
        "device_id",
        "signup_time",
        "channel",
        "platform",
        "city",
        "engagement",
        "price_sensitivity",
        "churn_hazard",
        "activity_rate",
        "conversion_hazard",
        "purchase_rate",
        "mean_order_value",
        "goal_hazard",
        "churn_time",
        "conversion_time",
        "goal_time",
    ):
        assert c in truth.columns, c
    for c in ("churn_hazard", "conversion_hazard", "goal_hazard", "fade_exit_hazard"):
        assert truth[c].min() > 0 and truth[c].max() <= 1
    assert truth["churn_time"].is_not_null().sum() > 5
    assert truth["conversion_time"].is_not_null().sum() > 5
    assert truth["goal_time"].is_not_null().sum() > 5

    ev = user_events(days, truth)
    for row in truth.iter_rows(named=True):
        mine = ev[row["user_id"]]
        times = [t for t, _, _ in mine]
        if row["churn_time"] is not None:
            assert max(times) < row["churn_time"].timestamp()
            assert row["churn_date"] > row["signup_date"]
            assert row["fade_start_time"] <= row["churn_time"]
        conv = [t for t, e, _ in mine if e == conv_ev]
        if row["conversion_time"] is None:
            assert not conv
        else:
            assert min(conv) == row["conversion_time"].timestamp() >= row["signup_time"].timestamp()
        goals = [t for t, e, _ in mine if e == goal_ev]
        if row["goal_time"] is None:
            assert not goals
        else:
            assert min(goals) == row["goal_time"].timestamp()


def test_truth_json_documents_the_generator(pp):
    _, out, _, _ = pp
    meta = json.loads((out / "truth.json").read_text())
    assert meta["timezone"] == "Asia/Kolkata" and meta["layout"] == "export_api"
    assert meta["spec"]["seed"] == PP_SPEC.seed
    assert set(meta["formulas"]) >= {"churn_hazard", "conversion_hazard", "goal_hazard", "mean_order_value"}
    assert meta["truth_rows"] == PP_SPEC.n_users
    assert meta["goal_event"] == "Project Created" and meta["conversion_event"] == "Subscription Purchased"


def test_activity_declines_before_gradual_churn(tmp_path):
    spec = DemoSpec(
        "powerplay", n_users=2500, start=date(2024, 1, 1), days=90, seed=2, malformed_per_day=0, duplicate_share=0.0
    )
    generate_demo(spec, tmp_path)
    truth = pl.read_parquet(tmp_path / "truth.parquet")
    ev = user_events(read_all(spec, tmp_path), truth)
    churned = truth.filter(
        pl.col("churn_date").is_not_null() & ((pl.col("churn_date") - pl.col("signup_date")).dt.total_days() >= 29)
    )
    ratios = {}
    for gradual in (True, False):
        sel = churned.filter((pl.col("fade_exit_hazard") < 1) == gradual)
        early = late = 0
        for row in sel.iter_rows(named=True):
            ct = row["churn_time"].timestamp()
            ts = np.array([t for t, _, _ in ev[row["user_id"]]])
            early += ((ts >= ct - 28 * 86400) & (ts < ct - 14 * 86400)).sum()
            late += ((ts >= ct - 14 * 86400) & (ts < ct)).sum()
        assert sel.height > 40
        ratios[gradual] = late / early
    # per user-day, fading users do less than half of what they did in the two weeks before fading
    faded = truth.filter(
        pl.col("churn_date").is_not_null()
        & (pl.col("fade_exit_hazard") < 1)
        & (pl.col("churn_date") > pl.col("fade_start_date"))
        & ((pl.col("fade_start_date") - pl.col("signup_date")).dt.total_days() >= 15)
    )
    before_fade = in_fade = fade_days = 0
    for row in faded.iter_rows(named=True):
        ct, ft = row["churn_time"].timestamp(), row["fade_start_time"].timestamp()
        ts = np.array([t for t, _, _ in ev[row["user_id"]]])
        before_fade += ((ts >= ft - 14 * 86400) & (ts < ft)).sum()
        in_fade += ((ts >= ft) & (ts < ct)).sum()
        fade_days += round((ct - ft) / 86400)
    assert faded.height > 40
    assert in_fade / fade_days < 0.6 * before_fade / (14 * faded.height)
    # the last two weeks before a gradual churn are visibly quieter than the two weeks before them
    assert ratios[True] < 0.8 and ratios[True] < ratios[False] - 0.15


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


# ------------------------------------------------------------------------------------------------ oracle
@pytest.fixture(scope="module")
def oracle_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    spec = DemoSpec("powerplay", n_users=4000, start=date(2024, 1, 1), days=75, seed=13)
    generate_demo(spec, out)
    return spec, out, pl.read_parquet(out / "truth.parquet")


def realised(truth: pl.DataFrame, probs: pl.DataFrame, col: str, as_of: date, h: int) -> np.ndarray:
    j = probs.join(truth.select("user_id", col), on="user_id", how="left", maintain_order="left")
    return (j[col].is_not_null() & (j[col] > as_of) & (j[col] <= as_of + timedelta(days=h))).to_numpy()


@pytest.mark.parametrize(
    "kind,col", [("churn", "churn_date"), ("conversion", "conversion_date"), ("goal", "goal_date")]
)
def test_oracle_probabilities_rank_and_calibrate_realised_outcomes(oracle_data, kind, col):
    spec, _, truth = oracle_data
    as_of, h = spec.start + timedelta(days=40), 30
    probs = true_outcome_probability(truth, kind, as_of, h)
    assert probs.columns == ["user_id", "probability"]
    p = probs["probability"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    y = realised(truth, probs, col, as_of, h)
    assert len(y) > 500 and 10 < y.sum() < len(y) - 10
    assert auc(y, p) > 0.6
    se = np.sqrt(p.mean() * (1 - p.mean()) / len(p))
    assert abs(p.mean() - y.mean()) < 4 * se + 0.005  # the oracle is calibrated


def test_oracle_populations(oracle_data):
    spec, _, truth = oracle_data
    as_of = spec.start + timedelta(days=40)

    def before(c):
        return pl.col(c).is_not_null() & (pl.col(c) <= as_of)

    signed = truth.filter(pl.col("signup_date") <= as_of)
    alive = signed.filter(~before("churn_date"))
    assert true_outcome_probability(truth, "churn", as_of, 7).height == alive.height
    assert (
        true_outcome_probability(truth, "conversion", as_of, 7).height
        == alive.filter(~before("conversion_date")).height
    )
    assert true_outcome_probability(truth, "goal", as_of, 7).height == alive.filter(~before("goal_date")).height
    ltv = true_outcome_probability(truth, "ltv", as_of, 30)
    assert ltv.columns == ["user_id", "expected_revenue"] and ltv.height == signed.height
    dead = set(signed.filter(before("churn_date"))["user_id"])
    assert (ltv.filter(pl.col("user_id").is_in(list(dead)))["expected_revenue"] == 0).all()
    assert (ltv["expected_revenue"] >= 0).all()
    # longer horizons never lower a churn probability; hidden_state=False is a weaker reference
    p7 = true_outcome_probability(truth, "churn", as_of, 7)["probability"].to_numpy()
    p30 = true_outcome_probability(truth, "churn", as_of, 30)["probability"].to_numpy()
    assert (p30 >= p7 - 1e-12).all()
    with pytest.raises(ValueError):
        true_outcome_probability(truth, "nope", as_of, 7)


def test_oracle_churn_formula_matches_closed_form(oracle_data):
    spec, _, truth = oracle_data
    as_of, h = spec.start + timedelta(days=40), 21
    probs = true_outcome_probability(truth, "churn", as_of, h).join(truth, on="user_id", maintain_order="left")
    p, q = probs["churn_hazard"].to_numpy(), probs["fade_exit_hazard"].to_numpy()
    in_b = (probs["fade_start_date"].is_not_null() & (probs["fade_start_date"] <= as_of)).to_numpy()
    j = np.arange(1, h + 1)[None, :]
    in_a_closed = (
        1 - (1 - p) ** h - (((1 - p[:, None]) ** (j - 1)) * p[:, None] * (1 - q[:, None]) ** (h - j + 1)).sum(1)
    )
    expected = np.where(in_b, 1 - (1 - q) ** h, in_a_closed)
    np.testing.assert_allclose(probs["probability"].to_numpy(), expected, atol=1e-9)
    abrupt = (q == 1) & ~in_b
    np.testing.assert_allclose(probs["probability"].to_numpy()[abrupt], 1 - (1 - p[abrupt]) ** h, atol=1e-9)


def test_silence_posterior_matches_a_simulation_of_the_daily_process():
    """Users engaged at the end of an active day, then silent for r days: the share of them that churned (or is
    fading) equals what simulating the generator's process and keeping the silent ones gives."""
    from growth_pipeline.lib.demo.oracle import silence_posterior
    from growth_pipeline.lib.demo.spec import FADE_ACTIVITY_DECAY

    rng = np.random.default_rng(5)
    n, p, q, rate, r = 400_000, 0.06, 0.1, 0.8, 6
    state = np.zeros(n, dtype=np.int8)  # 0 engaged, 1 fading, 2 churned
    age = np.zeros(n, dtype=np.int64)
    silent = np.ones(n, dtype=bool)
    for _ in range(r):
        age[state == 1] += 1
        to_b = (state == 0) & (rng.random(n) < p)
        state[to_b], age[to_b] = 1, 0
        state[(state == 1) & (rng.random(n) < q)] = 2
        lam = np.select([state == 0, state == 1], [rate, rate * FADE_ACTIVITY_DECAY ** (age + 1)], 0.0)
        silent &= rng.poisson(lam) == 0
    kept = state[silent]
    pa, pb, pd = silence_posterior(np.array([p, p]), np.array([q, q]), np.array([rate, rate]), np.array([r, 0]))
    assert kept.size > 5_000
    for value, k in ((pa[0], 0), (pb[0], 1), (pd[0], 2)):
        share = (kept == k).mean()
        assert abs(value - share) < 4 * np.sqrt(share * (1 - share) / kept.size) + 1e-3
    assert (pa[1], pb[1], pd[1]) == (1.0, 0.0, 0.0)  # no silence yet: engaged, as assumed
    assert pd[0] > 0.05  # and silence is real evidence of churn


def test_observed_state_oracle_sits_between_a_silent_and_an_active_user(oracle_data):
    """oracle_observed: for a user active today it is the traits oracle; the longer the silence, the higher the
    churn probability and the lower the chance of converting; it still ranks realised outcomes."""
    from growth_pipeline.lib.demo.oracle import observed_state_probability
    from growth_pipeline.lib.models.labels import DEFAULTS

    spec, _, truth = oracle_data
    as_of = spec.start + timedelta(days=40)
    churn = DEFAULTS["churn"]
    alive = true_outcome_probability(truth, "churn", as_of, churn.horizon_days, hidden_state=False)
    test = alive.select(pl.col("user_id").alias("user_key"), pl.lit(0).alias("recency_days"))
    active = observed_state_probability(truth, test, as_of, churn)
    np.testing.assert_allclose(active, alive["probability"].to_numpy(), atol=1e-9)
    quiet = observed_state_probability(truth, test.with_columns(pl.lit(10).alias("recency_days")), as_of, churn)
    assert (quiet >= active - 1e-12).all() and (quiet > active + 0.05).mean() > 0.5
    conv = DEFAULTS["conversion"]
    c_test = true_outcome_probability(truth, "conversion", as_of, conv.horizon_days).select(
        pl.col("user_id").alias("user_key"), pl.lit(0).alias("recency_days")
    )
    c0 = observed_state_probability(truth, c_test, as_of, conv)
    c10 = observed_state_probability(truth, c_test.with_columns(pl.lit(10).alias("recency_days")), as_of, conv)
    assert (c10 <= c0 + 1e-12).all()
    # and it ranks who really churns
    y = realised(truth, alive, "churn_date", as_of, churn.horizon_days)
    assert auc(y, active) > 0.6


def test_oracle_expected_revenue_matches_realised(oracle_data):
    spec, out, truth = oracle_data
    as_of, h = spec.start + timedelta(days=35), 30
    ltv = true_outcome_probability(truth, "ltv", as_of, h)
    users = set(ltv["user_id"])  # signed up by as_of: later sign-ups are not part of the expectation
    revenue = 0.0
    for k in range(36, 66):
        day = spec.start + timedelta(days=k)
        d = Day(day, day_files_for(spec, out, day))
        seen = set()
        for rec, _, _ in d.records:
            if (
                rec["event"] != "Subscription Purchased"
                or dedup_key(rec) in seen
                or rec["properties"]["distinct_id"] not in users
            ):
                continue
            seen.add(dedup_key(rec))
            if local_date(rec["properties"]["time"], "Asia/Kolkata") == day:
                revenue += rec["properties"]["amount"]
    expected = ltv["expected_revenue"].sum()
    assert revenue > 0
    assert abs(revenue / expected - 1) < 0.15


def test_unknown_customer_and_summary_type(tmp_path):
    with pytest.raises(ValueError):
        generate_demo(DemoSpec("acme", n_users=10, start=date(2024, 1, 1), days=2), tmp_path)
    s = generate_demo(DemoSpec("foodie", n_users=20, start=date(2024, 1, 1), days=2), tmp_path)
    assert isinstance(s, DemoSummary) and s.customer == "foodie" and s.days == 2 and s.out_dir == tmp_path
