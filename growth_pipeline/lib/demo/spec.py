"""What a demo run is asked for (``DemoSpec``, ``BehaviourChange``, ``OutcomeChange``) and what it reports
(``DemoSummary``), with the demo customers' timezones and file layouts and the constants of the hidden process
(also written to truth.json and, per user, to truth.parquet)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

DEMO_TIMEZONES = {"powerplay": "Asia/Kolkata", "foodie": "America/Los_Angeles"}
DEMO_LAYOUTS = {"powerplay": "export_api", "foodie": "object_storage"}

FADE_OUTCOME_FACTOR = 0.3  # conversion / purchase / goal rates are multiplied by this while fading (state B)
GRADUAL_FADE_EXIT_HAZARD = 0.1  # B -> D per day for gradual churners (abrupt churners: 1.0)
GRADUAL_SHARE = 0.55  # share of users who churn gradually
FADE_ACTIVITY_DECAY = 0.8  # activity multiplier per day spent fading
ANON_VISITOR_SHARE = 0.25  # anonymous-only visitors, as a share of n_users
LEGACY_ID_MERGE_SHARE = 0.10  # users on the original ID-merge API
ALIAS_SHARE_OF_LEGACY = 0.20  # of those, the share using $create_alias instead of $identify
LATE_DUPLICATE_SHARE = 0.20  # of duplicates, the share re-sent in the next day's file
FAVOURITE_CATEGORY_SHARE = 0.55  # share of cuisine-tagged events that carry the user's favourite (else uniform)


@dataclass(frozen=True)
class BehaviourChange:
    """From local date ``start`` on, the rate of activity event ``event`` is multiplied by ``factor``."""

    start: date
    event: str
    factor: float


OUTCOME_HAZARDS = {"churn": (0.001, 0.25), "conversion": (1e-4, 0.08), "goal": (0.002, 0.3)}  # name -> clip bounds


@dataclass(frozen=True)
class OutcomeChange:
    """Concept drift: from local date ``start`` on, the daily ``hazard`` ("churn", "conversion" or "goal") of the
    users who do activity event ``event`` often (their expected daily count of it, before the goal, at or above
    the population's median) is multiplied by ``factor`` (then clipped to the hazard's usual bounds). The inputs
    barely move; what they mean for the outcome does: e.g. ``churn``, ``Task Created``, 6 ends the protection
    that heavy task users (the engaged ones) had against churn, and turns it into a risk."""

    start: date
    hazard: str
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
    outcome_change: OutcomeChange | None = None
    project_id: str = "2195193"


@dataclass
class DemoSummary:
    """``events`` = unique well-formed one-line records; ``duplicates`` = extra copies (all kinds);
    ``malformed[kind]`` = corrupted records (the ``split`` ones are recoverable events not counted in ``events``).
    So: JSON-parseable lines = events + duplicates + missing_distinct_id + string_time (+ 0 for split halves)."""

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
