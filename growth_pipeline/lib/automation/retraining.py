"""When to retrain: drift verdicts in, retraining requests out, at most one per customer and model per cooldown.
No Dagster import: the ``retrain_on_drift`` sensor keeps the state in its cursor and calls :func:`plan`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DriftSignal:
    """One customer's model that a model_drift materialization asked to retrain."""

    customer: str
    model: str
    day: date  # the data day the drift was measured on
    reason: str
    storage_id: int  # the event that carried it (for a unique run key)


@dataclass
class RetrainState:
    """The sensor's memory: the last event read, and the data day of the last request per customer/model."""

    after_storage_id: int | None = None
    last_request: dict[str, str] = field(default_factory=dict)  # "customer/model" -> ISO day

    def to_cursor(self) -> str:
        return json.dumps({"after": self.after_storage_id, "last": self.last_request}, sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> RetrainState:
        if not cursor:
            return cls()
        raw = json.loads(cursor)
        return cls(raw.get("after"), dict(raw.get("last") or {}))


@dataclass(frozen=True)
class Decision:
    signal: DriftSignal
    request: bool
    why: str


def plan(signals: list[DriftSignal], state: RetrainState, cooldown_days: dict[str, int]) -> list[Decision]:
    """Decide which signals become retraining requests: of the signals of one customer's model, the latest day's;
    and a customer's model at most once per ``cooldown_days[customer]`` days of data (the day of the last request
    counts). Updates ``state``."""
    out = []
    # one evaluation can read many days of one model (a backfill run records every day it covered): the latest
    # day speaks for them, the earlier ones are superseded
    latest: dict[str, DriftSignal] = {}
    for s in sorted(signals, key=lambda s: (s.day, s.storage_id)):
        latest[f"{s.customer}/{s.model}"] = s
    for s in sorted(signals, key=lambda s: s.storage_id):
        if latest[f"{s.customer}/{s.model}"] is not s:
            out.append(
                Decision(s, False, f"superseded by the drift measured on {latest[f'{s.customer}/{s.model}'].day}")
            )
            continue
        key = f"{s.customer}/{s.model}"
        last = state.last_request.get(key)
        cooldown = cooldown_days.get(s.customer, 7)
        if last is not None and s.day < date.fromisoformat(last) + timedelta(days=cooldown):
            out.append(Decision(s, False, f"cooldown: last request for data day {last}, {cooldown} days"))
            continue
        state.last_request[key] = s.day.isoformat()
        out.append(Decision(s, True, s.reason))
    return out


def yesterday(now: datetime, timezone_name: str) -> date:
    """The last complete day in the customer's timezone at ``now`` (export days are the project's local days)."""
    return (now.astimezone(ZoneInfo(timezone_name)) - timedelta(days=1)).date()
