"""Labels as code: for each model a population, a target and a horizon, evaluated at an as-of date.

The population is decided from data on or before the as-of date (the feature frame); the target only from
the days after it, ``as_of + 1 .. as_of + horizon_days``. A label is usable only once that window has matured
(the data reaches ``as_of + horizon_days``).

- churn: identified users active in the last ``active_days``; positive when they have no activity in the
  horizon (or, with ``use_churn_event``, when they send the customer's churn event in it).
- conversion: identified users not yet converted (recent sign-ups, or all known users); positive when they
  send a conversion event in the horizon. With ``population: repeat_buyers`` it asks "buys again": users who
  bought before and were active in the last ``active_days``, positive when they buy in the horizon.
- goal: identified users active in the last ``active_days`` who have not reached the goal; positive when they
  reach it in the horizon.
- ltv: identified users active in the last ``active_days``; the target is their revenue in the horizon.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from typing import Literal

import polars as pl

from growth_pipeline.config import Customer
from growth_pipeline.pipeline_shape import MODEL_NAMES


@dataclass(frozen=True)
class LabelSpec:
    model: Literal["churn", "conversion", "goal", "ltv"]
    horizon_days: int
    population: Literal["active", "recent_signups", "all_known", "not_yet_reached", "repeat_buyers"]
    active_days: int = 28
    signup_window_days: int = 30
    use_churn_event: bool = False

    @property
    def kind(self) -> str:
        return "ltv" if self.model == "ltv" else "classifier"

    def as_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        if not 7 <= self.horizon_days <= 365:
            raise ValueError(f"{self.model}: horizon_days must be between 7 and 365, got {self.horizon_days}")


DEFAULTS = {
    "churn": LabelSpec("churn", horizon_days=14, population="active", active_days=28),
    "conversion": LabelSpec("conversion", horizon_days=30, population="recent_signups", signup_window_days=30),
    "goal": LabelSpec("goal", horizon_days=14, population="not_yet_reached", active_days=28),
    "ltv": LabelSpec("ltv", horizon_days=90, population="active", active_days=90),
}


def label_specs(customer: Customer) -> dict[str, LabelSpec]:
    """The enabled models of a customer with their labels (customers.yaml overrides on the defaults)."""
    specs = {}
    for name in MODEL_NAMES:
        settings = getattr(customer.models, name)
        if not settings.enabled or (name == "goal" and not customer.events.goal):
            continue
        overrides = {k: v for k, v in settings.model_dump().items() if k != "enabled" and v is not None}
        if name == "churn" and customer.events.churn_event is None and overrides.get("use_churn_event"):
            raise ValueError(
                f"customer {customer.id!r}, field 'models.churn.use_churn_event': needs events.churn_event"
            )
        specs[name] = replace(DEFAULTS[name], **overrides)
    return specs


def population(features: pl.DataFrame, spec: LabelSpec) -> pl.DataFrame:
    """The rows of a feature frame (one as-of date) that belong to the model's population."""
    f = features.filter(pl.col("identified") & pl.col("signup_day").is_not_null())
    active = pl.col("recency_days") < spec.active_days
    if spec.model == "churn":
        return f.filter(active)
    if spec.model == "conversion":
        if spec.population == "repeat_buyers":  # "buys again": earlier buyers, still around
            return f.filter((pl.col("converted") == 1) & active)
        f = f.filter(pl.col("converted") == 0)
        if spec.population == "recent_signups":
            f = f.filter(pl.col("days_since_signup") < spec.signup_window_days)
        return f
    if spec.model == "goal":
        f = f.filter(pl.col("goals_lifetime") == 0)
        return f if spec.population == "all_known" else f.filter(active)
    return f.filter(active)  # ltv


def matured(as_of: date, spec: LabelSpec, last_day: date) -> bool:
    return as_of + timedelta(days=spec.horizon_days) <= last_day


def targets(daily: pl.DataFrame, as_of: date, spec: LabelSpec) -> pl.DataFrame:
    """user_key -> outcome in the window after ``as_of`` (only users with activity in it appear)."""
    window = daily.filter((pl.col("day") > as_of) & (pl.col("day") <= as_of + timedelta(days=spec.horizon_days)))
    return window.group_by("user_key").agg(
        pl.len().alias("future_active_days"),
        pl.col("purchases").sum().alias("future_purchases"),
        pl.col("goals").sum().alias("future_goals"),
        pl.col("churn_events").sum().alias("future_churn_events"),
        pl.col("revenue").sum().alias("future_revenue"),
    )


def attach_labels(pop: pl.DataFrame, daily: pl.DataFrame, as_of: date, spec: LabelSpec) -> pl.DataFrame:
    """The population with a ``label`` column (0/1 for classifiers, revenue for ltv)."""
    t = targets(daily, as_of, spec)
    out = pop.join(t, on="user_key", how="left").with_columns(
        [pl.col(c).fill_null(0) for c in t.columns if c != "user_key"]
    )
    if spec.model == "churn":
        label = (pl.col("future_churn_events") > 0) if spec.use_churn_event else (pl.col("future_active_days") == 0)
    elif spec.model == "conversion":
        label = pl.col("future_purchases") > 0
    elif spec.model == "goal":
        label = pl.col("future_goals") > 0
    else:
        label = pl.col("future_revenue")
    out = out.with_columns((label.cast(pl.Float64) if spec.model == "ltv" else label.cast(pl.Int8)).alias("label"))
    return out.drop([c for c in t.columns if c != "user_key"])
