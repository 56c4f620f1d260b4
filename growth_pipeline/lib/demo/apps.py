"""The two demo customers' apps: their event names, session openers, activity mixes by group, property variants
(pre-rendered JSON fragments), goal and purchase events, and daily/weekly rhythm.

``powerplay``  construction-management app (India), project timezone ``Asia/Kolkata``. Goal event "Project
    Created"; conversion/purchase event "Subscription Purchased" (``amount`` INR, ``currency``, ``plan``,
    ``billing_cycle``); "Subscription Cancelled" when a subscriber starts to fade.
``foodie``  the growth-workshop food-sharing site (US), project timezone ``America/Los_Angeles``. Goal event
    "Share"; conversion/purchase event "Buy" (``price`` USD with cents, ``cuisine``, ``meal_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from growth_pipeline.lib.demo.spec import DEMO_TIMEZONES

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

CUISINES = ("japanese", "chinese", "french", "german", "italian", "mexican", "vietnamese")


def json_literal(value) -> str:
    """``value`` as a JSON literal (non-ASCII kept as is), for pre-rendered property fragments."""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class CustomerApp:
    """One demo customer's app: events (their index is the event code), what opens a session by platform
    (0 Android, 1 iOS, 2 web), the activity mixes by group, and the outcome events."""

    name: str
    events: list[str]
    start_events: dict[int, tuple[list[str], list[float]]]  # platform -> session opening events
    anon_events: tuple[list[str], list[float]]  # follow-up events of anonymous sessions
    activity: list[str]  # activity event columns of the mixes
    mix_pre: np.ndarray  # (groups, n_activity) base mix before the goal; per-user modifiers in population.user_mixes
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


def normalised(w) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def _powerplay_app() -> CustomerApp:
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
        "Page View": [
            f',"page":{json_literal(p)}' for p in ("/dashboard", "/projects", "/tasks", "/reports", "/pricing")
        ],
        "Onboarding Viewed": [f',"step":{s}' for s in (1, 2, 3, 4)],
        "Task Created": [
            f',"priority":{json_literal(p)},"task_category":{json_literal(c)}'
            for p in ("high", "medium", "medium", "low")
            for c in ("civil", "electrical", "plumbing", "finishing", "safety")
        ],
        "Task Completed": [',"on_time":true'] * 3 + [',"on_time":false'],
        "Attendance Marked": [f',"workers_present":{k}' for k in range(1, 61)],
        "Material Request Created": [
            f',"material":{json_literal(m)},"quantity_unit":{json_literal(u)}'
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
            f',"report_type":{json_literal(r)}'
            for r in ("daily progress", "daily progress", "material", "attendance", "financial")
        ],
        "Project Created": [f',"project_value_band":{json_literal(b)}' for b in ("<10L", "10L-1Cr", "10L-1Cr", ">1Cr")],
        # Subscription Purchased: variant = plan (chosen from the amount), see records.EventFragments.pick
        "Subscription Purchased": [
            ',"currency":"INR","plan":"starter","billing_cycle":"monthly"',
            ',"currency":"INR","plan":"business","billing_cycle":"monthly"',
            ',"currency":"INR","plan":"enterprise","billing_cycle":"annual"',
        ],
        "Subscription Cancelled": [
            f',"reason":{json_literal(r)}' for r in ("too expensive", "not using", "switched tool", "project ended")
        ],
    }
    return CustomerApp(
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
        hour_weights=normalised(_HOURS_IN),
        weekday_factors=np.array([1.07, 1.07, 1.07, 1.07, 1.07, 0.9, 0.75]) / (5 * 1.07 + 0.9 + 0.75) * 7,
        event_props=props,
        cancel_probability=0.35,
    )


def _foodie_app() -> CustomerApp:
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
        "Page View": [f',"page":{json_literal(p)}' for p in ("/", "/", "/meals", "/cuisines", "/about", "/deals")],
    }
    return CustomerApp(
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
        hour_weights=normalised(_HOURS_US),
        weekday_factors=np.array([0.93, 0.92, 0.93, 0.95, 1.02, 1.15, 1.10])
        / 7.0
        * 7
        / np.mean([0.93, 0.92, 0.93, 0.95, 1.02, 1.15, 1.10]),
        event_props=props,
        cuisine_events=("Meal Viewed", "Like", "Share", "Buy"),
        cancel_probability=0.0,
    )


def customer_app(customer: str) -> CustomerApp:
    """The app of demo customer ``customer`` ("powerplay" or "foodie")."""
    if customer == "powerplay":
        return _powerplay_app()
    if customer == "foodie":
        return _foodie_app()
    raise ValueError(f"unknown demo customer {customer!r}; expected one of {sorted(DEMO_TIMEZONES)}")
