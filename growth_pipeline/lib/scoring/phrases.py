"""Phrases: one feature's value in plain words ("no activity for 12 days", "3x fewer tasks created than the 3
weeks before"), the words of each score's reasons (:mod:`growth_pipeline.lib.scoring.explain`).

Feature names follow the features module's conventions; see :func:`describe` for the full list. A name that
matches none of them is still described, as ``"<name with spaces> = <value>"``. No Dagster import.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

import numpy as np

# Trend ratios at or below this are "Nx fewer", at or above TREND_MORE "Nx more", in between "steady".
TREND_FEWER = 0.5
TREND_MORE = 1.5

# Categorical values that mean "we do not know".
_UNKNOWN = {"", "missing", "none", "null", "nan", "unknown"}


# ------------------------------------------------------------------------------------------- numbers in words


def _num(value: Any) -> float | None:
    """A float, or None for null / NaN / something that is not a number."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt_number(v: float) -> str:
    """Integers without decimals, other numbers with at most one decimal, thousands separators:
    ``1250.0 -> "1,250"``, ``2.25 -> "2.2"``, ``3.04 -> "3"``; a value that rounds to 0 but is not 0 is
    ``"<0.1"`` (``">-0.1"`` when negative); infinities are ``"infinite"``."""
    if math.isinf(v):
        return "infinite" if v > 0 else "minus infinite"
    r = round(v, 1)
    if r == 0 and v != 0:
        return "<0.1" if v > 0 else ">-0.1"
    if r == int(r):
        return f"{int(r):,}"
    return f"{r:,.1f}"


def _count(v: float, singular: str, plural: str | None = None) -> str:
    """``"1 event"``, ``"3 events"``, ``"2.5 events"``."""
    text = fmt_number(v)
    return f"{text} {singular if text == '1' else (plural or singular + 's')}"


def _window(w: int) -> str:
    return "in the last day" if w == 1 else f"in the last {w:,} days"


def _ago(v: float) -> str:
    """``"today"``, ``"yesterday"``, ``"12 days ago"`` for a number of days."""
    if v < 1:
        return "today"
    if v < 2:
        return "yesterday"
    return f"{fmt_number(v)} days ago"


def _times(v: float) -> str:
    """A ratio as a multiplier: ``3.0 -> "3x"``, ``2.46 -> "2.5x"``, ``12.4 -> "12x"``."""
    if v >= 10:
        return f"{int(math.floor(v + 0.5)):,}x"
    return f"{fmt_number(v)}x"


def _words(slug: str) -> str:
    return slug.replace("_", " ").strip()


def _label(labels: dict[str, str] | None, feature: str, slug: str) -> str:
    """The words for a feature's subject: ``labels[feature]``, else ``labels[slug]``, else the slug's words."""
    if labels:
        if labels.get(feature):
            return labels[feature]
        if labels.get(slug):
            return labels[slug]
    return _words(slug)


def _category(value: Any) -> str | None:
    """A categorical value as text, or None when it is null / "missing"."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return fmt_number(float(value))
    text = str(value).strip()
    return None if text.lower() in _UNKNOWN else text


# ------------------------------------------------------------------------------------------------- describe

# [0-9], not \d: a slug may hold digits of any script (features.names), the windows are ASCII
_WINDOW_RE = re.compile(r"^(events|sessions|active_days|revenue|purchases)_([0-9]+)d$")
_TREND_RE = re.compile(r"^trend_(.+)_7v21$")
_N_RE = re.compile(r"^n_(.+)_([0-9]+)d$")
_SHARE_RE = re.compile(r"^share_(.+)_([0-9]+)d$")
_PROP_RE = re.compile(r"^prop_(.+)$")

_FIXED = {
    "recency_days",
    "days_since_signup",
    "days_since_first_seen",
    "lifetime_active_days",
    "lifetime_revenue",
    "lifetime_purchases",
    "days_since_last_purchase",
    "converted",
    "goals_lifetime",
    "channel",
    "platform",
    "country",
    "city",
}

# Purchase-history and buy-till-you-die features: phrase for a value (None: the user never bought / no fit).
_PERCENT = {
    "btyd_return_probability": "likely to come back within the model's window (buy-till-you-die)",
    "btyd_alive_probability": "likely still a customer (buy-till-you-die)",
    "btyd_purchase_probability": "likely to buy within the model's window (buy-till-you-die)",
}
_AMOUNT = {
    "order_value_mean": "average order {}",
    "order_value_std": "order values vary by {}",
    "order_value_max": "largest order {}",
    "first_order_value": "first order {}",
    "repeat_order_value_mean": "average repeat order {}",
    "btyd_expected_spend": "expected spend {} within the model's window (buy-till-you-die)",
    "btyd_expected_purchases": "expects {} purchase days within the model's window (buy-till-you-die)",
}


def _describe_purchase(feature: str, v: float | None, labels: dict[str, str] | None = None) -> str | None:
    """Words for the purchase-history features, or None when ``feature`` is not one of them."""
    if feature in _PERCENT:
        return None if v is None else f"{int(math.floor(v * 100 + 0.5))}% {_PERCENT[feature]}"
    if feature in _AMOUNT:
        return "never purchased" if v is None else _AMOUNT[feature].format(fmt_number(v))
    if feature == "repeat_purchase_days":
        if v is None:
            return "never purchased"
        return "bought on one day only" if v == 0 else f"bought again on {_count(v, 'day')} after the first"
    if feature == "days_since_first_purchase":
        return "never purchased" if v is None else f"first purchase {_ago(v)}"
    if feature == "purchase_span_days":
        return "never purchased" if v is None else f"purchases spread over {_count(v, 'day')}"
    if feature == "purchase_gap_mean_days":
        return "no repeat purchase yet" if v is None else f"buys every {_count(v, 'day')} on average"
    if feature == "purchase_gap_std_days":
        return (
            "no usual gap between purchases yet"
            if v is None
            else (f"gaps between purchases vary by {_count(v, 'day')}")
        )
    if feature == "events_per_day":
        return None if v is None else f"{fmt_number(v)} events per day since first seen"
    if feature == "active_day_share":
        return None if v is None else f"active on {int(math.floor(v * 100 + 0.5))}% of days since first seen"
    if feature == "events_per_session":
        return None if v is None else f"{fmt_number(v)} events per session"
    if feature == "lifetime_events":
        return "no events to date" if not v else f"{_count(v, 'event')} to date"
    if feature == "lifetime_sessions":
        return "no sessions to date" if not v else f"{_count(v, 'session')} to date"
    if feature == "identified":
        return None if v is None else ("identified user" if v else "anonymous user")
    if feature.startswith("top_") and feature.endswith("_share"):
        # the words of the favourite category feature ("favourite cuisine", in the customer's own property name)
        thing = (labels or {}).get(feature.removesuffix("_share")) or "favourite " + _words(
            feature.removeprefix("top_").removesuffix("_share")
        )
        return None if v is None else f"{int(math.floor(v * 100 + 0.5))}% of events in their {thing}"
    if feature == "purchase_overdue_ratio":
        if v is None:
            return "no usual gap between purchases yet"
        if v >= TREND_MORE:
            return f"next purchase overdue: {_times(v)} the usual gap since the last one"
        if v <= TREND_FEWER:
            return "bought recently for their usual gap"
        return "next purchase about due for their usual gap"
    return None


@lru_cache(maxsize=4096)
def _rule(feature: str) -> tuple[str, str, int]:
    """What kind of feature a name is: (kind, slug, window days). Cached: names repeat across millions of cells."""
    if feature in _FIXED:
        return feature, "", 0
    if m := _WINDOW_RE.match(feature):
        return "window_" + m.group(1), m.group(1), int(m.group(2))
    if m := _TREND_RE.match(feature):
        return "trend", m.group(1), 7
    if m := _N_RE.match(feature):
        return "n", m.group(1), int(m.group(2))
    if m := _SHARE_RE.match(feature):
        return "share", m.group(1), int(m.group(2))
    if m := _PROP_RE.match(feature):
        return "prop", m.group(1), 0
    return "other", feature, 0


def _describe_window(thing: str, w: int, v: float | None) -> str:
    # A null count means the user had no such rows in the window: read as zero.
    v = 0.0 if v is None else v
    win = _window(w)
    if thing == "active_days":
        if v == 0:
            return f"not active {win}"
        if w == 1:
            return f"active {win}"
        return f"active on {fmt_number(v)} of the last {w:,} days"
    if thing == "revenue":
        return f"no revenue {win}" if v == 0 else f"{fmt_number(v)} revenue {win}"
    singular = {"events": "event", "sessions": "session", "purchases": "purchase"}[thing]
    return f"no {thing} {win}" if v == 0 else f"{_count(v, singular, thing)} {win}"


def _describe_trend(things: str, r: float | None) -> str:
    if r is None:
        return f"no {things} in the last 4 weeks"
    if math.isinf(r) and r > 0:
        return f"{things} in the last 7 days after none in the 3 weeks before"
    if r <= 0:
        return f"no {things} in the last 7 days after an active 3 weeks"
    if r <= TREND_FEWER:
        return f"{_times(1.0 / r)} fewer {things} than the 3 weeks before"
    if r >= TREND_MORE:
        return f"{_times(r)} more {things} than the 3 weeks before"
    return f"{things} steady against the 3 weeks before"


def describe(feature: str, value: Any, labels: dict[str, str] | None = None) -> str:
    """A short phrase in plain words for ``feature`` having ``value``.

    ``labels`` maps a feature name (or its slug, e.g. ``"tasks_created"``) to the words for what it counts
    (``"tasks created"``); without one, the slug is used with underscores as spaces.

    ===============================  =========================================================================
    feature                          phrases
    ===============================  =========================================================================
    ``recency_days``                 "no activity for 12 days", "last active yesterday", "active today",
                                     null: "never active"
    ``events_{w}d``, ``sessions_``,  "3 events in the last 7 days", "1 session in the last day",
    ``purchases_``, ``revenue_``     "no purchases in the last 90 days", "1,250 revenue in the last 90 days"
    ``active_days_{w}d``             "active on 2 of the last 28 days", "not active in the last 7 days"
    ``trend_<slug>_7v21``            "3x fewer tasks created than the 3 weeks before", "2.5x more events
                                     than the 3 weeks before", "events steady against the 3 weeks before",
                                     0: "no events in the last 7 days after an active 3 weeks",
                                     infinite: "events in the last 7 days after none in the 3 weeks before",
                                     null: "no events in the last 4 weeks"
    ``n_<slug>_{w}d``                "4 tasks created in the last 28 days", "no tasks created in the last ..."
    ``share_<slug>_{w}d``            "35% of activity is tasks created" (value is a fraction 0..1),
                                     null: "no activity in the last 28 days"
    ``days_since_signup``            "signed up 40 days ago" / "yesterday" / "today"
    ``days_since_first_seen``        "first seen 40 days ago"
    ``lifetime_active_days``         "active on 25 days in total"
    ``lifetime_revenue``             "2,400 revenue to date", "no revenue to date"
    ``lifetime_purchases``           "3 purchases to date", "1 purchase to date", "no purchases to date"
    ``days_since_last_purchase``     "last purchase 20 days ago", null: "never purchased"
    ``converted``                    "already a paying customer" / "not yet a paying customer"
    ``goals_lifetime``               "reached the goal 2 times", "reached the goal once",
                                     "has not reached the goal yet"
    ``channel``                      "came from facebook", "came directly" ("direct"), "channel unknown"
    ``platform``                     "uses android", "platform unknown"
    ``country`` / ``city``           "in IN" / "in Pune", "country unknown" / "city unknown"
    ``prop_<slug>``                  "<label> is <value>", "<label> unknown"
    anything else                    "<feature with spaces> = <value>", null: "<feature with spaces> unknown"
    ===============================  =========================================================================

    Nulls (None or NaN) of count features read as zero; categorical "missing" reads as unknown.
    """
    kind, slug, w = _rule(feature)

    if kind in ("channel", "platform", "country", "city", "prop"):
        text = _category(value)
        name = _label(labels, feature, slug) if kind == "prop" else _label(labels, feature, feature)
        if text is None:
            return f"{name} unknown"
        if kind == "channel":
            return "came directly" if text.lower() == "direct" else f"came from {text}"
        if kind == "platform":
            return f"uses {text}"
        if kind in ("country", "city"):
            return f"in {text}"
        return f"{name} is {text}"

    v = _num(value)
    if (phrase := _describe_purchase(feature, v, labels)) is not None:
        return phrase

    if kind == "recency_days":
        if v is None:
            return "never active"
        if v < 1:
            return "active today"
        if v < 2:
            return "last active yesterday"
        return f"no activity for {fmt_number(v)} days"
    if kind.startswith("window_"):
        return _describe_window(slug, w, v)
    if kind == "trend":
        things = "events" if slug == "events" else _label(labels, feature, slug)
        return _describe_trend(things, v)
    if kind == "n":
        things = _label(labels, feature, slug)
        v = 0.0 if v is None else v
        return f"no {things} {_window(w)}" if v == 0 else f"{fmt_number(v)} {things} {_window(w)}"
    if kind == "share":
        things = _label(labels, feature, slug)
        if v is None:
            return f"no activity {_window(w)}"
        pct = v * 100.0
        text = "<1" if 0 < pct < 1 else f"{int(math.floor(pct + 0.5)):,}"
        return f"{text}% of activity is {things}"
    if kind == "days_since_signup":
        return "signup date unknown" if v is None else f"signed up {_ago(v)}"
    if kind == "days_since_first_seen":
        return "first seen date unknown" if v is None else f"first seen {_ago(v)}"
    if kind == "lifetime_active_days":
        if not v:
            return "no active days yet"
        return f"active on {_count(v, 'day')} in total"
    if kind == "lifetime_revenue":
        return "no revenue to date" if not v else f"{fmt_number(v)} revenue to date"
    if kind == "lifetime_purchases":
        return "no purchases to date" if not v else f"{_count(v, 'purchase')} to date"
    if kind == "days_since_last_purchase":
        return "never purchased" if v is None else f"last purchase {_ago(v)}"
    if kind == "converted":
        return "already a paying customer" if v else "not yet a paying customer"
    if kind == "goals_lifetime":
        if not v:
            return "has not reached the goal yet"
        return "reached the goal once" if fmt_number(v) == "1" else f"reached the goal {fmt_number(v)} times"

    # anything else
    name = _label(labels, feature, feature)
    if isinstance(value, str):
        text = _category(value)
        if feature.startswith("top_"):  # the favourite category (labels: "favourite cuisine")
            return f"{name} unknown" if text is None else f"{name} is {text}"
        return f"{name} unknown" if text is None else f"{name} = {text}"
    if isinstance(value, (bool, np.bool_)):
        return f"{name} = {'yes' if value else 'no'}"
    if v is None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"{name} unknown"
        return f"{name} = {value}"
    return f"{name} = {fmt_number(v)}"
