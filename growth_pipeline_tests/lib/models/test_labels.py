"""Labels and populations (lib/models/labels.py) on a small generated customer, in a real DuckDB warehouse."""

from datetime import date

import polars as pl
import pytest

from growth_pipeline.lib.models.labels import LabelSpec, attach_labels, label_specs, population

START = date(2026, 1, 1)


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
