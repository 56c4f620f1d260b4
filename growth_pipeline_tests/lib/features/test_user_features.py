"""Point-in-time features (lib/features/user_features.py) on a small generated customer, in a real DuckDB warehouse."""

from datetime import date, timedelta

import duckdb
import polars as pl

from growth_pipeline.lib.features.user_features import build_features, feature_columns, read_customer_activity
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.training import model_features
from growth_pipeline_tests.warehouse_builder import load_days

START = date(2026, 1, 1)


def activity(con, customer):
    return read_customer_activity(con, customer)


def test_features_of_an_as_of_date_do_not_change_when_later_events_arrive(small_customer):
    customer, paths, root = small_customer
    as_of = START + timedelta(days=69)
    with duckdb.connect(str(root / "pit.duckdb")) as con:
        load_days(con, customer, paths, START, START + timedelta(days=79))
        act_before = activity(con, customer)
        before = build_features(act_before, as_of)
        load_days(con, customer, paths, START + timedelta(days=80), START + timedelta(days=119))
        act_after = activity(con, customer)
        after = build_features(act_after, as_of)
    assert act_after.last_day == START + timedelta(days=119)
    # the rows a model can use on that date: users identified and signed up by then
    usable = lambda f: f.filter(pl.col("identified") & (pl.col("signup_day") <= as_of)).sort("user_key")  # noqa: E731
    b, a = usable(before), usable(after)
    common = [c for c in b.columns if c in a.columns]
    assert len(common) >= 0.9 * len(b.columns)
    assert b.height > 100
    assert b.select(common).equals(a.select(common)), "a feature of the as-of date changed with later data"
    # the purchase history and the buy-till-you-die columns (models fitted per as-of date) are point in time too
    assert {"repeat_purchase_days", "purchase_gap_mean_days", "order_value_mean", "first_order_value"} <= set(common)
    for name in ("churn", "ltv"):
        spec = label_specs(customer)[name]
        fb, fa = usable(model_features(act_before, as_of, spec)), usable(model_features(act_after, as_of, spec))
        btyd = [c for c in fb.columns if c.startswith("btyd_")]
        assert len(btyd) == 5 and fb["btyd_return_probability"].is_not_null().sum() > 100
        assert fb.select("user_key", *btyd).equals(fa.select("user_key", *btyd)), f"{name}: a btyd feature changed"
    # and the later data is really there: the same users look different at a later date
    later = usable(build_features(act_after, as_of + timedelta(days=30)))
    assert not later.select("user_key", "events_28d").equals(a.select("user_key", "events_28d"))


def test_feature_frame_has_the_promised_features(small_customer):
    customer, paths, root = small_customer
    with duckdb.connect(str(root / "f.duckdb")) as con:
        load_days(con, customer, paths, START, START + timedelta(days=59))
        act = activity(con, customer)
    f = build_features(act, START + timedelta(days=59))
    feats, cats = feature_columns(f)
    for name in (
        "recency_days",
        "events_1d",
        "events_7d",
        "events_28d",
        "events_90d",
        "revenue_28d",
        "trend_events_7v21",
        "days_since_signup",
        "active_days_28d",
        "sessions_7d",
        "n_task_created_28d",
        "share_task_created_28d",
        "trend_task_created_7v21",
    ):
        assert name in feats, name
    assert {"channel", "platform", "country", "city"} <= set(cats)
    assert {"prop_company_size", "prop_role"} <= set(feats)  # the customer's own filled properties
    assert f["user_key"].n_unique() == f.height
    row = f.filter(pl.col("events_7d") > 0).row(0, named=True)
    assert row["recency_days"] < 7
    assert set(f["platform"].drop_nulls().unique()) <= {"android", "ios", "web"}


def test_custom_properties_are_the_users_own_not_each_events_detail(registry, growth_env, tmp_path):
    """`role` stays the same on a user's events (a feature); `items` changes with every basket (not one)."""
    from growth_pipeline.lib.features.user_features import select_custom_properties
    from growth_pipeline_tests.conftest import epoch, event, write_export

    paths, root = growth_env
    customer = registry.get("acme")
    for day in (1, 2):
        records = [
            event(
                "Open",
                f"u{u}",
                epoch(2024, 3, day, 9 + k),
                f"{day}-{u}-{k}",
                role=["pm", "eng"][u % 2],
                items=(u * 7 + k * 3 + day) % 11,
                __user_id=f"u{u}",
            )
            for u in range(12)
            for k in range(4)
        ]
        write_export(root / "sources" / "acme" / f"2024-03-0{day}.jsonl", records)
    with duckdb.connect(str(tmp_path / "props.duckdb")) as con:
        load_days(con, customer, paths, date(2024, 3, 1), date(2024, 3, 2))
        assert select_custom_properties(con, exclude=set()) == ["role"]
