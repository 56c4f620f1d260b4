"""Any event or property name works: JSON reads through bound JSON pointers, one readable feature per name.

The end-to-end test loads a tiny customer whose events and properties are named with quotes, dots, ``$``,
backslashes, ``/`` and ``~``, case twins (``Plan`` / ``plan``), ``Task Created`` / ``task_created`` and
Devanagari, with the same kinds of names in customers.yaml (channel, revenue, category properties and a goal
condition), through the real steps: raw events, identities, catalogue, user_daily, user_features, marts.
"""

from __future__ import annotations

import json
import random
import re
from datetime import date

import duckdb
import polars as pl
import pytest

from growth_pipeline.config import Paths, parse_customers
from growth_pipeline.lib.analytics.marts import run_analysis
from growth_pipeline.lib.features.names import distinct_labels, json_pointer, name_slug, unique_slugs
from growth_pipeline.lib.features.steps import build_user_features
from growth_pipeline.lib.features.user_features import build_features, read_customer_activity
from growth_pipeline.lib.scoring.phrases import describe
from growth_pipeline.lib.warehouse.connection import Warehouses
from growth_pipeline_tests.conftest import epoch, write_export
from growth_pipeline_tests.warehouse_builder import load_days

HOSTILE = [
    'a"b',
    '"',
    '\\"',
    "a.b",
    "$os",
    "$",
    "*",
    "",
    " ",
    "back\\slash",
    "a\\",
    "it's",
    "a/b",
    "~",
    "~1",
    "/",
    "a[0]",
    '$."x"',
    "Plan",
    "plan",
    "PLAN",
    "Task Created",
    "task_created",
    "task-created",
    "खरीदारी",
    "योजना",
    "é",
    "e\u0301",  # the same letter decomposed: another name
    "😀",
    "line\nbreak",
]


def _fuzz_names(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = list("aAbB*$.\"\\/~01[] '\n_-") + ["é", "ख", "ी", "😀"]
    return [("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))) for _ in range(n)]


# ------------------------------------------------------------------------------------------------ JSON reads


def test_a_json_pointer_reads_every_key_in_duckdb():
    """Whatever the key (quotes, backslashes, '*', empty, '/', '~', any script), DuckDB reads its own value."""
    keys = list(dict.fromkeys(HOSTILE + _fuzz_names(3000)))
    obj = {k: f"v:{k}" for k in keys}
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t AS SELECT ?::JSON AS j", [json.dumps(obj)])
        rows = con.execute(
            "SELECT k, t.j ->> p FROM t, (SELECT unnest(?::VARCHAR[]) AS k, unnest(?::VARCHAR[]) AS p)",
            [keys, [json_pointer(k) for k in keys]],
        ).fetchall()
        assert len(rows) == len(keys) > 1500
        assert [k for k, v in rows if v != f"v:{k}"] == []
        # a bound constant pointer too (how customers.yaml properties are read), and a missing key is null
        assert con.execute("SELECT j ->> ? FROM t", [json_pointer("*")]).fetchall() == [("v:*",)]
        assert con.execute("SELECT j ->> ? FROM t", [json_pointer("absent")]).fetchall() == [(None,)]


# ---------------------------------------------------------------------------------------------- feature names


def test_plain_ascii_names_keep_the_feature_names_they_always_had():
    old = lambda t: re.sub(r"[^a-z0-9]+", "_", t.lower()).strip("_") or "x"  # noqa: E731 (the slug before)
    rng = random.Random(3)
    names = ["Task Created", "Sign Up", "Order Completed", "utm_source", "company_size", "Buy", "page-view 2"]
    names += ["".join(rng.choice("aZ09 _-.$\"'/") for _ in range(rng.randint(1, 12))) for _ in range(2000)]
    assert [name_slug(n) for n in names] == [old(n) for n in names]
    assert unique_slugs(["Task Created", "Sign Up", "Buy"]) == {
        "Task Created": "task_created",
        "Sign Up": "sign_up",
        "Buy": "buy",
    }


def test_non_latin_names_are_kept_readable():
    assert name_slug("खरीदारी") == "खरीदारी"  # vowel signs (combining marks) kept
    assert name_slug("Order Placed — खरीदारी!") == "order_placed_खरीदारी"
    assert name_slug("Straße") == "straße"
    assert name_slug("😀") == "x" and name_slug("") == "x"


def test_every_distinct_name_gets_its_own_slug_whatever_the_order():
    names = list(dict.fromkeys(HOSTILE + _fuzz_names(2000)))
    slugs = unique_slugs(names, reserved={"events"})
    assert set(slugs) == set(names)
    assert len({s.casefold() for s in slugs.values()}) == len(names)  # DuckDB compares column names without case
    assert "events" not in slugs.values()
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    assert unique_slugs(shuffled, reserved={"events"}) == slugs
    # the name already spelled like its slug keeps it; its twins get a short hash of their own spelling
    assert slugs["task_created"] == "task_created" and slugs["plan"] == "plan"
    assert re.fullmatch(r"task_created_[0-9a-f]{4,}", slugs["Task Created"])
    assert re.fullmatch(r"plan_[0-9a-f]{4,}", slugs["Plan"]) and slugs["Plan"] != slugs["PLAN"]
    assert slugs["खरीदारी"] == "खरीदारी"


def test_a_reserved_slug_or_an_event_named_like_a_suffix_never_clashes():
    slugs = unique_slugs(["Events", "Task Created", "task_created", "task_created_" + "x"], reserved={"events"})
    assert slugs["Events"].startswith("events_")
    taken = unique_slugs(["Task Created", "task_created"])["Task Created"]
    again = unique_slugs(["Task Created", "task_created", taken])
    assert len(set(again.values())) == 3 and again[taken] == taken


def test_twins_read_in_the_customers_own_spelling():
    words = distinct_labels(["Task Created", "task_created", "Buy"], lambda e: e.replace("_", " ").lower(), str)
    assert words == {"Task Created": "Task Created", "task_created": "task_created", "Buy": "buy"}


# ------------------------------------------------------------------------------------------------ end to end

CUSTOMERS = r"""
customers:
  - id: names
    timezone: UTC
    source: {kind: local_folder, path: '{src}'}
    events:
      signup: Sign Up
      conversion: ['खरीदारी']
      revenue_property: 'price "net"'
      category_property: 'cuisine\kind'
      goal: [Task Created]
      goal_condition: {'size "big".$\': 'yes'}
      channel_properties: ['utm "src"', '$initial_referring_domain']
"""

DAYS = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
USERS = [f"u{i}" for i in range(6)]
# per user and day: how many of each event (the twins and the Devanagari one must stay apart)
PER_DAY = {"Task Created": 2, "task_created": 1, "खरीदारी": 3, 'Buy "now".x': 1, "Events": 1, "User Key": 1}
PROPS = {  # the customer's own user-level properties, one value per user
    "Plan": lambda i: ["pro", "free"][i % 2],
    "plan": lambda i: ["a", "b", "c"][i % 3],
    'tier "x".y': lambda i: ["gold", "silver"][i % 2],
    "a/b~c\\d": lambda i: i % 2 + 1,
    "योजना": lambda i: ["बड़ा", "छोटा"][i % 2],
    "*": lambda i: ["p", "q"][i % 2],
}


def _records(day: date) -> list[dict]:
    out = []
    for i, user in enumerate(USERS):
        base = {k: f(i) for k, f in PROPS.items()} | {"distinct_id": user, "$user_id": user}
        base |= {'utm "src"': "facebook"} if i < 3 else {"$initial_referring_domain": "www.google.com"}
        seq = [("Sign Up", {})] if day == DAYS[0] else []
        for name, n in PER_DAY.items():
            for k in range(n):
                extra = {}
                if name == "खरीदारी":
                    extra = {'price "net"': 10, "cuisine\\kind": ["thai", "french"][i % 2]}
                if name == "Task Created" and k == 0:
                    extra = {'size "big".$\\': "yes"}  # one goal event a day meets the condition
                seq.append((name, extra))
        for k, (name, extra) in enumerate(seq):
            t = epoch(day.year, day.month, day.day, 8) + 60 * k + i
            out.append({"event": name, "properties": base | extra | {"time": t, "$insert_id": f"{user}-{day}-{k}"}})
    return out


@pytest.fixture(scope="module")
def hostile_customer(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    text = CUSTOMERS.replace("{src}", str(root / "src"))
    customer = parse_customers(text, "customers.yaml").get("names")
    for day in DAYS:
        write_export(root / "src" / f"{day}.jsonl", _records(day))
    paths = Paths(root / "home")
    warehouses = Warehouses(paths)
    with warehouses.open(customer.id) as con:
        load_days(con, customer, paths, DAYS[0], DAYS[-1])
    return customer, warehouses


def test_customers_yaml_keeps_the_hostile_names(hostile_customer):
    customer, _ = hostile_customer
    assert customer.events.revenue_property == 'price "net"'
    assert customer.events.category_property == "cuisine\\kind"
    assert customer.events.goal_condition == {'size "big".$\\': "yes"}


def test_user_daily_reads_revenue_channel_and_goal_by_their_names(hostile_customer):
    customer, warehouses = hostile_customer
    with warehouses.open(customer.id, read_only=True) as con:
        daily = pl.DataFrame(con.sql("SELECT * FROM core.user_daily ORDER BY day, user_key"))
    assert daily.height == len(DAYS) * len(USERS)
    assert daily["revenue"].to_list() == [30.0] * daily.height  # 3 purchases of 10 a day, 'price "net"'
    assert daily["purchases"].to_list() == [3] * daily.height
    assert daily["goals"].to_list() == [1] * daily.height  # only the Task Created meeting the condition
    channels = dict(daily.filter(pl.col("day") == DAYS[0]).select("user_key", "channel").iter_rows())
    assert channels == {u: ("facebook" if int(u[1:]) < 3 else "www.google.com") for u in USERS}


def test_every_event_and_property_gets_its_own_feature(hostile_customer):
    customer, warehouses = hostile_customer
    with warehouses.open(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer)
    assert sorted(act.custom_props) == sorted(PROPS)
    frame = build_features(act, DAYS[-1])
    events = act.event_slugs
    assert set(PER_DAY) <= set(events) and len(set(events.values())) == len(events)
    for name, n in PER_DAY.items():
        column = frame[f"n_{events[name]}_28d"]
        assert column.to_list() == [n * len(DAYS)] * len(USERS), name
    assert events["task_created"] == "task_created" and events["Task Created"] != "task_created"
    assert events["खरीदारी"] == "खरीदारी" and events["Events"] != "events"
    assert frame["trend_events_7v21"].dtype == pl.Float64  # the trend of all events is not an event's
    by_user = frame.sort("user_key")
    for prop, value in PROPS.items():
        column = f"prop_{act.prop_slugs[prop]}"
        expected = [value(i) for i in range(len(USERS))]
        got = by_user[column].to_list()
        assert got == ([float(v) for v in expected] if isinstance(expected[0], int) else expected), prop
    assert by_user["top_cuisine_kind"].to_list() == [["thai", "french"][i % 2] for i in range(len(USERS))]


def test_reasons_read_in_the_customers_own_names(hostile_customer):
    customer, warehouses = hostile_customer
    with warehouses.open(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer)
    ev, pr = act.event_slugs, act.prop_slugs
    assert describe(f"n_{ev['खरीदारी']}_28d", 9, act.labels) == "9 खरीदारी events in the last 28 days"
    assert describe(f"n_{ev['Task Created']}_28d", 6, act.labels) == "6 Task Created events in the last 28 days"
    assert describe(f"n_{ev['task_created']}_28d", 3, act.labels) == "3 task_created events in the last 28 days"
    assert describe(f"prop_{pr['Plan']}", "pro", act.labels) == "Plan is pro"
    assert describe(f"prop_{pr['plan']}", "a", act.labels) == "plan is a"
    assert describe(f"prop_{pr['योजना']}", "बड़ा", act.labels) == "योजना is बड़ा"
    assert describe(f"prop_{pr['*']}", "p", act.labels) == "* is p"
    assert describe("top_cuisine_kind", "thai", act.labels) == "favourite cuisine\\kind is thai"
    assert describe("top_cuisine_kind_share", 1.0, act.labels) == "100% of events in their favourite cuisine\\kind"
    # every event and every property reads in words of its own
    assert len({act.labels[f"n_{s}_28d"] for s in ev.values()}) == len(ev)
    assert len({act.labels[f"prop_{s}"] for s in pr.values()}) == len(pr)


def test_user_features_and_marts_write_every_name(hostile_customer):
    customer, warehouses = hostile_customer
    built = build_user_features(warehouses, customer)
    with warehouses.open(customer.id, read_only=True) as con:
        columns = [r[0] for r in con.execute("DESCRIBE features.user_features").fetchall()]
    assert set(built.features) <= set(columns) and len(columns) == len(set(c.casefold() for c in columns))
    assert {"n_खरीदारी_28d", "n_task_created_28d", "prop_plan", "prop_योजना", "top_cuisine_kind"} <= set(columns)
    with warehouses.open(customer.id) as con:
        out = run_analysis(con, customer, "channels", DAYS[-1])
    revenue = out.tables["category_purchases"].group_by("category").agg(pl.col("revenue").sum())
    # 3 users per cuisine, 3 purchases of 10 a day for 3 days, read through 'cuisine\\kind' and 'price "net"'
    assert dict(revenue.iter_rows()) == {"thai": 270.0, "french": 270.0}
