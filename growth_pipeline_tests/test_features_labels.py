"""Point-in-time features and labels on a small generated customer, in a real DuckDB warehouse."""

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, load_customers
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.features.user_features import build_features, feature_columns, read_customer_activity
from growth_pipeline.lib.models.labels import LabelSpec, attach_labels, label_specs, population
from growth_pipeline.lib.models.training import model_features
from growth_pipeline_tests.warehouse_builder import load_days

START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def small_customer(tmp_path_factory):
    root = tmp_path_factory.mktemp("pit")
    generate_demo(DemoSpec("powerplay", n_users=500, start=START, days=120, seed=3), root / "src")
    customer = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "pp", root / "src")
    return customer, Paths(root / "home"), root


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


def daily(rows):
    return pl.DataFrame(
        rows, schema=["day", "user_key", "events", "purchases", "goals", "churn_events", "revenue"], orient="row"
    )


def test_labels_look_only_at_the_window_after_the_as_of_date():
    as_of = date(2026, 3, 1)
    d = daily(
        [
            (date(2026, 3, 1), "a", 5, 0, 0, 0, 0.0),  # on the as-of day: not the future
            (date(2026, 3, 10), "b", 2, 1, 1, 0, 99.0),  # inside a 14-day window
            (date(2026, 3, 20), "c", 2, 1, 0, 0, 50.0),  # outside 14 days, inside 30
        ]
    )
    pop = pl.DataFrame({"user_key": ["a", "b", "c"]})
    churn = attach_labels(pop, d, as_of, LabelSpec("churn", 14, "active"))
    assert dict(churn.select("user_key", "label").iter_rows()) == {"a": 1, "b": 0, "c": 1}
    conv = attach_labels(pop, d, as_of, LabelSpec("conversion", 30, "all_known"))
    assert dict(conv.select("user_key", "label").iter_rows()) == {"a": 0, "b": 1, "c": 1}
    ltv = attach_labels(pop, d, as_of, LabelSpec("ltv", 14, "active"))
    assert dict(ltv.select("user_key", "label").iter_rows()) == {"a": 0.0, "b": 99.0, "c": 0.0}
    goal = attach_labels(pop, d, as_of, LabelSpec("goal", 365, "not_yet_reached"))
    assert dict(goal.select("user_key", "label").iter_rows()) == {"a": 0, "b": 1, "c": 0}


def test_populations_and_configured_horizons(small_customer):
    customer, _, _ = small_customer
    specs = label_specs(customer)
    assert set(specs) == {"churn", "conversion", "goal", "ltv"}
    assert (specs["churn"].horizon_days, specs["conversion"].horizon_days, specs["ltv"].horizon_days) == (14, 30, 90)
    with pytest.raises(ValueError, match="between 7 and 365"):
        LabelSpec("churn", 400, "active")
    f = pl.DataFrame(
        {
            "user_key": ["a", "b", "c", "d"],
            "identified": [True, True, True, False],
            "signup_day": [date(2026, 1, 1)] * 4,
            "recency_days": [3, 40, 3, 1],
            "converted": [0, 0, 1, 0],
            "days_since_signup": [10, 10, 10, 10],
            "goals_lifetime": [0, 0, 2, 0],
        }
    )
    assert population(f, specs["churn"])["user_key"].to_list() == ["a", "c"]  # active in 28 days, identified
    assert population(f, specs["conversion"])["user_key"].to_list() == ["a", "b"]  # not yet converted
    assert population(f, specs["goal"])["user_key"].to_list() == ["a"]
    buyers_again = LabelSpec("conversion", 30, "repeat_buyers", active_days=28)
    assert population(f, buyers_again)["user_key"].to_list() == ["c"]  # bought before, still active


def test_bounded_hyperparameter_search_and_time_split(small_customer):
    from growth_pipeline.lib.models.training import split_dates, train_model

    customer, paths, root = small_customer
    with duckdb.connect(str(root / "s.duckdb")) as con:
        load_days(con, customer, paths, START, START + timedelta(days=119))
        act = read_customer_activity(con, customer)
    spec = label_specs(customer)["churn"]
    split = split_dates(act.first_day, act.last_day, spec)
    # no training or validation label window reaches past the test as-of date
    assert max(split.train) + timedelta(days=spec.horizon_days) <= split.test
    assert max(split.valid_all) + timedelta(days=spec.horizon_days) <= split.test
    assert split.test + timedelta(days=spec.horizon_days) == act.last_day
    tm = train_model(act, spec, "pp", search=True, search_trials=2, log=lambda m: None)
    assert any("hyperparameter search over 2 candidates" in n for n in tm.notes)
    assert tm.catboost_params["thread_count"] == 2 and tm.catboost_params["allow_writing_files"] is False
    assert 0.5 < tm.metrics["model.roc_auc"] <= 1.0


def test_search_keeps_the_candidate_with_the_lowest_validation_log_loss():
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss

    from growth_pipeline.lib.models.candidates import fit_catboost
    from growth_pipeline.lib.models.training import _search, catboost_params

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200), "c": rng.choice(["u", "v"], 1200)})
    y = (rng.random(1200) < 1 / (1 + np.exp(-(1.5 * x["a"] - x["b"] ** 2 + (x["c"] == "u"))))).astype(int).to_numpy()
    data = (x[:900], y[:900], x[900:], y[900:])
    chosen, tried = _search("classifier", 2, 4, 0, data, ["c"])
    losses = []
    for cand in tried:
        params = {k: v for k, v in cand.items() if k != "score"}
        model = fit_catboost("classifier", catboost_params("classifier", 2, 0, **params), *data, ["c"])
        losses.append(log_loss(data[3], model.predict_proba(data[2])[:, 1]))
        assert cand["score"] == pytest.approx(-losses[-1], rel=1e-4)  # scores are negated validation losses
    best = tried[int(np.argmin(losses))]
    assert chosen == {k: v for k, v in best.items() if k != "score"}


def test_user_weights_give_every_user_the_same_total_weight():
    from growth_pipeline.lib.models.training import user_weights

    frame = pl.DataFrame({"user_key": ["a", "a", "a", "b", "c", "c"]})
    w = user_weights(frame)
    totals = pl.DataFrame({"user_key": frame["user_key"], "w": w}).group_by("user_key").agg(pl.col("w").sum())
    assert totals["w"].to_list() == pytest.approx([2.0] * 3)  # mean 1 over 6 rows: 6 / 3 users each
    assert w.mean() == pytest.approx(1.0)


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
