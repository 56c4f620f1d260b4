"""Growth analytics: numbers checked by hand on a tiny warehouse, and against independent plain SQL on a
generated one."""

import json
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from growth_pipeline.config import REPO_ROOT, ObjectStorageSource, Paths, customer_like, load_customers
from growth_pipeline.lib.analytics import marts as ga
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.warehouse.connection import open_warehouse
from growth_pipeline_tests.warehouse_builder import load_days

AS_OF = date(2026, 2, 28)
D = date.fromisoformat


def _tiny(con):
    """Four signed-up users and one anonymous visitor, with known purchases."""
    con.execute("""
        CREATE SCHEMA core; CREATE SCHEMA raw;
        CREATE TABLE core.user_daily (day DATE, user_key VARCHAR, events INTEGER, sessions INTEGER, revenue DOUBLE,
            purchases INTEGER, goals INTEGER, signups INTEGER, churn_events INTEGER, channel VARCHAR,
            platform VARCHAR, country VARCHAR, city VARCHAR);
        CREATE TABLE core.user_daily_events (day DATE, user_key VARCHAR, event VARCHAR, n INTEGER);
        CREATE TABLE core.identities (id VARCHAR, user_key VARCHAR, is_identified BOOLEAN);
        CREATE TABLE raw.events (event VARCHAR, distinct_id VARCHAR, event_date DATE, properties JSON);""")
    rows = [  # day, user, events, revenue, purchases, signups, channel
        ("2026-01-05", "u1", 3, 0, 0, 1, "facebook"),
        ("2026-01-06", "u1", 2, 10, 1, 0, None),
        ("2026-01-20", "u1", 4, 30, 2, 0, None),
        ("2026-02-10", "u1", 1, 20, 1, 0, None),
        ("2026-01-07", "u2", 2, 0, 0, 1, "facebook"),
        ("2026-01-14", "u2", 1, 0, 0, 0, None),
        ("2026-01-12", "u3", 2, 50, 1, 1, "reddit"),
        ("2026-01-12", "u4", 1, 0, 0, 1, None),
        ("2026-01-12", "anon", 5, 0, 0, 0, "reddit"),
        ("2026-03-05", "u4", 9, 99, 3, 0, None),  # after the as-of date: ignored
    ]
    for day, user, ev, rev, pur, sig, ch in rows:
        con.execute(
            "INSERT INTO core.user_daily VALUES (?, ?, ?, 1, ?, ?, 0, ?, 0, ?, 'web', 'IN', 'Pune')",
            [D(day), user, ev, rev, pur, sig, ch],
        )
        con.execute("INSERT INTO core.user_daily_events VALUES (?, ?, 'Like', ?)", [D(day), user, ev])
    for user in ("u1", "u2", "u3", "u4"):
        con.execute("INSERT INTO core.identities VALUES (?, ?, true)", [user, user])
    for day, user, cuisine, price in (
        ("2026-01-06", "u1", "thai", 10),
        ("2026-01-20", "u1", "thai", 15),
        ("2026-01-20", "u1", "french", 15),
        ("2026-02-10", "u1", "thai", 20),
        ("2026-01-12", "u3", "french", 50),
    ):
        con.execute(
            "INSERT INTO raw.events VALUES ('Buy', ?, ?, ?)",
            [user, D(day), json.dumps({"cuisine": cuisine, "price": price})],
        )


@pytest.fixture
def tiny(tmp_path):
    base = load_customers(REPO_ROOT / "customers.yaml").get("foodie")
    customer = customer_like(base, "tiny", tmp_path)
    con = duckdb.connect(str(tmp_path / "tiny.duckdb"))
    _tiny(con)
    yield con, customer
    con.close()


def _run(con, customer, name):
    return ga.run_analysis(con, customer, name, AS_OF)


def test_channels_actions_and_category_purchases_by_hand(tiny):
    con, customer = tiny
    out = _run(con, customer, "channels")
    ch = {r["channel"]: r for r in out.tables["channels"].iter_rows(named=True)}
    assert set(ch) == {"facebook", "reddit", "direct"}  # the anonymous visitor is not a user
    assert (ch["facebook"]["users"], ch["facebook"]["paying_users"], ch["facebook"]["revenue"]) == (2, 1, 60.0)
    assert ch["facebook"]["revenue_per_user"] == 30.0 and ch["reddit"]["revenue_per_paying_user"] == 50.0
    assert ch["direct"]["users"] == 1 and ch["direct"]["revenue"] == 0.0  # u4: no channel -> the default
    acts = {(r["channel"], r["event"]): r for r in out.tables["channel_actions"].iter_rows(named=True)}
    assert acts[("facebook", "Like")]["events"] == 13 and acts[("facebook", "Like")]["events_per_user"] == 6.5
    cat = {
        (r["category"], r["channel"]): r["purchases"] for r in out.tables["category_purchases"].iter_rows(named=True)
    }
    assert cat == {("thai", "facebook"): 3, ("french", "facebook"): 1, ("french", "reddit"): 1}
    assert set(out.charts) >= {
        "users_by_channel.png",
        "revenue_by_channel.png",
        "purchases_by_category_and_channel.png",
    }


def test_ltv_per_channel_by_hand(tiny):
    """facebook: u1 paid 60 in 4 orders (AOV 15) over 2 buying months (2 orders a month), 2 buying months in the
    year: 15 x 2 x 2 = 60 per paying user; half the channel's users pay: 30 per user. reddit: 50 x 1 x 1."""
    con, customer = tiny
    ltv = {r["channel"]: r for r in _run(con, customer, "channel_ltv").tables["channel_ltv"].iter_rows(named=True)}
    fb = ltv["facebook"]
    assert (fb["average_order_value"], fb["purchases_per_month"], fb["retention_months"]) == (15.0, 2.0, 2.0)
    assert fb["ltv"] == 60.0 and fb["ltv_per_user"] == 30.0
    assert ltv["reddit"]["ltv"] == 50.0 and ltv["direct"]["ltv"] is None


def test_cohorts_top_users_and_campaign_lift_by_hand(tiny):
    con, customer = tiny
    ret = _run(con, customer, "cohort_retention").tables["cohort_retention"]
    first = dict(ret.filter(pl.col("cohort_week") == D("2026-01-05")).select("week_number", "retention").iter_rows())
    assert first[0] == 1.0 and first[1] == 0.5 and first[2] == 0.5 and first[3] == 0.0 and first[5] == 0.5
    assert max(first) == 6  # week 7 (Feb 23 - Mar 1) is not complete on Feb 28
    top = _run(con, customer, "top_users").tables["top_users"]
    assert top.select("rank", "user_key", "revenue").rows() == [(1, "u1", 60.0), (2, "u3", 50.0)]
    lift = _run(con, customer, "campaign_lift").tables["campaign_lift"]
    assert lift["campaign_a"][0] == "facebook" and lift["campaign_b"][0] in ("reddit", "direct")
    customer = customer.model_copy(
        update={
            "analytics": customer.analytics.model_copy(update={"campaign_a": ["facebook"], "campaign_b": ["reddit"]})
        }
    )
    lift = {
        r["day_since_signup"]: r
        for r in _run(con, customer, "campaign_lift").tables["campaign_lift"].iter_rows(named=True)
    }
    assert (lift[0]["rate_a"], lift[0]["rate_b"]) == (0.0, 1.0)
    assert (lift[1]["rate_a"], lift[1]["lift"]) == (0.5, 0.5) and lift[30]["rate_a"] == 0.5


def test_rerun_replaces_the_as_of_rows(tiny):
    con, customer = tiny
    for _ in range(2):
        _run(con, customer, "channels")
        _run(con, customer, "cohort_retention")
    assert con.execute("SELECT count(*) FROM marts.channels").fetchall()[0][0] == 3
    n = con.execute("SELECT count(*) FROM marts.cohort_retention").fetchall()[0][0]
    _run(con, customer, "cohort_retention")
    assert con.execute("SELECT count(*) FROM marts.cohort_retention").fetchall()[0][0] == n


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("analytics")
    start, days = date(2026, 1, 1), 70
    generate_demo(DemoSpec("foodie", n_users=600, start=start, days=days, seed=4), root / "src")
    base = load_customers(REPO_ROOT / "customers.yaml").get("foodie")
    customer = customer_like(base, "fd", root / "src")  # the food site writes Mixpanel's pipeline layout:
    customer = customer.model_copy(
        update={
            "source": ObjectStorageSource(  # keep that source kind
                kind="object_storage", path=str(root / "src"), project_id="2195193"
            )
        }
    )
    paths = Paths(root / "home")
    with open_warehouse(paths.warehouse("fd")) as con:
        load_days(con, customer, paths, start, start + timedelta(days=days - 1))
        as_of = ga.latest_day(con)
        for name in ga.ANALYSES:
            ga.run_analysis(con, customer, name, as_of)
    con = duckdb.connect(str(paths.warehouse("fd")), read_only=True)
    yield con, customer, as_of
    con.close()


def test_analytics_agree_with_plain_sql_on_a_generated_warehouse(demo_warehouse):
    con, customer, as_of = demo_warehouse
    # users and revenue per channel: first channel of each signed-up user, written differently
    expected = dict(
        con.execute("""
        WITH first_channel AS (
            SELECT DISTINCT ON (user_key) user_key, channel FROM core.user_daily
            WHERE channel IS NOT NULL ORDER BY user_key, day),
        users AS (SELECT DISTINCT user_key FROM core.user_daily WHERE signups > 0)
        SELECT coalesce(f.channel, 'direct'), count(*) FROM users u LEFT JOIN first_channel f USING (user_key)
        GROUP BY 1""").fetchall()
    )
    got = dict(con.execute("SELECT channel, users FROM marts.channels WHERE as_of = ?", [as_of]).fetchall())
    assert got == expected and sum(got.values()) > 300
    revenue = con.execute(
        "SELECT sum(revenue) FROM core.user_daily WHERE user_key IN "
        "(SELECT user_key FROM core.user_daily WHERE signups > 0)"
    ).fetchall()[0][0]
    assert con.execute("SELECT sum(revenue) FROM marts.channels").fetchall()[0][0] == pytest.approx(revenue)
    # purchases by cuisine: every Buy event of a signed-up user, counted straight from raw.events
    buys = con.execute("""SELECT count(*) FROM raw.events e JOIN core.identities i ON i.id = e.distinct_id
                          WHERE e.event = 'Buy' AND i.user_key IN
                          (SELECT user_key FROM core.user_daily WHERE signups > 0)""").fetchall()[0][0]
    assert con.execute("SELECT sum(purchases) FROM marts.category_purchases").fetchall()[0][0] == buys > 0
    # the top user is the one with the most revenue
    best = con.execute(
        "SELECT user_key, sum(revenue) r FROM core.user_daily GROUP BY 1 ORDER BY r DESC, user_key LIMIT 1"
    ).fetchall()[0]
    assert con.execute("SELECT user_key, revenue FROM marts.top_users WHERE rank = 1").fetchall()[0] == pytest.approx(
        best
    )
    # week-1 retention of the first cohort, counted by hand in Python
    daily = pl.DataFrame(con.sql("SELECT user_key, day, signups, events FROM core.user_daily"))
    signup = daily.filter(pl.col("signups") > 0).group_by("user_key").agg(pl.col("day").min().alias("s"))
    signup = signup.with_columns((pl.col("s") - pl.duration(days=pl.col("s").dt.weekday() - 1)).alias("week"))
    week = signup["week"].min()
    members = set(signup.filter(pl.col("week") == week)["user_key"])
    active = set(
        daily.filter(
            pl.col("user_key").is_in(list(members))
            & (pl.col("events") > 0)
            & pl.col("day").is_between(week + timedelta(days=7), week + timedelta(days=13))
        )["user_key"]
    )
    got = con.execute(
        "SELECT cohort_users, active_users FROM marts.cohort_retention WHERE cohort_week = ? AND week_number = 1",
        [week],
    ).fetchall()[0]
    assert got == (len(members), len(active))
    # LTV per channel: AOV x purchases per month x retention months, recomputed in Polars for the biggest channel
    ch = con.execute("SELECT channel FROM marts.channels ORDER BY users DESC LIMIT 1").fetchall()[0][0]
    users = pl.DataFrame(
        con.sql("""SELECT user_key, arg_min(channel, day) FILTER (WHERE channel IS NOT NULL) AS ch
                                    FROM core.user_daily GROUP BY 1 HAVING max(signups) > 0""")
    )
    members = users.filter(pl.col("ch") == ch)["user_key"]
    buys = daily.join(
        pl.DataFrame(con.sql("SELECT user_key, day, purchases, revenue FROM core.user_daily WHERE purchases > 0")),
        on=["user_key", "day"],
    ).filter(pl.col("user_key").is_in(members.implode()))
    per_user = buys.group_by("user_key").agg(
        pl.col("purchases").sum(), pl.col("revenue").sum(), pl.col("day").dt.truncate("1mo").n_unique().alias("months")
    )
    aov = per_user["revenue"].sum() / per_user["purchases"].sum()
    expected_ltv = aov * (per_user["purchases"] / per_user["months"]).mean() * per_user["months"].mean()
    got_ltv = con.execute("SELECT ltv FROM marts.channel_ltv WHERE channel = ?", [ch]).fetchall()[0][0]
    assert got_ltv == pytest.approx(expected_ltv)
