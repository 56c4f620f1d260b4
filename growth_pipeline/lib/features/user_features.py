"""Point-in-time user features in Polars: for an as-of date, one row per user, built only from data on or
before that date.

Inputs come from the customer's warehouse once (``read_activity``); ``build_features`` then filters to
``day <= as_of`` first, so nothing after the as-of date can reach a feature. Feature names follow fixed
patterns that ``phrases.describe`` turns into words (``recency_days``, ``events_7d``, ``trend_events_7v21``,
``n_<event>_28d``, ``share_<event>_28d``, ``trend_<event>_7v21``, ``prop_<property>`` ...). ``<event>`` and
``<property>`` are slugs of the customer's own names, unique per name (``names.unique_slugs``); ``Activity.labels``
maps each such feature back to words in the customer's own event or property name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import duckdb
import polars as pl

from growth_pipeline.lib.features.names import distinct_labels, json_pointer, name_slug, unique_slugs
from growth_pipeline.lib.warehouse.sql import fetch, read_frame

WINDOWS = (1, 7, 28, 90)
TREND_EVENTS = 6  # per-event trends for the most frequent events
TOP_EVENTS = 10
IDENTITY_EVENTS = {"$identify", "$create_alias", "$merge"}
CATEGORICAL = ("channel", "platform", "country", "city")
META_COLUMNS = ("user_key", "as_of", "identified", "signup_day", "first_day", "last_day")
# event slugs a per-event feature may not take: trend_events_7v21 is the trend of all events
RESERVED_EVENT_SLUGS = frozenset({"events"})


def event_label(name: str) -> str:
    """'Task Created' -> 'tasks created', 'Buy' -> 'buy events': words for reasons."""
    words = name.replace("_", " ").split()
    if len(words) >= 2 and words[-1].lower().endswith("ed"):
        noun = words[-2].lower()
        words = [w.lower() for w in words[:-2]] + [noun if noun.endswith("s") else noun + "s", words[-1].lower()]
        return " ".join(words)
    return " ".join(w.lower() for w in words) + " events"


@dataclass
class Activity:
    """A customer's daily activity, read once from the warehouse and filtered per as-of date in memory."""

    daily: pl.DataFrame  # core.user_daily
    events: pl.DataFrame  # core.user_daily_events, top events only
    props: pl.DataFrame  # user_key, property, value, since (first time the user had that value)
    identified: pl.DataFrame  # user_key, identified
    top_events: list[str]
    custom_props: list[str]
    channel_default: str = "direct"
    labels: dict[str, str] = field(default_factory=dict)  # feature -> words, for reasons
    category_property: str | None = None
    categories: pl.DataFrame | None = None  # user_key, day, value, n: the category of the user's events
    # buy-till-you-die fits per as-of date (purchase_models.btyd_fits): shared by the models that train or score
    # on the same dates, so each date is fitted once
    btyd_fits: dict = field(default_factory=dict)

    @cached_property
    def event_slugs(self) -> dict[str, str]:
        """Each top event -> its own slug in feature names (``n_<slug>_28d``)."""
        return unique_slugs(self.top_events, reserved=RESERVED_EVENT_SLUGS)

    @cached_property
    def prop_slugs(self) -> dict[str, str]:
        """Each of the customer's own properties -> its own slug in feature names (``prop_<slug>``)."""
        return unique_slugs(self.custom_props)

    @property
    def first_day(self) -> date:
        return self.daily["day"].min()

    @property
    def last_day(self) -> date:
        return self.daily["day"].max()


def select_top_events(con: duckdb.DuckDBPyConnection, k: int = TOP_EVENTS) -> list[str]:
    rows = fetch(con, "features_catalog_events")
    return [r[0] for r in rows if r[0] not in IDENTITY_EVENTS and not r[0].startswith("$")][:k]


def select_custom_properties(
    con: duckdb.DuckDBPyConnection,
    exclude: set[str],
    max_levels: int = 50,
    min_fill: float = 0.5,
    max_values_per_user: float = 1.5,
) -> list[str]:
    """The customer's own user-level properties worth a feature (company size, role, ...): set on at least half
    of all events (super properties, not one event's detail), not Mixpanel's (``$``/``mp_``/``utm_``), not
    ids, not the pipeline's own (channel, revenue), with a handful of distinct values when text, and stable per
    user (on average at most ``max_values_per_user`` values per distinct_id: a user's plan may change, a basket's
    item count changes with every order)."""
    rows = fetch(con, "features_property_candidates")
    props = [
        p
        for p, fill, levels, is_text in rows
        if p not in exclude and fill >= min_fill and levels >= 2 and (not is_text or levels <= max_levels)
    ]
    if not props:
        return props
    # a property of the user (company size, role) keeps its value from event to event; one of the event (the
    # items in a basket, a page's title) changes all the time, and its "latest value" would be a misleading feature
    values_per_user = dict(
        fetch(
            con, "features_property_values_per_user", properties=props, property_paths=[json_pointer(p) for p in props]
        )
    )
    return [p for p in props if values_per_user.get(p, 0.0) <= max_values_per_user]


def read_customer_activity(con: duckdb.DuckDBPyConnection, customer, until: date | None = None) -> Activity:
    """read_activity with the customer's event meanings from customers.yaml."""
    ev = customer.events
    return read_activity(
        con,
        channel_properties=ev.channel_properties,
        revenue_property=ev.revenue_property,
        channel_default=ev.channel_default,
        category_property=ev.category_property,
        until=until,
    )


def read_activity(
    con: duckdb.DuckDBPyConnection,
    *,
    channel_properties: list[str],
    revenue_property: str | None,
    channel_default: str = "direct",
    category_property: str | None = None,
    until: date | None = None,
) -> Activity:
    until = until or date(9999, 12, 31)
    top = select_top_events(con)
    exclude = set(channel_properties) | {p for p in (revenue_property, category_property) if p}
    custom = select_custom_properties(con, exclude)
    daily = read_frame(con, "features_user_daily", until=until)
    events = (
        read_frame(con, "features_user_daily_events", until=until, top_events=top)
        if top
        else pl.DataFrame(schema={"day": pl.Date, "user_key": pl.Utf8, "event": pl.Utf8, "n": pl.Int32})
    )
    if custom:
        props = read_frame(
            con,
            "features_user_properties",
            properties=custom,
            property_paths=[json_pointer(p) for p in custom],
            until=until,
        )
    else:
        props = pl.DataFrame(schema={"user_key": pl.Utf8, "property": pl.Utf8, "value": pl.Utf8, "since": pl.Date})
    identified = read_frame(con, "features_identified")
    categories = None
    if category_property:
        # the user's favourite category (e.g. cuisine) is the one most of their events carry, not the last one
        categories = read_frame(con, "features_categories", category_path=json_pointer(category_property), until=until)
    act = Activity(daily, events, props, identified, top, custom, channel_default, {}, category_property, categories)
    act.labels = feature_labels(act)
    return act


def feature_labels(act: Activity) -> dict[str, str]:
    """Feature -> the words reasons use for it, in the customer's own event and property names; two names that
    would read the same (``Task Created``, ``task_created``) read in their own spelling instead."""
    labels = {}
    event_words = distinct_labels(act.top_events, event_label, lambda e: f"{e} events")
    for e, s in act.event_slugs.items():
        for feature in (f"n_{s}_28d", f"share_{s}_28d", f"trend_{s}_7v21"):
            labels[feature] = event_words[e]
    prop_words = distinct_labels(act.custom_props, lambda p: p.replace("_", " ").strip(), lambda p: p)
    for p, s in act.prop_slugs.items():
        labels[f"prop_{s}"] = prop_words[p]
    if act.category_property:
        labels[category_feature(act.category_property)] = f"favourite {act.category_property.replace('_', ' ')}"
    return labels


def category_feature(category_property: str) -> str:
    """The favourite category's feature (``top_cuisine``; its share is ``top_cuisine_share``)."""
    return f"top_{name_slug(category_property)}"


def _window(d: pl.DataFrame, as_of: date, days: int, end_offset: int = 0) -> pl.DataFrame:
    """Rows with as_of - days - end_offset < day <= as_of - end_offset."""
    hi = as_of - timedelta(days=end_offset)
    return d.filter((pl.col("day") > hi - timedelta(days=days)) & (pl.col("day") <= hi))


def _ratio(recent: pl.Expr, before: pl.Expr) -> pl.Expr:
    """Daily rate in the last 7 days against the 21 before; null when both are empty. The +1/28 keeps a first
    week of activity after silence finite."""
    eps = 1.0 / 28
    return pl.when((recent == 0) & (before == 0)).then(None).otherwise((recent / 7 + eps) / (before / 21 + eps))


def build_features(act: Activity, as_of: date) -> pl.DataFrame:
    """One row per user first seen on or before ``as_of``, from data on or before ``as_of`` only."""
    d = act.daily.filter(pl.col("day") <= as_of)
    if d.is_empty():
        return pl.DataFrame()
    life = (
        d.sort("day")
        .group_by("user_key")
        .agg(
            pl.col("day").min().alias("first_day"),
            pl.col("day").max().alias("last_day"),
            pl.len().alias("lifetime_active_days"),
            pl.col("events").sum().alias("lifetime_events"),
            pl.col("sessions").sum().alias("lifetime_sessions"),
            pl.col("revenue").sum().alias("lifetime_revenue"),
            pl.col("purchases").sum().alias("lifetime_purchases"),
            pl.col("goals").sum().alias("goals_lifetime"),
            pl.col("day").filter(pl.col("signups") > 0).min().alias("signup_day"),
            pl.col("day").filter(pl.col("purchases") > 0).max().alias("last_purchase_day"),
            *[pl.col(c).drop_nulls().first().alias(c) for c in CATEGORICAL],
        )
    )
    as_of_lit = pl.lit(as_of)
    out = life.with_columns(
        pl.lit(as_of).alias("as_of"),
        (as_of_lit - pl.col("last_day")).dt.total_days().alias("recency_days"),
        (as_of_lit - pl.col("first_day")).dt.total_days().alias("days_since_first_seen"),
        (as_of_lit - pl.col("signup_day")).dt.total_days().alias("days_since_signup"),
        (as_of_lit - pl.col("last_purchase_day")).dt.total_days().alias("days_since_last_purchase"),
        (pl.col("lifetime_purchases") > 0).cast(pl.Int8).alias("converted"),
        pl.col("channel").fill_null(act.channel_default),
    ).drop("last_purchase_day")
    # intensity normalised by tenure: a new user's 28-day counts cover only the days since they arrived
    tenure = pl.col("days_since_first_seen") + 1
    out = out.with_columns(
        (pl.col("lifetime_events") / tenure).alias("events_per_day"),
        (pl.col("lifetime_active_days") / tenure).alias("active_day_share"),
        (pl.col("lifetime_events") / pl.col("lifetime_sessions").clip(lower_bound=1)).alias("events_per_session"),
    )

    for w in WINDOWS:
        agg = (
            _window(d, as_of, w)
            .group_by("user_key")
            .agg(
                pl.col("events").sum().alias(f"events_{w}d"),
                pl.col("sessions").sum().alias(f"sessions_{w}d"),
                pl.len().alias(f"active_days_{w}d"),
                pl.col("revenue").sum().alias(f"revenue_{w}d"),
                pl.col("purchases").sum().alias(f"purchases_{w}d"),
            )
        )
        out = out.join(agg, on="user_key", how="left")
    before = _window(d, as_of, 21, end_offset=7).group_by("user_key").agg(pl.col("events").sum().alias("_e21"))
    out = out.join(before, on="user_key", how="left")
    count_cols = [c for c in out.columns if re.match(r"(events|sessions|active_days|revenue|purchases)_\d+d$", c)]
    out = out.with_columns([pl.col(c).fill_null(0) for c in count_cols + ["_e21"]])
    out = out.with_columns(_ratio(pl.col("events_7d"), pl.col("_e21")).alias("trend_events_7v21")).drop("_e21")

    # the mix of the top events over 28 days, and the trend of the most frequent ones
    ev = act.events.filter(pl.col("day") <= as_of)
    # pivoted on the feature names themselves (never on bare slugs: an event named "User Key" is not the index)
    slugs = act.event_slugs
    e28 = _window(ev, as_of, 28).with_columns(pl.col("event").replace_strict(slugs, return_dtype=pl.Utf8).alias("s"))
    if not e28.is_empty():
        recent = e28.filter(pl.col("day") > as_of - timedelta(days=7))
        counts = (
            e28.group_by("user_key", "s")
            .agg(pl.col("n").sum())
            .with_columns(("n_" + pl.col("s") + "_28d").alias("s"))
            .pivot(on="s", index="user_key", values="n")
        )
        out = out.join(counts, on="user_key", how="left")
        r7 = (
            recent.group_by("user_key", "s")
            .agg(pl.col("n").sum())
            .with_columns(("_r7_" + pl.col("s")).alias("s"))
            .pivot(on="s", index="user_key", values="n")
        )
        out = out.join(r7, on="user_key", how="left")
    for e in act.top_events:
        s = slugs[e]
        n = f"n_{s}_28d"
        if n not in out.columns:
            out = out.with_columns(pl.lit(0).alias(n))
        if f"_r7_{s}" not in out.columns:
            out = out.with_columns(pl.lit(0).alias(f"_r7_{s}"))
        out = out.with_columns(pl.col(n).fill_null(0), pl.col(f"_r7_{s}").fill_null(0))
        out = out.with_columns(
            pl.when(pl.col("events_28d") > 0)
            .then(pl.col(n) / pl.col("events_28d"))
            .otherwise(None)
            .alias(f"share_{s}_28d")
        )
    for e in act.top_events[:TREND_EVENTS]:
        s = slugs[e]
        out = out.with_columns(
            _ratio(pl.col(f"_r7_{s}"), pl.col(f"n_{s}_28d") - pl.col(f"_r7_{s}")).alias(f"trend_{s}_7v21")
        )
    out = out.drop([c for c in out.columns if c.startswith("_r7_")])

    # the customer's own properties: each user's latest value known on the as-of date
    if act.custom_props:
        props = (
            act.props.filter(pl.col("since") <= as_of)
            .sort("since")
            .group_by("user_key", "property")
            .agg(pl.col("value").last())
            .with_columns(
                ("prop_" + pl.col("property").replace_strict(act.prop_slugs, return_dtype=pl.Utf8)).alias("property")
            )
            .pivot(on="property", index="user_key", values="value")
        )
        out = out.join(props, on="user_key", how="left")
        for p in act.custom_props:
            name = f"prop_{act.prop_slugs[p]}"
            if name not in out.columns:
                out = out.with_columns(pl.lit(None, pl.Utf8).alias(name))
            numeric = out[name].cast(pl.Float64, strict=False)
            if numeric.null_count() == out[name].null_count():  # every known value is a number
                out = out.with_columns(numeric.alias(name))
    if act.categories is not None and act.category_property:
        name = category_feature(act.category_property)
        cat = (
            act.categories.filter(pl.col("day") <= as_of)
            .group_by("user_key", "value")
            .agg(pl.col("n").sum())
            .sort(["user_key", "n", "value"], descending=[False, True, False])
            .group_by("user_key", maintain_order=True)
            .agg(pl.col("value").first().alias(name), (pl.col("n").first() / pl.col("n").sum()).alias(f"{name}_share"))
        )
        out = out.join(cat, on="user_key", how="left")
    out = out.join(purchase_history(d, as_of), on="user_key", how="left")
    out = out.join(act.identified, on="user_key", how="left").with_columns(pl.col("identified").fill_null(False))
    return out.sort("user_key")


def purchase_history(d: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Features of sparse purchase histories, per user with a purchase on or before ``as_of`` (rows of ``d`` are
    already cut at ``as_of``): the buy-till-you-die summary (repeat purchase days x, days from the first to the
    last purchase t_x, days since the first purchase T), the gaps between purchase days (mean, spread, and how
    overdue the next one is against the user's own usual gap), and order values (mean, spread, max, first)."""
    buys = (
        d.filter(pl.col("purchases") > 0)
        .sort("user_key", "day")
        .with_columns((pl.col("revenue") / pl.col("purchases")).alias("_order_value"))
    )
    if buys.is_empty():
        return pl.DataFrame(schema={"user_key": pl.Utf8})
    hist = buys.group_by("user_key").agg(
        (pl.len() - 1).alias("repeat_purchase_days"),
        (pl.col("day").max() - pl.col("day").min()).dt.total_days().alias("purchase_span_days"),
        (pl.lit(as_of) - pl.col("day").min()).dt.total_days().alias("days_since_first_purchase"),
        pl.col("day").diff().dt.total_days().drop_nulls().std().alias("purchase_gap_std_days"),
        pl.col("_order_value").std().alias("order_value_std"),
        pl.col("_order_value").max().alias("order_value_max"),
        pl.col("_order_value").first().alias("first_order_value"),
        (pl.col("revenue").sum() / pl.col("purchases").sum()).alias("order_value_mean"),
        # Gamma-Gamma's spend per transaction: the mean over repeat purchase days only
        ((pl.col("revenue").sum() - pl.col("revenue").first()) / (pl.len() - 1)).alias("repeat_order_value_mean"),
    )
    gap = pl.col("purchase_span_days") / pl.col("repeat_purchase_days")
    return hist.with_columns(
        pl.when(pl.col("repeat_purchase_days") > 0).then(gap).otherwise(None).alias("purchase_gap_mean_days"),
        pl.when(pl.col("repeat_purchase_days") > 0)
        .then(pl.col("repeat_order_value_mean"))
        .otherwise(None)
        .alias("repeat_order_value_mean"),
    ).with_columns(
        # days since the last purchase over the user's usual gap: 1 when the next purchase is due, 3 when overdue
        ((pl.col("days_since_first_purchase") - pl.col("purchase_span_days")) / pl.col("purchase_gap_mean_days")).alias(
            "purchase_overdue_ratio"
        ),
    )


def feature_columns(frame: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(features, categorical features) of a feature frame: everything but keys, dates and labels."""
    skip = set(META_COLUMNS) | {"label"}
    # sorted: pivots give columns in the order values first appear, which varies from run to run, and CatBoost's
    # result depends on the column order (same data, same model)
    feats = sorted(c for c in frame.columns if c not in skip)
    cats = [c for c in feats if frame.schema[c] in (pl.Utf8, pl.String, pl.Categorical)]
    return feats, cats
