"""Realistic Mixpanel raw-export data for two demo customers, with the hidden truth written next to it.

Pure Python + numpy + polars (no Dagster). One call writes a customer's raw export files, ``truth.parquet``
(one row per signed-up user: observable attributes, latent traits, the exact daily parameters and the realised
outcome times) and ``truth.json`` (generator parameters and the formulas below)::

    summary = generate_demo(DemoSpec("powerplay", n_users=3000, start=date(2024, 1, 1), days=180), out_dir)

Customers
---------
``powerplay``  construction-management app (India), project timezone ``Asia/Kolkata``.
    Export-API layout: ``<out_dir>/<YYYY-MM-DD>.jsonl.gz``, one gzipped JSONL file per day.
    Goal event "Project Created"; conversion/purchase event "Subscription Purchased" (``amount`` INR,
    ``currency``, ``plan``, ``billing_cycle``); "Subscription Cancelled" when a subscriber starts to fade.
``foodie``  the growth-workshop food-sharing site (US), project timezone ``America/Los_Angeles``.
    Object-storage data-pipeline layout:
    ``<out_dir>/<project_id>/mp_master_event/<YYYY>/<MM>/<DD>/part-NNNNN.json.gz`` (3 or 4 parts a day; on
    about one day in five the last part is written uncompressed as ``part-NNNNN.json``). JSONL inside.
    Goal event "Share"; conversion/purchase event "Buy" (``price`` USD with cents, ``cuisine``, ``meal_id``).

Every day of the period gets its file(s), even an empty one. A file holds the events whose true time falls
on that calendar day in the project timezone (the only exception: late re-sent duplicates, see Dirt).
Within a file, records are ordered by arrival (``mp_processing_time_ms``), not by event time.

Records
-------
``{"event": ..., "properties": {"time", "distinct_id", <identity props>, <device/location props>,
"$insert_id", "mp_processing_time_ms", <super props>, <event props>}}``. ``time`` is true UTC epoch seconds,
except (a) a random ``ms_share`` of records carry epoch *milliseconds* (13 digits; anything >= 1e11 is ms) and
(b) with ``time_in_project_timezone=True`` every ``time`` encodes the project's local wall clock as if it were
UTC (old Mixpanel projects). ``mp_processing_time_ms`` is always true UTC milliseconds, >= the event's true
time (seconds of delay; hours for ~8% of mobile events sent after being offline).

Identity: 90% of users use the *simplified* ID merge: anonymous events have ``distinct_id = "$device:<device_id>"``
and ``$device_id``; "Sign Up" carries ``$device_id`` and ``$user_id`` (the merge); afterwards
``distinct_id = user_id`` with ``$user_id`` (plus ``$device_id`` on mobile). 10% use the *original* ID merge:
anonymous events have ``distinct_id = <device_id>`` (raw, no prefix, no ``$device_id``), and at sign-up either
an ``$identify`` event (``distinct_id`` = user id, ``$anon_distinct_id`` = the device distinct_id,
``$identified_id`` = user id; ~80% of them) or a ``$create_alias`` event (``distinct_id`` = the device distinct_id,
``alias`` = user id; ~20%), then events under the user id with no ``$user_id``/``$device_id``. Users may have
anonymous visits 1-5 days before signing up; extra anonymous visitors (25% of ``n_users``) never sign up.
``utm_source``/``utm_medium``/``utm_campaign`` appear on anonymous events and on "Sign Up" (not for direct
users); web users carry ``$initial_referring_domain`` ("$direct" for direct) on every event.

Dirt (all per day, counted in the summary and in truth.json)
-------------------------------------------------------------
* duplicates: ~``duplicate_share`` of records get one extra copy with the same event, distinct_id, time and
  $insert_id. 80% are byte-identical copies in the same file; 20% are *late re-sends* placed in the NEXT day's
  file (same time => their time falls on the previous day; their ``mp_processing_time_ms`` is later, so the line
  is not byte-identical). On the last day all copies stay in-day.
* malformed lines (``malformed_per_day`` per day, kinds cycled from a random start): ``truncated`` (a record
  cut short, invalid JSON), ``split`` (one record written over two physical lines; concatenating the two lines
  without the newline gives the original valid JSON), ``missing_distinct_id`` (valid JSON without
  ``properties.distinct_id``), ``string_time`` (``"time": "yesterday"``). Export layout only:
  ``terminated_early`` -- a stray last line ``terminated early`` on ~5% of days (always on the middle day when
  ``malformed_per_day > 0``). Malformed records replace ordinary activity events (never sign-ups, purchases,
  goal, cancellation or identity events), so the truth stays observable from the well-formed records.

``DemoSummary`` also carries ``late_duplicates``, ``anonymous_visitors`` and ``seconds`` (wall time).
``DemoSummary.events`` = unique well-formed one-line records; ``duplicates`` = extra copies (all kinds);
``malformed[kind]`` = corrupted records (the ``split`` ones are recoverable events not counted in ``events``).
So: JSON-parseable lines = events + duplicates + missing_distinct_id + string_time (+ 0 for split halves).

Hidden truth: the daily process
-------------------------------
Days are calendar days of the project timezone, indexed from the user's sign-up day (day 0). Each user is
in state A (engaged), B (fading) or D (silent = churned). On every day k >= 1, in this order:

1. A -> B with probability ``churn_hazard``. If the user is a subscriber (converted, not cancelled) the
   subscription is cancelled on that day with probability ``cancel_probability`` ("Subscription
   Cancelled" is emitted if the user is still alive that day; no purchases afterwards).
2. B -> D with probability ``fade_exit_hazard`` (1.0 for "abrupt" churners, who go A -> D in one day;
   0.1 for gradual ones, whose fade lasts Geometric(0.1)-1 days, mean 9). D is absorbing: no event on the
   churn day or ever after (no returns). ``churn_time`` = local midnight starting the first silent day.
3. While alive (A or B), with m = 1 in A and m = ``fade_outcome_factor`` (0.3) in B:
   * not yet converted: converts with probability ``conversion_hazard * m`` (one purchase event);
   * converted before today and not cancelled: Poisson(``purchase_rate * m``) further purchases;
   * goal not yet reached: reaches it with probability ``goal_hazard * m`` (the first goal event);
   * Poisson(``sessions_per_day * weekday_factor * decay``) sessions, each an opening event plus
     Poisson(``events_per_session``) activity events; decay = 1 in A and 0.8**(days in B + 1) in B
     (the visible 1-2 week decline before gradual churn). A day with an outcome event has >= 1 session.
Day 0 (sign-up day) is in state A with no transitions; conversion and goal can happen after the sign-up.
Each purchase's value is ``mean_order_value * LogNormal(-s^2/2, s)`` (s = 0.35 powerplay, 0.3 foodie), so its
expectation is exactly ``mean_order_value``. ``activity_rate = sessions_per_day * (1 + events_per_session)``
(expected activity events per day in A; weekday factors average to 1). ``behaviour_change`` multiplies the
rate of one activity/session event from its start date (thinning, or extra copies when factor > 1; for the
goal event only its repeats after the goal); outcome events (sign-up, purchase, first goal, cancellation,
identity) are refused. It never touches the hazards, and the simulation draws are independent of it: the truth
and every file before the change date are byte-identical with or without it.

The parameters are non-linear functions of traits and observable attributes (thresholds and interactions,
listed in truth.json ``formulas``), e.g. powerplay churn x3 for engagement < 0.3 on iOS, conversion x5 for
company_size >= 20 AND channel referral.

Oracle: computing the true probability of an outcome in a window
----------------------------------------------------------------
Condition on the user's state at the END of local day ``as_of`` read from the truth's realised dates:
alive iff ``signup_date <= as_of`` and (``churn_date`` is null or ``churn_date > as_of``); in B iff
``fade_start_date <= as_of``; converted iff ``conversion_date <= as_of``; cancelled iff ``cancel_date <= as_of``;
goal reached iff ``goal_date <= as_of``. The window is the days ``as_of+1 .. as_of+h``.

* churn, user in B:  P = 1 - (1-q)^h  with q = fade_exit_hazard.
* churn, user in A:  P = 1 - (1-p)^h - sum_{j=1..h} (1-p)^(j-1) p (1-q)^(h-j+1)   (p = churn_hazard),
  which is 1-(1-p)^h for abrupt churners (q = 1).
* conversion / goal / expected revenue: run the daily recursion above forward over the state probabilities
  {A, B} x {not converted, converted, cancelled} (goal: {A, B} x {not reached}) for h days -- see
  ``true_outcome_probability``, which implements exactly that. Expected revenue = sum over days of
  P(subscriber in A)*purchase_rate*MOV + P(subscriber in B)*purchase_rate*f*MOV + P(converts that day)*MOV.

``true_outcome_probability(truth, kind, as_of, horizon_days)`` returns (user_id, probability) for kinds
"churn" (users alive at as_of), "conversion" (alive, not converted), "goal" (alive, goal not reached) and
(user_id, expected_revenue) for "ltv" (every user signed up by as_of; 0.0 if already churned).
Because the oracle knows the hidden A/B state, it is an upper reference: models only see the fade as a
noisy decline in activity (``hidden_state=False`` gives the weaker traits-only reference, every alive user
treated as in A). Measured on powerplay, 20k users, as_of day 90, 29-day churn: oracle AUC 0.75, traits-only
0.69; simple count/recency features reach ~0.68 (logistic regression) / ~0.70 (gradient boosting).

Determinism: one spec + seed gives byte-identical files (gzip mtime 0, no set/dict-order randomness). Re-running
into the same directory first deletes this layout's previous export files (only those), then rewrites.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

__all__ = [
    "DEMO_TIMEZONES",
    "BehaviourChange",
    "DemoSpec",
    "DemoSummary",
    "first_outcome_probability",
    "generate_demo",
    "true_outcome_probability",
    "day_files_for",
]

DEMO_TIMEZONES = {"powerplay": "Asia/Kolkata", "foodie": "America/Los_Angeles"}
DEMO_LAYOUTS = {"powerplay": "export_api", "foodie": "object_storage"}

# Process constants (also written to truth.json and, per user, to truth.parquet).
FADE_OUTCOME_FACTOR = 0.3  # conversion / purchase / goal rates are multiplied by this while fading (state B)
GRADUAL_FADE_EXIT_HAZARD = 0.1  # B -> D per day for gradual churners (abrupt churners: 1.0)
GRADUAL_SHARE = 0.55  # share of users who churn gradually
FADE_ACTIVITY_DECAY = 0.8  # activity multiplier per day spent fading
ANON_VISITOR_SHARE = 0.25  # anonymous-only visitors, as a share of n_users
LEGACY_ID_MERGE_SHARE = 0.10  # users on the original ID-merge API
ALIAS_SHARE_OF_LEGACY = 0.20  # of those, the share using $create_alias instead of $identify
LATE_DUPLICATE_SHARE = 0.20  # of duplicates, the share re-sent in the next day's file
GZIP_LEVEL = 3
FAVOURITE_CATEGORY_SHARE = 0.55  # share of cuisine-tagged events that carry the user's favourite (else uniform)

MALFORMED_KINDS = ("truncated", "split", "missing_distinct_id", "string_time")
_KIND_ANON, _KIND_SIGNUP, _KIND_IDENT, _KIND_IDENTIFY, _KIND_ALIAS = range(5)
_N_KINDS = 5


# ----------------------------------------------------------------------------------------------------- API
@dataclass(frozen=True)
class BehaviourChange:
    """From local date ``start`` on, the rate of activity event ``event`` is multiplied by ``factor``."""

    start: date
    event: str
    factor: float


@dataclass(frozen=True)
class DemoSpec:
    customer: str  # "powerplay" | "foodie"
    n_users: int
    start: date
    days: int
    seed: int = 7
    ms_share: float = 0.05
    duplicate_share: float = 0.015
    malformed_per_day: int = 3
    time_in_project_timezone: bool = False
    behaviour_change: BehaviourChange | None = None
    project_id: str = "2195193"


@dataclass
class DemoSummary:
    customer: str
    out_dir: Path
    days: int
    files: int
    events: int
    users: int
    duplicates: int
    malformed: dict[str, int]
    late_duplicates: int = 0  # of ``duplicates``, the copies written to the next day's file
    anonymous_visitors: int = 0  # visitors who never sign up (not in truth.parquet)
    seconds: float = 0.0


def day_files_for(spec: DemoSpec, out_dir: Path, day: date) -> list[Path]:
    """The files ``generate_demo`` wrote for one local day (sorted)."""
    out_dir = Path(out_dir)
    if DEMO_LAYOUTS[spec.customer] == "export_api":
        return [out_dir / f"{day.isoformat()}.jsonl.gz"]
    folder = out_dir / spec.project_id / "mp_master_event" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


# ------------------------------------------------------------------------------------------ customer models
_HOURS_IN = np.array(
    [
        0.2,
        0.1,
        0.05,
        0.05,
        0.1,
        0.4,
        1.5,
        3.0,
        5.5,
        7.0,
        7.5,
        6.5,
        5.0,
        4.5,
        5.5,
        6.0,
        6.5,
        6.0,
        5.0,
        4.0,
        3.0,
        2.0,
        1.0,
        0.5,
    ]
)
_HOURS_US = np.array(
    [
        0.8,
        0.4,
        0.2,
        0.15,
        0.15,
        0.3,
        0.8,
        1.8,
        2.5,
        2.8,
        3.2,
        4.5,
        5.5,
        4.0,
        3.0,
        3.0,
        3.5,
        5.0,
        6.5,
        7.0,
        6.5,
        5.0,
        3.5,
        1.8,
    ]
)

_IN_CITIES = [
    ("Mumbai", "Maharashtra", 14),
    ("Pune", "Maharashtra", 10),
    ("Bengaluru", "Karnataka", 12),
    ("Delhi", "Delhi", 10),
    ("Hyderabad", "Telangana", 10),
    ("Chennai", "Tamil Nadu", 8),
    ("Ahmedabad", "Gujarat", 7),
    ("Kolkata", "West Bengal", 6),
    ("Jaipur", "Rajasthan", 5),
    ("Lucknow", "Uttar Pradesh", 4),
    ("Surat", "Gujarat", 3),
    ("Nagpur", "Maharashtra", 3),
    ("Indore", "Madhya Pradesh", 3),
    ("Noida", "Uttar Pradesh", 3),
    ("Gurugram", "Haryana", 2),
]
_US_CITIES = [
    ("San Francisco", "California", 12),
    ("Los Angeles", "California", 14),
    ("Seattle", "Washington", 8),
    ("New York", "New York", 14),
    ("Austin", "Texas", 7),
    ("Chicago", "Illinois", 9),
    ("Portland", "Oregon", 5),
    ("San Diego", "California", 6),
    ("Denver", "Colorado", 5),
    ("Boston", "Massachusetts", 6),
    ("Miami", "Florida", 6),
    ("Atlanta", "Georgia", 5),
]

CUISINES = ("japanese", "chinese", "french", "german", "italian", "mexican", "vietnamese")
_N_MEALS = 40
_CUISINE_MOV = np.array([28.0, 16.0, 38.0, 22.0, 24.0, 14.0, 15.0])


def _j(value) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class _Model:
    name: str
    events: list[str]
    start_events: dict[int, tuple[list[str], list[float]]]  # platform -> session opening events
    anon_events: tuple[list[str], list[float]]  # follow-up events of anonymous sessions
    activity: list[str]  # activity event columns of the mixes
    mix_pre: np.ndarray  # (groups, n_activity) base mix before the goal; per-user modifiers in _user_mixes
    mix_post: np.ndarray  # after the goal
    goal_event: str
    conversion_event: str
    cancel_event: str | None
    amount_key: str
    amount_sigma: float
    hour_weights: np.ndarray
    weekday_factors: np.ndarray  # Monday..Sunday, mean 1
    event_props: dict[str, list[str]] = field(default_factory=dict)  # pre-rendered ',"k":v' fragments
    cuisine_events: tuple[str, ...] = ()
    cancel_probability: float = 0.0

    def code(self, name: str) -> int:
        return self.events.index(name)


def _norm(w) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _powerplay_model() -> _Model:
    activity = [
        "Task Created",
        "Task Completed",
        "Attendance Marked",
        "Material Request Created",
        "Photo Uploaded",
        "Report Generated",
        "Project Created",
    ]
    # groups = roles: owner, site engineer, supervisor, purchase manager
    base = np.array(
        [
            [0.22, 0.14, 0.08, 0.10, 0.14, 0.30, 0.02],
            [0.28, 0.24, 0.14, 0.10, 0.22, 0.02, 0.00],
            [0.18, 0.18, 0.36, 0.06, 0.20, 0.02, 0.00],
            [0.10, 0.06, 0.06, 0.60, 0.10, 0.08, 0.00],
        ]
    )
    post = base.copy()
    post[:, 6] = [0.05, 0.02, 0.01, 0.01]
    pre = base.copy()
    pre[:, 6] = 0.0
    events = [
        "Sign Up",
        "App Open",
        "Login",
        "Page View",
        "Onboarding Viewed",
        *activity,
        "Subscription Purchased",
        "Subscription Cancelled",
        "$identify",
        "$create_alias",
    ]
    props = {
        "Sign Up": [',"signup_method":"phone_otp"'] * 6
        + [',"signup_method":"google"'] * 3
        + [',"signup_method":"email"'],
        "Login": [',"login_method":"otp"'] * 3 + [',"login_method":"password"'],
        "Page View": [f',"page":{_j(p)}' for p in ("/dashboard", "/projects", "/tasks", "/reports", "/pricing")],
        "Onboarding Viewed": [f',"step":{s}' for s in (1, 2, 3, 4)],
        "Task Created": [
            f',"priority":{_j(p)},"task_category":{_j(c)}'
            for p in ("high", "medium", "medium", "low")
            for c in ("civil", "electrical", "plumbing", "finishing", "safety")
        ],
        "Task Completed": [',"on_time":true'] * 3 + [',"on_time":false'],
        "Attendance Marked": [f',"workers_present":{k}' for k in range(1, 61)],
        "Material Request Created": [
            f',"material":{_j(m)},"quantity_unit":{_j(u)}'
            for m, u in (
                ("cement", "bags"),
                ("steel", "tons"),
                ("sand", "cubic feet"),
                ("bricks", "units"),
                ("aggregate", "cubic feet"),
                ("tiles", "boxes"),
                ("paint", "litres"),
            )
        ],
        "Photo Uploaded": [f',"photo_count":{k}' for k in (1, 1, 1, 2, 2, 3, 4, 6)],
        "Report Generated": [
            f',"report_type":{_j(r)}'
            for r in ("daily progress", "daily progress", "material", "attendance", "financial")
        ],
        "Project Created": [f',"project_value_band":{_j(b)}' for b in ("<10L", "10L-1Cr", "10L-1Cr", ">1Cr")],
        # Subscription Purchased: variant = plan (chosen from the amount), see _purchase_rows
        "Subscription Purchased": [
            ',"currency":"INR","plan":"starter","billing_cycle":"monthly"',
            ',"currency":"INR","plan":"business","billing_cycle":"monthly"',
            ',"currency":"INR","plan":"enterprise","billing_cycle":"annual"',
        ],
        "Subscription Cancelled": [
            f',"reason":{_j(r)}' for r in ("too expensive", "not using", "switched tool", "project ended")
        ],
    }
    return _Model(
        name="powerplay",
        events=events,
        start_events={
            0: (["App Open", "Login"], [0.9, 0.1]),
            1: (["App Open", "Login"], [0.9, 0.1]),
            2: (["Page View", "Login"], [0.6, 0.4]),
        },
        anon_events=(["Onboarding Viewed", "Page View"], [0.8, 0.2]),
        activity=activity,
        mix_pre=pre / pre.sum(1, keepdims=True),
        mix_post=post / post.sum(1, keepdims=True),
        goal_event="Project Created",
        conversion_event="Subscription Purchased",
        cancel_event="Subscription Cancelled",
        amount_key="amount",
        amount_sigma=0.35,
        hour_weights=_norm(_HOURS_IN),
        weekday_factors=np.array([1.07, 1.07, 1.07, 1.07, 1.07, 0.9, 0.75]) / (5 * 1.07 + 0.9 + 0.75) * 7,
        event_props=props,
        cancel_probability=0.35,
    )


def _foodie_model() -> _Model:
    activity = ["Meal Viewed", "Like", "Page View", "Share"]
    # groups = platforms: Android, iOS, web
    base = np.array([[0.62, 0.24, 0.06, 0.08], [0.60, 0.26, 0.06, 0.08], [0.58, 0.18, 0.18, 0.06]])
    pre = base.copy()
    pre[:, 3] = 0.0
    events = [
        "Sign Up",
        "App Open",
        "Page View",
        *[a for a in activity if a != "Page View"],
        "Buy",
        "$identify",
        "$create_alias",
    ]
    props = {
        "Sign Up": [',"signup_method":"email"'] * 3
        + [',"signup_method":"facebook"'] * 2
        + [',"signup_method":"google"'],
        "Page View": [f',"page":{_j(p)}' for p in ("/", "/", "/meals", "/cuisines", "/about", "/deals")],
    }
    return _Model(
        name="foodie",
        events=events,
        start_events={0: (["App Open"], [1.0]), 1: (["App Open"], [1.0]), 2: (["Page View"], [1.0])},
        anon_events=(["Meal Viewed", "Page View"], [0.7, 0.3]),
        activity=activity,
        mix_pre=pre / pre.sum(1, keepdims=True),
        mix_post=base / base.sum(1, keepdims=True),
        goal_event="Share",
        conversion_event="Buy",
        cancel_event=None,
        amount_key="price",
        amount_sigma=0.3,
        hour_weights=_norm(_HOURS_US),
        weekday_factors=np.array([0.93, 0.92, 0.93, 0.95, 1.02, 1.15, 1.10])
        / 7.0
        * 7
        / np.mean([0.93, 0.92, 0.93, 0.95, 1.02, 1.15, 1.10]),
        event_props=props,
        cuisine_events=("Meal Viewed", "Like", "Share", "Buy"),
        cancel_probability=0.0,
    )


def _model(customer: str) -> _Model:
    if customer == "powerplay":
        return _powerplay_model()
    if customer == "foodie":
        return _foodie_model()
    raise ValueError(f"unknown demo customer {customer!r}; expected one of {sorted(DEMO_TIMEZONES)}")


# ----------------------------------------------------------------------------------- profiles & parameters
_PP_CHANNELS = ["google", "facebook", "referral", "youtube", "instagram", "direct"]
_PP_CHANNEL_P = [0.27, 0.20, 0.15, 0.10, 0.08, 0.20]
_PP_CAMPAIGNS = {
    "google": "search_construction_app",
    "facebook": "fb_contractor_leads",
    "referral": "refer_a_contractor",
    "youtube": "yt_product_demo",
    "instagram": "ig_site_reels",
}
_PP_DOMAINS = {
    "google": "www.google.com",
    "facebook": "m.facebook.com",
    "referral": "web.whatsapp.com",
    "youtube": "www.youtube.com",
    "instagram": "l.instagram.com",
    "direct": "$direct",
}
_PP_ROLES = ["owner", "site engineer", "supervisor", "purchase manager"]
_PP_ROLE_P = [0.30, 0.35, 0.25, 0.10]
_PP_PROJECT_TYPES = ["residential", "commercial", "infrastructure", "interior"]
_PP_PROJECT_P = [0.45, 0.25, 0.12, 0.18]

_FD_CHANNELS = ["facebook", "twitter", "reddit", "pinterest"]
_FD_CHANNEL_P = [0.34, 0.18, 0.20, 0.28]
_FD_CAMPAIGNS = {
    "facebook": ["fb_spring_menu", "fb_lookalike_foodies", "fb_retarget_cart"],
    "twitter": ["tw_promoted_recipes", "tw_influencer_chefs"],
    "reddit": ["r_food_sponsored", "r_cooking_ama"],
    "pinterest": ["pin_meal_boards", "pin_seasonal_recipes"],
}
_FD_DOMAINS = {
    "facebook": "l.facebook.com",
    "twitter": "t.co",
    "reddit": "out.reddit.com",
    "pinterest": "www.pinterest.com",
}

_PLATFORMS = ["Android", "iOS", "web"]


def _sample_common(rng, n_total, platform_p, cities):
    platform = rng.choice(3, size=n_total, p=platform_p)
    web_os = np.where(rng.random(n_total) < 0.7, "Windows", "Mac OS X")
    os_ = np.where(platform == 0, "Android", np.where(platform == 1, "iOS", web_os))
    city = rng.choice(len(cities), size=n_total, p=_norm([c[2] for c in cities]))
    return platform, os_, city


def _profiles(model: _Model, rng: np.random.Generator, n: int, n_anon: int, days: int) -> dict:
    """Observable attributes, latent traits and ids of n users followed by n_anon anonymous-only visitors."""
    total = n + n_anon
    p = {}
    if model.name == "powerplay":
        platform, os_, city = _sample_common(rng, total, [0.72, 0.12, 0.16], _IN_CITIES)
        channel = rng.choice(len(_PP_CHANNELS), size=total, p=_PP_CHANNEL_P)
        role = rng.choice(4, size=total, p=_PP_ROLE_P)
        company_size = np.clip(np.round(np.exp(rng.normal(2.3, 1.0, total))), 1, 2000).astype(np.int64)
        project_type = rng.choice(4, size=total, p=_PP_PROJECT_P)
        ch = np.array(_PP_CHANNELS)[channel]
        e = _sigmoid(
            _logit(rng.beta(2.2, 2.2, total))
            + 0.5 * (role == 1)
            + 0.4 * (ch == "referral")
            - 0.4 * np.isin(ch, ["facebook", "instagram"])
            + 0.2 * (platform == 2)
        )
        s = _sigmoid(_logit(rng.beta(2.0, 2.0, total)) + 0.8 * (company_size < 10) - 0.6 * (company_size >= 50))
        team = np.maximum(1, np.round(company_size**0.55 * np.exp(rng.normal(0, 0.35, total)))).astype(np.int64)
        p.update(
            channel=ch,
            role=np.array(_PP_ROLES)[role],
            role_code=role,
            company_size=company_size,
            project_type=np.array(_PP_PROJECT_TYPES)[project_type],
            engagement=e,
            price_sensitivity=s,
            team_size=team,
            group=role,
        )
        p["campaign"] = np.array([_PP_CAMPAIGNS.get(c, "") for c in ch], dtype=object)
        cities = _IN_CITIES
    else:
        platform, os_, city = _sample_common(rng, total, [0.15, 0.27, 0.58], _US_CITIES)
        channel = rng.choice(4, size=total, p=_FD_CHANNEL_P)
        ch = np.array(_FD_CHANNELS)[channel]
        camp_u = rng.random(total)
        campaign = np.array(
            [_FD_CAMPAIGNS[c][int(u * len(_FD_CAMPAIGNS[c]))] for c, u in zip(ch, camp_u, strict=False)], dtype=object
        )
        fav = rng.choice(7, size=total, p=_norm([16, 15, 10, 6, 22, 18, 13]))
        e = _sigmoid(
            _logit(rng.beta(2.0, 2.5, total)) + 0.5 * (ch == "reddit") + 0.3 * ((ch == "pinterest") & (platform == 2))
        )
        s = _sigmoid(_logit(rng.beta(2.0, 2.0, total)) + 0.3 * (ch == "twitter"))
        c = _sigmoid(_logit(rng.beta(2.0, 3.0, total)) + 0.8 * (ch == "reddit") + 0.4 * (ch == "pinterest"))
        p.update(
            channel=ch,
            campaign=campaign,
            favourite_cuisine=np.array(CUISINES)[fav],
            fav_code=fav,
            engagement=e,
            price_sensitivity=s,
            sociability=c,
            group=platform,
        )
        cities = _US_CITIES
    p.update(
        platform=np.array(_PLATFORMS)[platform],
        platform_code=platform,
        os=os_,
        city=np.array([c[0] for c in cities])[city],
        region=np.array([c[1] for c in cities])[city],
    )

    # ids: device ids are UUID-like, user ids 24-hex (powerplay, Mongo-style) or numeric (foodie)
    raw = rng.bytes(16 * total).hex()
    dev = [
        f"{raw[i : i + 8]}-{raw[i + 8 : i + 12]}-4{raw[i + 13 : i + 16]}-a{raw[i + 17 : i + 20]}-{raw[i + 20 : i + 32]}"
        for i in range(0, 32 * total, 32)
    ]
    p["device_id"] = np.array(dev, dtype=object)
    if model.name == "powerplay":
        raw_u = rng.bytes(12 * n).hex()
        uid = [raw_u[i : i + 24] for i in range(0, 24 * n, 24)]
    else:
        uid = (
            [str(100000 + int(k)) for k in rng.permutation(900000)[:n]]
            if n <= 900000
            else [str(1000000 + int(k)) for k in rng.permutation(9000000)[:n]]
        )
    p["user_id"] = np.array(uid + [""] * n_anon, dtype=object)
    merge_u = rng.random(total)
    id_merge = np.where(
        merge_u < LEGACY_ID_MERGE_SHARE * ALIAS_SHARE_OF_LEGACY, 2, np.where(merge_u < LEGACY_ID_MERGE_SHARE, 1, 0)
    )
    p["id_merge_code"] = id_merge
    p["anon_distinct_id"] = np.where(
        id_merge == 0, np.char.add("$device:", p["device_id"].astype(str)), p["device_id"].astype(str)
    ).astype(object)

    return p


def _parameters(model: _Model, p: dict, n: int) -> dict[str, np.ndarray]:
    """Exact daily parameters of the n signed-up users (non-linear in traits and observables)."""
    e = p["engagement"][:n]
    s = p["price_sensitivity"][:n]
    ch = p["channel"][:n]
    plat = p["platform_code"][:n]
    if model.name == "powerplay":
        role = p["role_code"][:n]
        cs = p["company_size"][:n]
        team = p["team_size"][:n]
        ptype = p["project_type"][:n]
        sessions = (0.2 + 1.4 * e**1.6) * np.where(team >= 8, 1.25, 1.0) * np.where(plat == 2, 0.85, 1.0)
        eps = 0.8 + 1.6 * e + 0.3 * np.isin(role, [1, 2])
        churn = 0.0035 + 0.03 * (1 - e) ** 3
        churn = churn * np.where((e < 0.3) & (plat == 1), 3.0, 1.0) * np.where(team >= 10, 0.45, 1.0)
        churn = churn * np.where(np.isin(ch, ["facebook", "instagram"]) & (s > 0.6), 1.8, 1.0)
        churn = churn * np.where((role == 0) & (cs >= 20), 0.6, 1.0)
        conv = 0.0015 * (1 + 6 * e**2) * (1.6 - s)
        conv = conv * np.where((cs >= 20) & (ch == "referral"), 5.0, 1.0)
        conv = conv * np.select([role == 0, role == 1], [2.2, 0.5], 1.0) * np.where(plat == 2, 1.8, 1.0)
        conv = conv * np.where((cs < 5) & (s > 0.5), 0.35, 1.0)
        purchase = (1 / 30) * np.where(team >= 10, 1.6, 1.0)
        mov = (999 + 450 * team**0.85 * (1.25 - 0.5 * s)) * np.where(ptype == "infrastructure", 1.5, 1.0)
        goal = 0.03 * (0.25 + 1.6 * e) * np.select([role == 0, role == 1, role == 2], [3.0, 1.2, 0.8], 0.5)
        goal = goal * np.where(team == 1, 0.5, 1.0) * np.where((ch == "youtube") & (e > 0.5), 2.0, 1.0)
    else:
        c = p["sociability"][:n]
        fav = p["fav_code"][:n]
        sessions = 0.15 + 1.2 * e**1.5
        eps = 1.0 + 2.0 * e
        churn = 0.004 + 0.035 * (1 - e) ** 3
        churn = churn * np.where((ch == "pinterest") & (plat != 2) & (e < 0.35), 3.0, 1.0)
        churn = churn * np.where(c > 0.6, 0.5, 1.0) * np.where(ch == "twitter", 1.5, 1.0)
        conv = 0.004 * (1 + 5 * e**2) * (1.5 - s)
        conv = conv * np.where((ch == "reddit") & np.isin(fav, [0, 2]) & (s < 0.45), 4.0, 1.0)
        conv = conv * np.where(ch == "facebook", 1.8, 1.0) * np.where((ch == "twitter") & (plat != 2), 0.5, 1.0)
        purchase = (0.03 + 0.08 * e**2) * np.where(np.isin(fav, [1, 5, 6]), 1.5, 1.0)
        mov = _CUISINE_MOV[fav] * (1.3 - 0.6 * s)
        goal = (0.01 + 0.08 * c**2) * np.where(np.isin(ch, ["reddit", "pinterest"]) & (c > 0.5), 2.5, 1.0)
    return {
        "sessions_per_day": sessions,
        "events_per_session": eps,
        "activity_rate": sessions * (1 + eps),
        "churn_hazard": np.clip(churn, 0.001, 0.25),
        "conversion_hazard": np.clip(conv, 1e-4, 0.08),
        "purchase_rate": purchase,
        "mean_order_value": np.round(mov, 2),
        "goal_hazard": np.clip(goal, 0.002, 0.3),
    }


def _user_mixes(model: _Model, p: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative activity mixes (n, n_activity) before / after the goal: the group's base mix times per-user
    modifiers, so latent traits also show in *what* users do (team size in attendance, sociability in likes)."""
    g = np.asarray(p["group"][:n], dtype=np.int64)
    e = p["engagement"][:n]
    mod = np.ones((n, len(model.activity)))
    if model.name == "powerplay":
        team = p["team_size"][:n]
        mod[:, model.activity.index("Attendance Marked")] = 0.5 + 0.3 * np.log1p(team)
        mod[:, model.activity.index("Report Generated")] = np.where(team >= 10, 1.8, 1.0)
        mod[:, model.activity.index("Photo Uploaded")] = 0.6 + 0.8 * e
    else:
        c = p["sociability"][:n]
        s = p["price_sensitivity"][:n]
        mod[:, model.activity.index("Like")] = 0.3 + 2.0 * c
        mod[:, model.activity.index("Share")] = 0.3 + 2.5 * c
        mod[:, model.activity.index("Meal Viewed")] = 0.7 + 0.9 * s
    out = []
    for base in (model.mix_pre, model.mix_post):
        w = base[g] * mod
        out.append(np.cumsum(w / w.sum(1, keepdims=True), axis=1))
    return out[0], out[1]


MIX_MODIFIERS = {
    "powerplay": "weight x (0.5 + 0.3 ln(1+team_size)) for Attendance Marked, x 1.8[team>=10] for Report Generated, "
    "x (0.6 + 0.8 e) for Photo Uploaded; then renormalised",
    "foodie": "weight x (0.3 + 2 sociability) for Like, x (0.3 + 2.5 sociability) for Share, x (0.7 + 0.9 s) for "
    "Meal Viewed; then renormalised",
}


FORMULAS = {
    "powerplay": {
        "traits": "engagement = sigmoid(logit(Beta(2.2,2.2)) + 0.5[role=site engineer] + 0.4[referral] "
        "- 0.4[facebook|instagram] + 0.2[web]); price_sensitivity = sigmoid(logit(Beta(2,2)) "
        "+ 0.8[company_size<10] - 0.6[company_size>=50]); team_size = max(1, round(company_size^0.55 "
        "* LogNormal(0,0.35))); company_size = round(exp(N(2.3,1))) clipped 1..2000",
        "sessions_per_day": "(0.2 + 1.4 e^1.6) * 1.25[team>=8] * 0.85[web]",
        "events_per_session": "0.8 + 1.6 e + 0.3[role in site engineer, supervisor]",
        "churn_hazard": "clip((0.0035 + 0.03 (1-e)^3) * 3[e<0.3 & iOS] * 0.45[team>=10] "
        "* 1.8[facebook|instagram & s>0.6] * 0.6[owner & company_size>=20], 0.001, 0.25)",
        "conversion_hazard": "clip(0.0015 (1 + 6 e^2)(1.6 - s) * 5[company_size>=20 & referral] "
        "* {owner 2.2, site engineer 0.5, else 1} * 1.8[web] * 0.35[company_size<5 & s>0.5], "
        "1e-4, 0.08)",
        "purchase_rate": "(1/30) * 1.6[team>=10]   (renewals / add-on seats per day)",
        "mean_order_value": "(999 + 450 team^0.85 (1.25 - 0.5 s)) * 1.5[project_type=infrastructure]  INR",
        "goal_hazard": "clip(0.03 (0.25 + 1.6 e) * {owner 3, site engineer 1.2, supervisor 0.8, purchase "
        "manager 0.5} * 0.5[team=1] * 2[youtube & e>0.5], 0.002, 0.3)   goal = Project Created",
    },
    "foodie": {
        "traits": "engagement = sigmoid(logit(Beta(2,2.5)) + 0.5[reddit] + 0.3[pinterest & web]); "
        "price_sensitivity = sigmoid(logit(Beta(2,2)) + 0.3[twitter]); sociability = "
        "sigmoid(logit(Beta(2,3)) + 0.8[reddit] + 0.4[pinterest])",
        "sessions_per_day": "0.15 + 1.2 e^1.5",
        "events_per_session": "1.0 + 2.0 e",
        "churn_hazard": "clip((0.004 + 0.035 (1-e)^3) * 3[pinterest & mobile & e<0.35] * 0.5[sociability>0.6] "
        "* 1.5[twitter], 0.001, 0.25)",
        "conversion_hazard": "clip(0.004 (1 + 5 e^2)(1.5 - s) * 4[reddit & favourite in (japanese, french) & s<0.45] "
        "* 1.8[facebook] * 0.5[twitter & mobile], 1e-4, 0.08)",
        "purchase_rate": "(0.03 + 0.08 e^2) * 1.5[favourite in (chinese, mexican, vietnamese)]",
        "mean_order_value": "cuisine_base[favourite] * (1.3 - 0.6 s) USD, cuisine_base = "
        + json.dumps(dict(zip(CUISINES, _CUISINE_MOV.tolist(), strict=False))),
        "goal_hazard": "clip((0.01 + 0.08 c^2) * 2.5[(reddit|pinterest) & c>0.5], 0.002, 0.3)   goal = Share",
    },
}


# ----------------------------------------------------------------------------------------- small helpers
def _seg_arange(counts: np.ndarray) -> np.ndarray:
    """For groups of the given sizes, 0..size-1 within each group."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _session_offsets(rng: np.random.Generator, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the events of sessions of ``sizes`` events each: the event's position in its session and its seconds
    after the session start (exponential gaps, mean 50 s; the opening event at 0)."""
    pos = _seg_arange(sizes)
    gaps = rng.exponential(50.0, int(sizes.sum()))
    gaps[pos == 0] = 0.0
    offsets = np.cumsum(gaps)
    if len(sizes):
        offsets -= np.repeat(offsets[np.cumsum(sizes) - sizes], sizes)
    return pos, offsets


def _utc_offset(tz: ZoneInfo, ts: int) -> int:
    return int(datetime.fromtimestamp(ts, tz).utcoffset().total_seconds())


def _day_grid(start: date, days: int, tz: ZoneInfo):
    """Local midnights (UTC epoch s) of days 0..days, and per day (offset0, offset1, transition epoch)."""
    mid = np.array(
        [
            int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
            for d in (start + timedelta(days=k) for k in range(days + 2))
        ],
        dtype=np.int64,
    )
    offs = []
    for k in range(days + 1):
        a, b = int(mid[k]), int(mid[k + 1])
        o0, o1 = _utc_offset(tz, a), _utc_offset(tz, b - 1)
        tr = b
        if o0 != o1:
            lo, hi = a, b - 1
            while hi - lo > 1:
                m = (lo + hi) // 2
                if _utc_offset(tz, m) == o0:
                    lo = m
                else:
                    hi = m
            tr = hi
        offs.append((o0, o1, tr))
    return mid, offs


def _pick(rng, n, names_probs, model: _Model) -> np.ndarray:
    names, probs = names_probs
    codes = np.array([model.code(x) for x in names], dtype=np.int64)
    if len(codes) == 1:
        return np.full(n, codes[0], dtype=np.int64)
    return codes[rng.choice(len(codes), size=n, p=_norm(probs))]


# --------------------------------------------------------------------------------------------- the engine
class _Rows:
    """Column arrays of one day's events before formatting."""

    __slots__ = ("u", "kind", "ev", "sec", "act", "amt")

    def __init__(self):
        self.u, self.kind, self.ev, self.sec, self.act, self.amt = [], [], [], [], [], []

    def add(self, u, kind, ev, sec, act, amt=None):
        n = len(u)
        if n == 0:
            return
        self.u.append(np.asarray(u, dtype=np.int64))
        self.kind.append(np.broadcast_to(np.asarray(kind, dtype=np.int64), (n,)).copy())
        self.ev.append(np.broadcast_to(np.asarray(ev, dtype=np.int64), (n,)).copy())
        self.sec.append(np.asarray(sec, dtype=np.float64))
        self.act.append(np.broadcast_to(np.asarray(act, dtype=bool), (n,)).copy())
        self.amt.append(np.full(n, -1, dtype=np.int64) if amt is None else np.asarray(amt, dtype=np.int64))

    def arrays(self):
        if not self.u:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, np.zeros(0), np.zeros(0, dtype=bool), z
        return (
            np.concatenate(self.u),
            np.concatenate(self.kind),
            np.concatenate(self.ev),
            np.concatenate(self.sec),
            np.concatenate(self.act),
            np.concatenate(self.amt),
        )


def _user_fragments(model: _Model, p: dict, n: int) -> pl.Series:
    """Per (user, kind) the identity + device + super-property fragment, flattened as kind * total + u.

    Built column-wise in polars. Every value comes from a fixed vocabulary or is hex/digits, so no JSON escaping
    is needed (checked by _check_vocabularies)."""
    total = len(p["platform"])
    pp = model.name == "powerplay"
    plat = p["platform_code"]
    h = np.array([int(d[:8], 16) for d in p["device_id"]], dtype=np.int64)
    versions = np.array(["5.12.0", "5.13.1", "5.14.2", "5.14.3"] if pp else ["3.2.0", "3.3.1"])
    browsers = np.array(["Chrome", "Chrome", "Chrome", "Edge", "Safari", "Firefox"])
    domains = _PP_DOMAINS if pp else _FD_DOMAINS
    ch = p["channel"].astype(str)
    medium = np.where(ch == "referral", "referral", np.where(np.isin(ch, ["google", "facebook"]), "cpc", "social"))
    cols = pl.DataFrame(
        {
            "anon": p["anon_distinct_id"].astype(str),
            "dev": p["device_id"].astype(str),
            "uid": p["user_id"].astype(str),
            "merge": p["id_merge_code"].astype(np.int64),
            "web": plat == 2,
            "user": np.arange(total) < n,
            "os": p["os"].astype(str),
            "city": p["city"].astype(str),
            "region": p["region"].astype(str),
            "lib": np.array(["android", "iphone", "web"])[plat],
            "ver": versions[h % len(versions)],
            "browser": browsers[h % len(browsers)],
            "domain": np.array([domains[c] for c in ch]),
            "ch": ch,
            "medium": medium,
            "campaign": p["campaign"].astype(str),
            "sup": (
                np.char.add(
                    np.char.add(
                        np.char.add(
                            np.char.add(np.char.add(',"company_size":', p["company_size"].astype(str)), ',"role":"'),
                            p["role"].astype(str),
                        ),
                        '","project_type":"',
                    ),
                    p["project_type"].astype(str),
                )
                if pp
                else np.full(total, '"')
            ),
        }
    )
    c = pl.col
    lit = pl.lit
    q = lit('"')
    devp = pl.concat_str(
        [
            lit(',"$os":"'),
            c("os"),
            lit('","$city":"'),
            c("city"),
            lit('","$region":"'),
            c("region"),
            lit(f'","mp_country_code":"{"IN" if pp else "US"}","mp_lib":"'),
            c("lib"),
            q,
            pl.when(c("web"))
            .then(
                pl.concat_str(
                    [lit(',"$browser":"'), c("browser"), lit('","$initial_referring_domain":"'), c("domain"), q]
                )
            )
            .otherwise(pl.concat_str([lit(',"$app_version_string":"'), c("ver"), q])),
        ]
    )
    utm = (
        pl.when(c("ch") == "direct")
        .then(lit(""))
        .otherwise(
            pl.concat_str(
                [
                    lit(',"utm_source":"'),
                    c("ch"),
                    lit('","utm_medium":"'),
                    c("medium"),
                    lit('","utm_campaign":"'),
                    c("campaign"),
                    q,
                ]
            )
        )
    )
    sup = pl.concat_str([c("sup"), q]) if pp else lit("")
    simplified = c("merge") == 0
    did_anon = pl.concat_str([lit('"distinct_id":"'), c("anon"), q])
    did_user = pl.concat_str([lit('"distinct_id":"'), c("uid"), q])
    k_anon = pl.concat_str(
        [
            did_anon,
            pl.when(simplified).then(pl.concat_str([lit(',"$device_id":"'), c("dev"), q])).otherwise(lit("")),
            devp,
            utm,
        ]
    )
    k_sign = pl.concat_str(
        [
            did_user,
            pl.when(simplified)
            .then(pl.concat_str([lit(',"$device_id":"'), c("dev"), lit('","$user_id":"'), c("uid"), q]))
            .otherwise(lit("")),
            devp,
            sup,
            utm,
        ]
    )
    k_ident = pl.concat_str(
        [
            did_user,
            pl.when(simplified)
            .then(
                pl.concat_str(
                    [
                        lit(',"$user_id":"'),
                        c("uid"),
                        q,
                        pl.when(c("web")).then(lit("")).otherwise(pl.concat_str([lit(',"$device_id":"'), c("dev"), q])),
                    ]
                )
            )
            .otherwise(lit("")),
            devp,
            sup,
        ]
    )
    k_identify = pl.concat_str(
        [did_user, lit(',"$anon_distinct_id":"'), c("anon"), lit('","$identified_id":"'), c("uid"), q, devp]
    )
    k_alias = pl.concat_str([did_anon, lit(',"alias":"'), c("uid"), q, devp])
    frags = cols.select(
        k_anon.alias("k0"),
        pl.when(c("user")).then(k_sign).otherwise(lit("")).alias("k1"),
        pl.when(c("user")).then(k_ident).otherwise(lit("")).alias("k2"),
        pl.when(c("user") & (c("merge") == 1)).then(k_identify).otherwise(lit("")).alias("k3"),
        pl.when(c("user") & (c("merge") == 2)).then(k_alias).otherwise(lit("")).alias("k4"),
    )
    return pl.concat([frags[f"k{k}"] for k in range(_N_KINDS)]).rechunk().alias("uf")


def _check_vocabularies() -> None:
    words = [
        *_PP_CHANNELS,
        *_PP_CAMPAIGNS.values(),
        *_PP_DOMAINS.values(),
        *_PP_ROLES,
        *_PP_PROJECT_TYPES,
        *_FD_CHANNELS,
        *[c for v in _FD_CAMPAIGNS.values() for c in v],
        *_FD_DOMAINS.values(),
        *CUISINES,
        *[c[0] for c in _IN_CITIES + _US_CITIES],
        *[c[1] for c in _IN_CITIES + _US_CITIES],
    ]
    bad = [w for w in words if json.dumps(w) != f'"{w}"']
    if bad:  # pragma: no cover - guards future edits of the vocabularies
        raise AssertionError(f"vocabulary values need JSON escaping: {bad}")


def _event_fragment_table(model: _Model):
    """Flat table of event-property fragments: index 0 is ''. Returns (series, offset[ev], count[ev], cuisine_off)."""
    table = [""]
    offset = np.zeros(len(model.events), dtype=np.int64)
    count = np.zeros(len(model.events), dtype=np.int64)
    for k, name in enumerate(model.events):
        frags = model.event_props.get(name, [])
        if frags:
            offset[k] = len(table)
            count[k] = len(frags)
            table.extend(frags)
    cuisine_off = len(table)
    for ci, cu in enumerate(CUISINES):
        for m in range(_N_MEALS):
            table.append(f',"cuisine":"{cu}","meal_id":{(ci + 1) * 1000 + m + 1}')
    return pl.Series("ef", table, dtype=pl.String), offset, count, cuisine_off


def _lines_bytes(lines: pl.Series) -> bytes:
    """The lines joined with newlines (and a final newline), as UTF-8 bytes, without a Python list."""
    buf = io.BytesIO()
    lines.to_frame("line").write_csv(buf, include_header=False, quote_style="never", line_terminator="\n")
    return buf.getvalue()


def _file_writer(path: Path, data: bytes, compress: bool) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if compress else data
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return len(payload)


def _clean_layout(spec: DemoSpec, out_dir: Path) -> None:
    if DEMO_LAYOUTS[spec.customer] == "export_api":
        pat = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl\.gz$")
        for f in sorted(out_dir.glob("*.jsonl.gz")):
            if pat.match(f.name):
                f.unlink()
    else:
        root = out_dir / spec.project_id / "mp_master_event"
        if root.is_dir():
            shutil.rmtree(root)


def _corrupt(kind: str, line: str, rng: np.random.Generator) -> str:
    if kind == "truncated":
        cut = int(len(line) * (0.3 + 0.6 * rng.random()))
        return line[: max(1, min(cut, len(line) - 2))]
    if kind == "split":
        commas = [m.start() for m in re.finditer(",", line)]
        k = commas[len(commas) // 2] + 1 if commas else len(line) // 2
        return line[:k] + "\n" + line[k:]
    rec = json.loads(line)
    if kind == "missing_distinct_id":
        rec["properties"].pop("distinct_id", None)
    elif kind == "string_time":
        rec["properties"]["time"] = "yesterday"
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


def generate_demo(spec: DemoSpec, out_dir: Path) -> DemoSummary:
    """Write the customer's raw export files plus truth.parquet / truth.json into out_dir."""
    import time as _time

    t_start = _time.perf_counter()
    model = _model(spec.customer)
    if spec.n_users < 1 or spec.days < 1:
        raise ValueError("n_users and days must be >= 1")
    bc = spec.behaviour_change
    if bc is not None:
        allowed = sorted(
            set(model.activity)
            | {e for names, _ in model.start_events.values() for e in names}
            | set(model.anon_events[0])
        )
        if bc.event not in allowed:
            raise ValueError(
                f"behaviour_change.event must be one of the activity/session events {allowed}, got {bc.event!r}"
            )
        if bc.factor < 0:
            raise ValueError("behaviour_change.factor must be >= 0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean_layout(spec, out_dir)
    tz = ZoneInfo(DEMO_TIMEZONES[spec.customer])
    layout = DEMO_LAYOUTS[spec.customer]
    n, days = spec.n_users, spec.days
    n_anon = int(round(ANON_VISITOR_SHARE * n))
    total = n + n_anon

    ss = np.random.SeedSequence([spec.seed, 0 if spec.customer == "powerplay" else 1])
    rng_prof, rng_sim, rng_fmt, rng_bc = (np.random.default_rng(s) for s in ss.spawn(4))

    p = _profiles(model, rng_prof, n, n_anon, days)
    par = _parameters(model, p, n)
    gradual = rng_prof.random(n) < GRADUAL_SHARE
    q_exit = np.where(gradual, GRADUAL_FADE_EXIT_HAZARD, 1.0)
    cancel_p = model.cancel_probability

    midnights, offsets = _day_grid(spec.start, days, tz)
    day_len = np.diff(midnights).astype(np.float64)
    weekday = np.array([(spec.start + timedelta(days=k)).weekday() for k in range(days + 1)])
    wday_f = model.weekday_factors[weekday]

    # sign-up day (weekday-weighted) and second within the local day (diurnal) of users
    w = wday_f[:days] / wday_f[:days].sum()
    signup_day = rng_prof.choice(days, size=n, p=w)
    hour = rng_prof.choice(24, size=n, p=model.hour_weights)
    signup_sec = np.floor((hour + rng_prof.random(n)) * day_len[signup_day] / 24.0).astype(np.int64)
    signup_sec = np.clip(signup_sec, 300, day_len[signup_day].astype(np.int64) - 600)
    # anonymous visits: users 0-2 visits 1-5 days before sign-up; anonymous-only visitors 1-3 visits
    visits = np.full((total, 3), -1, dtype=np.int64)
    nv = np.where(rng_prof.random(n) < 0.3, 1 + (rng_prof.random(n) < 0.35), 0)
    for j in range(2):
        back = rng_prof.integers(1, 6, n) + 2 * j
        visits[:n, j] = np.where(nv > j, signup_day - back, -1)
    first = rng_prof.integers(0, days, n_anon)
    visits[n:, 0] = first
    for j in (1, 2):
        more = rng_prof.random(n_anon) < (0.4 if j == 1 else 0.15)
        visits[n:, j] = np.where(more, first + rng_prof.integers(1, 8, n_anon) * j, -1)
    visits[visits >= days] = -1

    # lookups for formatting
    _check_vocabularies()
    uf_series = _user_fragments(model, p, n)
    ef_series, frag_off, frag_cnt, cuisine_off = _event_fragment_table(model)
    head = pl.Series("h", [f'{{"event":{_j(e)},"properties":{{"time":' for e in model.events], dtype=pl.String)
    mix_pre_cum, mix_post_cum = _user_mixes(model, p, n)
    act_codes = np.array([model.code(a) for a in model.activity], dtype=np.int64)
    plat_code = np.asarray(p["platform_code"], dtype=np.int64)
    fav = np.asarray(p.get("fav_code", np.zeros(total, dtype=np.int64)), dtype=np.int64)
    cuisine_ev = np.zeros(len(model.events), dtype=bool)
    for name in model.cuisine_events:
        cuisine_ev[model.code(name)] = True
    ev_sign, ev_identify, ev_alias = model.code("Sign Up"), model.code("$identify"), model.code("$create_alias")
    ev_goal, ev_conv = model.code(model.goal_event), model.code(model.conversion_event)
    ev_cancel = model.code(model.cancel_event) if model.cancel_event else -1
    bc_code = model.code(bc.event) if bc is not None else -1
    bc_day = (bc.start - spec.start).days if bc is not None else 0
    is_mobile = plat_code != 2
    id_merge = np.asarray(p["id_merge_code"], dtype=np.int64)
    mov = par["mean_order_value"]
    sigma = model.amount_sigma
    cents = model.amount_key == "price"

    # state
    state = np.zeros(n, dtype=np.int8)  # 0 not signed up, 1 A, 2 B, 3 D
    age = np.zeros(n, dtype=np.int64)
    converted = np.zeros(n, dtype=bool)
    cancelled = np.zeros(n, dtype=bool)
    goal = np.zeros(n, dtype=bool)
    fade_day = np.full(n, -1, dtype=np.int64)
    churn_day = np.full(n, -1, dtype=np.int64)
    conv_t = np.full(n, -1, dtype=np.int64)
    goal_t = np.full(n, -1, dtype=np.int64)
    cancel_t = np.full(n, -1, dtype=np.int64)
    signup_t = midnights[signup_day] + signup_sec

    counts = {"events": 0, "duplicates": 0, "late_duplicates": 0, "files": 0}
    malformed = {k: 0 for k in (*MALFORMED_KINDS, "terminated_early")}
    carry: pl.DataFrame | None = None  # late re-sends for the next day: columns line, key
    pool = ThreadPoolExecutor(max_workers=2)
    pending: deque[Future] = deque()
    mid_day = days // 2

    def start_sessions(users: np.ndarray, d: int) -> np.ndarray:
        hr = rng_sim.choice(24, size=len(users), p=model.hour_weights)
        return (hr + rng_sim.random(len(users))) * (day_len[d] / 24.0)

    try:
        for d in range(days):
            dl = day_len[d]
            # ---- 1-2: transitions (fixed-size draws keep the stream independent of formatting)
            u_ab, u_cancel, u_exit, u_conv, u_goal = rng_sim.random((5, n))
            in_a = state == 1
            to_b = in_a & (u_ab < par["churn_hazard"])
            cancel_now = to_b & converted & ~cancelled & (u_cancel < cancel_p)
            cancelled |= cancel_now
            age[(state == 2)] += 1
            state[to_b] = 2
            age[to_b] = 0
            fade_day[to_b] = d
            die = (state == 2) & (u_exit < q_exit)
            state[die] = 3
            churn_day[die] = d
            new = (state == 0) & (signup_day == d)
            state[new] = 1
            alive = (state == 1) | (state == 2)
            fading = state == 2
            m = np.where(fading, FADE_OUTCOME_FACTOR, 1.0)
            # ---- 3: outcomes
            conv_now = alive & ~converted & (u_conv < par["conversion_hazard"] * m)
            lam_p = np.where(alive & converted & ~cancelled, par["purchase_rate"] * m, 0.0)
            n_purch = rng_sim.poisson(lam_p)
            goal_now = alive & ~goal & (u_goal < par["goal_hazard"] * m)
            cancel_emit = cancel_now & alive
            rate = par["sessions_per_day"] * wday_f[d] * np.where(fading, FADE_ACTIVITY_DECAY ** (age + 1), 1.0)
            rate = rate * np.where(new, (dl - signup_sec) / dl, 1.0) * alive
            n_sess = rng_sim.poisson(rate)
            need = (conv_now | (n_purch > 0) | goal_now | cancel_emit) & (n_sess == 0) & ~new
            n_sess[need] = 1

            rows = _Rows()
            al = np.flatnonzero(alive)
            cnt = n_sess[al] + new[al]
            first_sess = np.cumsum(cnt) - cnt
            sess_u = np.repeat(al, cnt)
            pos = _seg_arange(cnt)
            is_su = (pos == 0) & new[sess_u]
            start = start_sessions(sess_u, d)
            sus = signup_sec[sess_u].astype(np.float64)
            after = sus + 60 + rng_sim.random(len(sess_u)) * np.maximum(dl - sus - 60, 1)
            start = np.where(new[sess_u], after, start)
            start[is_su] = sus[is_su]
            n_follow = rng_sim.poisson(par["events_per_session"][sess_u])
            size = 1 + n_follow
            e_u = np.repeat(sess_u, size)
            e_pos, cs = _session_offsets(rng_sim, size)
            e_sec = np.repeat(start, size) + cs + (np.repeat(is_su, size) & (e_pos > 0)) * 1.0
            e_first = e_pos == 0
            e_su = np.repeat(is_su, size)
            ev = np.empty(len(e_u), dtype=np.int64)
            # opening events by platform
            opening = np.flatnonzero(e_first & ~e_su)
            for pc in (0, 1, 2):
                sel = opening[plat_code[e_u[opening]] == pc]
                ev[sel] = _pick(rng_sim, len(sel), model.start_events[pc], model)
            ev[e_first & e_su] = ev_sign
            # activity events from the user's mix (before / after the goal)
            follow = np.flatnonzero(~e_first)
            fu = e_u[follow]
            cum = np.where(goal[fu][:, None], mix_post_cum[fu], mix_pre_cum[fu])
            r = rng_sim.random(len(follow))
            ev[follow] = act_codes[np.minimum((r[:, None] > cum).sum(1), len(act_codes) - 1)]
            kind = np.where(e_first & e_su, _KIND_SIGNUP, _KIND_IDENT)
            rows.add(e_u, kind, ev, e_sec, ~(e_first & e_su))

            # sign-up extras: identity events of legacy users, anonymous events just before signing up
            su_u = np.flatnonzero(new)
            leg = su_u[id_merge[su_u] > 0]
            rows.add(
                leg,
                np.where(id_merge[leg] == 2, _KIND_ALIAS, _KIND_IDENTIFY),
                np.where(id_merge[leg] == 2, ev_alias, ev_identify),
                signup_sec[leg] - 1,
                False,
            )
            k_pre = 1 + rng_sim.poisson(1.2, len(su_u))
            pre_u = np.repeat(su_u, k_pre)
            pre_pos = _seg_arange(k_pre)
            g = rng_sim.exponential(45.0, len(pre_u)) + 5
            cg = np.cumsum(g)
            cg -= np.repeat(cg[np.cumsum(k_pre) - k_pre], k_pre) - np.repeat(g[np.cumsum(k_pre) - k_pre], k_pre)
            pre_sec = np.maximum(signup_sec[pre_u] - 2 - cg, 0)
            pre_ev = _pick(rng_sim, len(pre_u), model.anon_events, model)
            last = pre_pos == np.repeat(k_pre - 1, k_pre)  # the earliest anonymous event opens the session
            for pc in (0, 1, 2):
                sel = np.flatnonzero(last & (plat_code[pre_u] == pc))
                pre_ev[sel] = _pick(rng_sim, len(sel), model.start_events[pc], model)
            rows.add(pre_u, _KIND_ANON, pre_ev, pre_sec, True)

            # anonymous visits (future users, and visitors who never sign up)
            vis = visits == d
            vis_n = vis.sum(1)
            vu = np.repeat(np.flatnonzero(vis_n), vis_n[vis_n > 0])
            k_v = 1 + rng_sim.poisson(1.5, len(vu))
            v_start = start_sessions(vu, d)
            v_u = np.repeat(vu, k_v)
            v_pos, vcs = _session_offsets(rng_sim, k_v)
            v_ev = _pick(rng_sim, len(v_u), model.anon_events, model)
            for pc in (0, 1, 2):
                sel = np.flatnonzero((v_pos == 0) & (plat_code[v_u] == pc))
                v_ev[sel] = _pick(rng_sim, len(sel), model.start_events[pc], model)
            rows.add(v_u, _KIND_ANON, v_ev, np.repeat(v_start, k_v) + vcs, True)

            # outcome events, each inside a random session of the user that day
            pos_map = np.full(n, -1, dtype=np.int64)
            pos_map[al] = np.arange(len(al))

            def place(users: np.ndarray) -> np.ndarray:
                pm = pos_map[users]
                sidx = first_sess[pm] + np.floor(rng_sim.random(len(users)) * cnt[pm]).astype(np.int64)
                return start[sidx] + 5 + rng_sim.exponential(150.0, len(users))

            def amounts(users: np.ndarray) -> np.ndarray:
                x = mov[users] * np.exp(rng_sim.normal(-(sigma**2) / 2, sigma, len(users)))
                return (
                    np.maximum(np.round(x * 100), 300).astype(np.int64)
                    if cents
                    else np.maximum(np.round(x), 199).astype(np.int64)
                )

            cu = np.flatnonzero(conv_now)
            c_sec = np.minimum(place(cu), dl - 1)
            conv_t[cu] = midnights[d] + np.floor(c_sec).astype(np.int64)
            rows.add(cu, _KIND_IDENT, ev_conv, c_sec, False, amounts(cu))
            pu = np.repeat(np.flatnonzero(n_purch), n_purch[n_purch > 0])
            rows.add(pu, _KIND_IDENT, ev_conv, place(pu), False, amounts(pu))
            gu = np.flatnonzero(goal_now)
            g_sec = np.minimum(place(gu), dl - 1)
            goal_t[gu] = midnights[d] + np.floor(g_sec).astype(np.int64)
            rows.add(gu, _KIND_IDENT, ev_goal, g_sec, False)
            if ev_cancel >= 0:
                xu = np.flatnonzero(cancel_emit)
                x_sec = np.minimum(place(xu), dl - 1)
                cancel_t[xu] = midnights[d] + np.floor(x_sec).astype(np.int64)
                rows.add(xu, _KIND_IDENT, ev_cancel, x_sec, False)
            converted |= conv_now
            goal |= goal_now

            r_u, r_kind, r_ev, r_sec, r_act, r_amt = rows.arrays()
            r_sec = np.clip(np.floor(r_sec), 0, dl - 1).astype(np.int64)
            # event-property fragments (cosmetic variants; simulation stream)
            nr = len(r_u)
            fr = rng_sim.random((3, nr)) if nr else np.zeros((3, 0))
            frag = np.where(frag_cnt[r_ev] > 0, frag_off[r_ev] + np.floor(fr[0] * frag_cnt[r_ev]).astype(np.int64), 0)
            if model.cuisine_events:
                cz = np.where(fr[1] < FAVOURITE_CATEGORY_SHARE, fav[r_u], np.floor(fr[2] * 7).astype(np.int64) % 7)
                meal = np.floor((fr[2] * 7 % 1) * _N_MEALS).astype(np.int64)
                frag = np.where(cuisine_ev[r_ev], cuisine_off + cz * _N_MEALS + meal, frag)
            if model.name == "powerplay":
                plan = np.where(r_amt < 3000, 0, np.where(r_amt < 15000, 1, 2))
                frag = np.where(r_ev == ev_conv, frag_off[ev_conv] + plan, frag)

            # behaviour change: thin (factor < 1) or add copies (factor > 1) of one activity event
            if bc is not None and d >= bc_day:
                hit = r_act & (r_ev == bc_code)
                if bc.factor < 1:
                    drop = hit & (rng_bc.random(nr) >= bc.factor)
                    keep = ~drop
                    r_u, r_kind, r_ev, r_sec, r_act, r_amt, frag = (
                        a[keep] for a in (r_u, r_kind, r_ev, r_sec, r_act, r_amt, frag)
                    )
                elif bc.factor > 1:
                    extra = np.where(hit, rng_bc.poisson(bc.factor - 1, nr), 0)
                    idx = np.repeat(np.arange(nr), extra)
                    jit = np.minimum(r_sec[idx] + np.floor(rng_bc.random(len(idx)) * 300).astype(np.int64), int(dl) - 1)
                    r_u, r_kind, r_ev, r_act, r_amt, frag = (
                        np.concatenate([a, a[idx]]) for a in (r_u, r_kind, r_ev, r_act, r_amt, frag)
                    )
                    r_sec = np.concatenate([r_sec, jit])
            nr = len(r_u)
            counts["events"] += nr

            # ---- formatting (formatting stream only)
            t = midnights[d] + r_sec
            ms = rng_fmt.integers(0, 1000, nr)
            as_ms = rng_fmt.random(nr) < spec.ms_share
            delay = 800 + np.floor(rng_fmt.exponential(4000.0, nr)).astype(np.int64)
            offline = is_mobile[r_u] & (rng_fmt.random(nr) < 0.08)
            delay = delay + np.where(offline, np.floor(rng_fmt.exponential(3 * 3600e3, nr)).astype(np.int64), 0)
            ptime = t * 1000 + ms + delay
            if spec.time_in_project_timezone:
                o0, o1, tr = offsets[d]
                tw = t + np.where(t < tr, o0, o1)
            else:
                tw = t
            tstr = np.where(as_ms, tw * 1000 + ms, tw)
            iid_hex = rng_fmt.bytes(8 * nr).hex().encode("ascii")
            iid_raw = np.frombuffer(iid_hex, dtype="S16") if nr else np.zeros(0, dtype="S16")
            iid = pl.Series("iid", iid_raw).cast(pl.String)

            def assemble(sel: np.ndarray | slice, ptimes: np.ndarray) -> pl.Series:
                amt = r_amt[sel]
                if cents:
                    dyn = (
                        pl.DataFrame({"a": amt})
                        .select(
                            pl.when(pl.col("a") >= 0)
                            .then(
                                pl.concat_str(
                                    [
                                        pl.lit(f',"{model.amount_key}":'),
                                        (pl.col("a") // 100).cast(pl.String),
                                        pl.lit("."),
                                        (pl.col("a") % 100).cast(pl.String).str.zfill(2),
                                    ]
                                )
                            )
                            .otherwise(pl.lit(""))
                        )
                        .to_series()
                    )
                else:
                    dyn = (
                        pl.DataFrame({"a": amt})
                        .select(
                            pl.when(pl.col("a") >= 0)
                            .then(pl.concat_str([pl.lit(f',"{model.amount_key}":'), pl.col("a").cast(pl.String)]))
                            .otherwise(pl.lit(""))
                        )
                        .to_series()
                    )
                df = pl.DataFrame(
                    {
                        "h": head.gather(r_ev[sel]),
                        "t": tstr[sel],
                        "uf": uf_series.gather(r_kind[sel] * total + r_u[sel]),
                        "iid": iid.gather(np.arange(nr)[sel]),
                        "p": ptimes,
                        "ef": ef_series.gather(frag[sel]),
                        "dyn": dyn,
                    }
                )
                return df.select(
                    pl.concat_str(
                        [
                            pl.col("h"),
                            pl.col("t").cast(pl.String),
                            pl.lit(","),
                            pl.col("uf"),
                            pl.lit(',"$insert_id":"'),
                            pl.col("iid"),
                            pl.lit('","mp_processing_time_ms":'),
                            pl.col("p").cast(pl.String),
                            pl.col("ef"),
                            pl.col("dyn"),
                            pl.lit("}}"),
                        ]
                    ).alias("line")
                ).to_series()

            lines = assemble(slice(None), ptime)
            key = ptime.copy()

            # duplicates
            n_dup = int(rng_fmt.binomial(nr, spec.duplicate_share)) if nr else 0
            dup_idx = np.sort(rng_fmt.choice(nr, size=n_dup, replace=False)) if n_dup else np.zeros(0, dtype=np.int64)
            late = rng_fmt.random(n_dup) < LATE_DUPLICATE_SHARE if d < days - 1 else np.zeros(n_dup, dtype=bool)
            in_day = dup_idx[~late]
            late_idx = dup_idx[late]
            extra_frames = [
                pl.DataFrame(
                    {
                        "line": lines.gather(in_day),
                        "key": key[in_day] + 1 + np.floor(rng_fmt.exponential(60e3, len(in_day))).astype(np.int64),
                    }
                )
            ]
            new_carry = None
            if len(late_idx):
                lp = midnights[d + 1] * 1000 + np.floor(rng_fmt.random(len(late_idx)) * day_len[d + 1] * 1000).astype(
                    np.int64
                )
                lp = np.maximum(lp, ptime[late_idx] + 60_000)  # re-sent after the original arrived
                new_carry = pl.DataFrame({"line": assemble(late_idx, lp), "key": lp})
            counts["duplicates"] += n_dup
            counts["late_duplicates"] += len(late_idx)

            # malformed lines replace ordinary activity events that were not duplicated
            n_bad = spec.malformed_per_day
            if n_bad > 0 and nr:
                ok = r_act.copy()
                ok[dup_idx] = False
                cand = np.flatnonzero(ok)
                n_bad = min(n_bad, len(cand))
                victims = np.sort(rng_fmt.choice(cand, size=n_bad, replace=False))
                first_kind = int(rng_fmt.integers(0, len(MALFORMED_KINDS)))
                olds = lines.gather(victims).to_list()
                news = []
                for j, old in enumerate(olds):
                    kd = MALFORMED_KINDS[(first_kind + j) % len(MALFORMED_KINDS)]
                    news.append(_corrupt(kd, old, rng_fmt))
                    malformed[kd] += 1
                lines = lines.scatter(victims, pl.Series(news, dtype=pl.String))
                counts["events"] -= n_bad
            frame = pl.concat(
                [pl.DataFrame({"line": lines, "key": key}), *extra_frames] + ([carry] if carry is not None else [])
            )
            carry = new_carry
            frame = frame.with_row_index("r").sort(["key", "r"])
            terminated = False
            if layout == "export_api" and spec.malformed_per_day > 0:
                terminated = (d == mid_day) or bool(rng_fmt.random() < 0.05)
            else:
                rng_fmt.random()
            if terminated:
                malformed["terminated_early"] += 1

            day = spec.start + timedelta(days=d)
            if layout == "export_api":
                data = _lines_bytes(frame["line"]) + (b"terminated early\n" if terminated else b"")
                jobs = [(out_dir / f"{day.isoformat()}.jsonl.gz", data, True)]
            else:
                n_parts = 3 + int(rng_fmt.random() < 0.5)
                plain_last = bool(rng_fmt.random() < 0.2)
                part = rng_fmt.integers(0, n_parts, frame.height)
                folder = out_dir / spec.project_id / "mp_master_event" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
                jobs = []
                for k in range(n_parts):
                    data = _lines_bytes(frame["line"].filter(pl.Series(part == k)))
                    plain = plain_last and k == n_parts - 1
                    jobs.append((folder / f"part-{k:05d}.json{'' if plain else '.gz'}", data, not plain))
            for path, data, comp in jobs:
                pending.append(pool.submit(_file_writer, path, data, comp))
                counts["files"] += 1
            del frame, lines
            while len(pending) > 1:
                pending.popleft().result()
        while pending:
            pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    truth = _truth_frame(
        model,
        spec,
        p,
        par,
        n,
        q_exit,
        signup_t,
        signup_day,
        fade_day,
        churn_day,
        conv_t,
        goal_t,
        cancel_t,
        midnights,
        tz,
    )
    truth.write_parquet(out_dir / "truth.parquet", compression="zstd", statistics=False)
    seconds = _time.perf_counter() - t_start
    summary = DemoSummary(
        customer=spec.customer,
        out_dir=out_dir,
        days=days,
        files=counts["files"],
        events=counts["events"],
        users=n,
        duplicates=counts["duplicates"],
        malformed=malformed,
        late_duplicates=counts["late_duplicates"],
        anonymous_visitors=n_anon,
        seconds=round(seconds, 3),
    )
    meta = _truth_meta(model, spec, summary, truth)
    (out_dir / "truth.json").write_text(json.dumps(meta, indent=2, sort_keys=False, default=str) + "\n")
    return summary


def _truth_frame(
    model, spec, p, par, n, q_exit, signup_t, signup_day, fade_day, churn_day, conv_t, goal_t, cancel_t, midnights, tz
) -> pl.DataFrame:
    def nullable(values: pl.Series, valid: np.ndarray) -> pl.Series:
        return pl.DataFrame({"v": values, "m": valid}).select(pl.when("m").then("v")).to_series()

    def ts(x: np.ndarray) -> pl.Series:
        s = pl.Series(np.where(x >= 0, x, 0).astype(np.int64) * 1_000_000).cast(pl.Datetime("us", "UTC"))
        return nullable(s, x >= 0)

    def local_date_of_day(k: np.ndarray) -> pl.Series:
        base = pl.Series(np.where(k >= 0, k, 0).astype(np.int32) + (spec.start - date(1970, 1, 1)).days)
        return nullable(base.cast(pl.Date), k >= 0)

    def day_of_time(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(midnights, t, side="right") - 1
        return np.where(t >= 0, k, -1)

    churn_t = np.where(churn_day >= 0, midnights[np.maximum(churn_day, 0)], -1)
    fade_t = np.where(fade_day >= 0, midnights[np.maximum(fade_day, 0)], -1)
    cols: dict[str, pl.Series] = {
        "user_id": pl.Series(p["user_id"][:n].astype(str)),
        "device_id": pl.Series(p["device_id"][:n].astype(str)),
        "anon_distinct_id": pl.Series(p["anon_distinct_id"][:n].astype(str)),
        "id_merge": pl.Series(np.array(["simplified", "identify", "alias"])[p["id_merge_code"][:n]]),
        "signup_time": ts(signup_t),
        "signup_date": local_date_of_day(signup_day),
        "channel": pl.Series(p["channel"][:n].astype(str)),
        "campaign": nullable(pl.Series(p["campaign"][:n].astype(str)), p["campaign"][:n].astype(str) != ""),
        "platform": pl.Series(p["platform"][:n].astype(str)),
        "os": pl.Series(p["os"][:n].astype(str)),
        "city": pl.Series(p["city"][:n].astype(str)),
        "region": pl.Series(p["region"][:n].astype(str)),
    }
    if model.name == "powerplay":
        cols.update(
            company_size=pl.Series(p["company_size"][:n]),
            role=pl.Series(p["role"][:n].astype(str)),
            project_type=pl.Series(p["project_type"][:n].astype(str)),
            engagement=pl.Series(p["engagement"][:n]),
            price_sensitivity=pl.Series(p["price_sensitivity"][:n]),
            team_size=pl.Series(p["team_size"][:n]),
        )
    else:
        cols.update(
            favourite_cuisine=pl.Series(p["favourite_cuisine"][:n].astype(str)),
            engagement=pl.Series(p["engagement"][:n]),
            price_sensitivity=pl.Series(p["price_sensitivity"][:n]),
            sociability=pl.Series(p["sociability"][:n]),
        )
    for k in (
        "churn_hazard",
        "activity_rate",
        "sessions_per_day",
        "events_per_session",
        "conversion_hazard",
        "purchase_rate",
        "mean_order_value",
        "goal_hazard",
    ):
        cols[k] = pl.Series(np.asarray(par[k], dtype=np.float64))
    cols["fade_exit_hazard"] = pl.Series(q_exit.astype(np.float64))
    cols["fade_outcome_factor"] = pl.Series(np.full(n, FADE_OUTCOME_FACTOR))
    cols["cancel_probability"] = pl.Series(np.full(n, float(model.cancel_probability)))
    cols.update(
        fade_start_time=ts(fade_t),
        fade_start_date=local_date_of_day(fade_day),
        churn_time=ts(churn_t),
        churn_date=local_date_of_day(churn_day),
        conversion_time=ts(conv_t),
        conversion_date=local_date_of_day(day_of_time(conv_t)),
        goal_time=ts(goal_t),
        goal_date=local_date_of_day(day_of_time(goal_t)),
        cancel_time=ts(cancel_t),
        cancel_date=local_date_of_day(day_of_time(cancel_t)),
    )
    df = pl.DataFrame({k: v.alias(k) for k, v in cols.items()})
    return df.sort("signup_time", "user_id")


def _truth_meta(model: _Model, spec: DemoSpec, summary: DemoSummary, truth: pl.DataFrame) -> dict:
    spec_d = asdict(spec)
    return {
        "customer": spec.customer,
        "timezone": DEMO_TIMEZONES[spec.customer],
        "layout": DEMO_LAYOUTS[spec.customer],
        "timestamps": "project_timezone" if spec.time_in_project_timezone else "utc",
        "start": spec.start.isoformat(),
        "end": (spec.start + timedelta(days=spec.days - 1)).isoformat(),
        "spec": spec_d,
        "summary": {k: v for k, v in asdict(summary).items() if k not in ("out_dir", "seconds")},
        "events": model.events,
        "goal_event": model.goal_event,
        "conversion_event": model.conversion_event,
        "purchase_amount_property": model.amount_key,
        "currency": "INR" if spec.customer == "powerplay" else "USD",
        "cancel_event": model.cancel_event,
        "constants": {
            "fade_outcome_factor": FADE_OUTCOME_FACTOR,
            "gradual_fade_exit_hazard": GRADUAL_FADE_EXIT_HAZARD,
            "abrupt_fade_exit_hazard": 1.0,
            "gradual_share": GRADUAL_SHARE,
            "fade_activity_decay_per_day": FADE_ACTIVITY_DECAY,
            "cancel_probability": model.cancel_probability,
            "purchase_value_lognormal_sigma": model.amount_sigma,
            "anonymous_visitor_share": ANON_VISITOR_SHARE,
            "legacy_id_merge_share": LEGACY_ID_MERGE_SHARE,
            "alias_share_of_legacy": ALIAS_SHARE_OF_LEGACY,
            "late_duplicate_share": LATE_DUPLICATE_SHARE,
            "weekday_factors_mon_sun": [round(float(x), 4) for x in model.weekday_factors],
        },
        "activity_mix": {
            "columns": model.activity,
            "groups": "role (owner, site engineer, supervisor, purchase manager)"
            if spec.customer == "powerplay"
            else "platform (Android, iOS, web)",
            "per_user_modifiers": MIX_MODIFIERS[spec.customer],
            "before_goal": np.round(model.mix_pre, 4).tolist(),
            "after_goal": np.round(model.mix_post, 4).tolist(),
        },
        "formulas": FORMULAS[spec.customer],
        "process": [
            "Day 0 = sign-up day (state A, no transitions). Each later day: A->B w.p. churn_hazard (a subscriber "
            "cancels then w.p. cancel_probability); B->D (silent forever) w.p. fade_exit_hazard; "
            "churn_time = local midnight of the first silent day.",
            "While alive, m = 1 in A, fade_outcome_factor in B: convert w.p. conversion_hazard*m (if not "
            "converted); Poisson(purchase_rate*m) purchases (if converted before today and not cancelled); "
            "goal w.p. goal_hazard*m (if not reached); Poisson(sessions_per_day*weekday*decay) sessions, "
            "decay = fade_activity_decay^(days in B + 1) in B.",
            "Purchase value = mean_order_value * LogNormal(-sigma^2/2, sigma).",
        ],
        "oracle": {
            "state_at_as_of": "alive iff signup_date <= as_of < churn_date (or churn_date null); in B iff "
            "fade_start_date <= as_of; converted iff conversion_date <= as_of; cancelled iff "
            "cancel_date <= as_of; goal iff goal_date <= as_of",
            "churn_in_B": "1 - (1-q)^h",
            "churn_in_A": "1 - (1-p)^h - sum_{j=1..h} (1-p)^(j-1) p (1-q)^(h-j+1)",
            "other": "forward recursion over {A,B} x {not converted, converted, cancelled}: see "
            "growth_pipeline.lib.demo.generator.true_outcome_probability",
        },
        "truth_rows": truth.height,
        "realised": {
            "churned": int(truth["churn_time"].is_not_null().sum()),
            "converted": int(truth["conversion_time"].is_not_null().sum()),
            "goal_reached": int(truth["goal_time"].is_not_null().sum()),
            "cancelled": int(truth["cancel_time"].is_not_null().sum()),
        },
    }


# ------------------------------------------------------------------------------------------------ oracle
def first_outcome_probability(
    engaged, fading, churn_hazard, exit_hazard, hazard, fade_factor, horizon_days: int
) -> np.ndarray:
    """P(a first outcome event, such as the goal or a conversion, in the next ``horizon_days`` days) of users
    engaged / fading now (probabilities, broadcastable arrays) under the daily process: each day the engaged may
    start to fade, the fading may drop out, and the live ones reach the outcome with ``hazard`` (times
    ``fade_factor`` while fading)."""
    a, b = engaged, fading
    got = 0.0
    for _ in range(horizon_days):
        b = (b + a * churn_hazard) * (1 - exit_hazard)
        a = a * (1 - churn_hazard)
        ga, gb = a * hazard, b * np.minimum(hazard * fade_factor, 1.0)
        got = got + ga + gb
        a, b = a - ga, b - gb
    return got


def true_outcome_probability(
    truth: pl.DataFrame, kind: str, as_of: date, horizon_days: int, *, hidden_state: bool = True
) -> pl.DataFrame:
    """The true probability of an outcome in days as_of+1 .. as_of+horizon_days, given the hidden state at the
    end of local day as_of (see the module docstring).

    kind "churn" | "conversion" | "goal" -> (user_id, probability) for the users at risk (alive; not yet
    converted / goal not yet reached); kind "ltv" -> (user_id, expected_revenue) for every user signed up by
    as_of (0.0 for users already churned). Rows follow the truth's order.

    ``hidden_state=False`` ignores the fading state (every alive user treated as engaged, state A): a weaker,
    "traits only" reference that shows how much of the oracle's edge comes from knowing who is already fading.
    """
    if kind not in ("churn", "conversion", "goal", "ltv"):
        raise ValueError(f"kind must be churn, conversion, goal or ltv, got {kind!r}")
    if horizon_days < 1:
        raise ValueError("horizon_days must be >= 1")

    def before(col: str) -> pl.Expr:
        return pl.col(col).is_not_null() & (pl.col(col) <= pl.lit(as_of))

    df = truth.filter(pl.col("signup_date") <= pl.lit(as_of)).with_columns(
        alive=~before("churn_date"),
        in_b=before("fade_start_date"),
        conv=before("conversion_date"),
        canc=before("cancel_date"),
        goal_done=before("goal_date"),
    )
    if kind == "churn":
        df = df.filter("alive")
    elif kind == "conversion":
        df = df.filter(pl.col("alive") & ~pl.col("conv"))
    elif kind == "goal":
        df = df.filter(pl.col("alive") & ~pl.col("goal_done"))

    def arr(c):
        return df[c].to_numpy().astype(np.float64)

    p, q, f = arr("churn_hazard"), arr("fade_exit_hazard"), arr("fade_outcome_factor")
    alive = df["alive"].to_numpy()
    in_b = df["in_b"].to_numpy() & alive & hidden_state
    in_a = alive & ~in_b
    if kind == "goal":
        got = first_outcome_probability(
            in_a.astype(float), in_b.astype(float), p, q, arr("goal_hazard"), f, horizon_days
        )
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(got, 0.0, 1.0)})
    if kind == "churn":
        a, b = in_a.astype(float), in_b.astype(float)
        for _ in range(horizon_days):
            b = (b + a * p) * (1 - q)
            a = a * (1 - p)
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(1.0 - a - b, 0.0, 1.0)})

    ch, pr, mov, cp = arr("conversion_hazard"), arr("purchase_rate"), arr("mean_order_value"), arr("cancel_probability")
    conv = df["conv"].to_numpy()
    canc = df["canc"].to_numpy()
    a_nc = (in_a & ~conv).astype(float)
    a_c = (in_a & conv).astype(float)  # in A a subscriber cannot be cancelled
    b_nc = (in_b & ~conv).astype(float)
    b_c = (in_b & conv & ~canc).astype(float)
    b_x = (in_b & conv & canc).astype(float)
    conv_prob = np.zeros(len(df))
    revenue = np.zeros(len(df))
    for _ in range(horizon_days):
        to_b_nc, to_b_c = a_nc * p, a_c * p
        a_nc, a_c = a_nc - to_b_nc, a_c - to_b_c
        b_nc = (b_nc + to_b_nc) * (1 - q)
        b_x = (b_x + to_b_c * cp) * (1 - q)
        b_c = (b_c + to_b_c * (1 - cp)) * (1 - q)
        revenue += (a_c * pr + b_c * pr * f) * mov
        ca, cb = a_nc * ch, b_nc * np.minimum(ch * f, 1.0)
        conv_prob += ca + cb
        revenue += (ca + cb) * mov
        a_nc, b_nc = a_nc - ca, b_nc - cb
        a_c, b_c = a_c + ca, b_c + cb
    if kind == "conversion":
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(conv_prob, 0.0, 1.0)})
    return pl.DataFrame({"user_id": df["user_id"], "expected_revenue": revenue})


if __name__ == "__main__":  # pragma: no cover - manual runs / benchmarks
    import sys

    cust, nu, nd, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    s = generate_demo(DemoSpec(cust, n_users=nu, start=date(2024, 1, 1), days=nd), out)
    print(s)
