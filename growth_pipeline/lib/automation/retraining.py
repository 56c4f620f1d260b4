"""When to retrain: drift verdicts in, retraining requests out.

A retrain that cannot see the drifted data is a no-op with a cost, so a drift verdict records when the shift began
(``shift_start``: the first scored day of the drift episode whose inputs drifted) and the retrain waits until
post-drift data can both train and test the model: a post-drift training snapshot (as of ``shift_start`` or
later) whose labels matured (``horizon`` days later) on or before a post-drift test snapshot whose labels have
matured too, i.e. ``shift_start + 2 x horizon`` (``retrain_wait_horizons`` horizons, customers.yaml
``monitoring``), and at least ``min_post_drift_users`` labelled post-drift users. Until then the model's status
is "retrain pending until <day>" (:func:`retrain_timing`). A retrain whose training as-of dates would equal the
current champion's is not requested either.

Requests are recorded in one file shared by the daemon's ``retrain_on_drift`` sensor and the ``retrain-on-drift``
command (:class:`RequestLog`, GROWTH_HOME/state/retrain_requests.json under a file lock): at most one request per
customer, model and shift, and at most one per cooldown. No Dagster import.
"""

from __future__ import annotations

import fcntl
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from growth_pipeline.lib.files import atomic_write_bytes

REQUEST_LOG = "retrain_requests.json"


@dataclass(frozen=True)
class DriftSignal:
    """One customer's model that a model_drift materialization asked to retrain."""

    customer: str
    model: str
    day: date  # the data day the drift was measured on
    reason: str
    storage_id: int  # the event that carried it (for a unique run key)
    shift_start: date | None = None  # when the drift episode began (None: verdicts written before it was recorded)


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


# ------------------------------------------------------------------------------------------------ timing


@dataclass(frozen=True)
class Timing:
    """Whether a drifted model may be retrained on ``day``, and if not, until when it waits."""

    request: bool
    ready_day: date  # the first day post-drift data can train and test the model
    status: str  # "retrain requested" | "retrain pending until <day>" | why not


def ready_day(shift_start: date, horizon_days: int, wait_horizons: float = 2.0) -> date:
    """The first day post-drift data can both train and test a model of this horizon: a training snapshot as of
    ``shift_start`` has its labels by ``shift_start + horizon``; a test snapshot as of then has its labels one
    horizon later."""
    return shift_start + timedelta(days=math.ceil(wait_horizons * horizon_days))


def retrain_timing(
    day: date,
    shift_start: date,
    horizon_days: int,
    *,
    wait_horizons: float = 2.0,
    labelled_post_drift_users: int | None = None,
    min_post_drift_users: int = 0,
    train_dates: tuple[date, ...] | None = None,
    champion_train_dates: tuple[date, ...] | None = None,
) -> Timing:
    """Whether a model that drifted from ``shift_start`` on may ask to be retrained on ``day``.

    ``labelled_post_drift_users``: users of the model's population scored on days from ``shift_start`` whose
    labels have matured by ``day`` (None: not counted). ``train_dates``: the training as-of dates a retrain on
    ``day`` would use; ``champion_train_dates``: the current champion's (from its logged split). Equal dates would
    retrain on the champion's own snapshots: no request."""
    ready = ready_day(shift_start, horizon_days, wait_horizons)
    if day < ready:
        return Timing(False, ready, f"retrain pending until {ready}")
    if labelled_post_drift_users is not None and labelled_post_drift_users < min_post_drift_users:
        return Timing(
            False,
            ready,
            f"retrain pending until {min_post_drift_users} post-drift users are labelled "
            f"({labelled_post_drift_users} by {day})",
        )
    if (
        train_dates is not None
        and champion_train_dates is not None
        and tuple(train_dates) == tuple(champion_train_dates)
    ):
        return Timing(False, ready, "no retrain: it would train on the champion's own as-of dates")
    return Timing(True, ready, "retrain requested")


# ------------------------------------------------------------------------------------------- shared record


@dataclass
class RequestLog:
    """What was requested, per "customer/model": {"day": data day of the request, "shift_start": ISO day or None}.
    Shared by every process that requests retraining (open it with :meth:`locked`)."""

    requests: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def locked(cls, state_dir: Path) -> Iterator[RequestLog]:
        """The log under an exclusive file lock; written back when the block ends without an error."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / REQUEST_LOG
        with open(state_dir / f"{REQUEST_LOG}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    raw = json.loads(path.read_text()) if path.exists() else {}
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: not valid JSON ({exc}); delete it to start a new record") from None
                log = cls(dict(raw.get("requests") or {}))
                yield log
                text = json.dumps({"requests": log.requests}, indent=2, sort_keys=True) + "\n"
                atomic_write_bytes(path, text.encode())
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def last(self, key: str) -> dict[str, str | None] | None:
        return self.requests.get(key)

    def record(self, s: DriftSignal) -> None:
        self.requests[f"{s.customer}/{s.model}"] = {
            "day": s.day.isoformat(),
            "shift_start": s.shift_start.isoformat() if s.shift_start else None,
        }


def plan(
    signals: list[DriftSignal],
    state: RetrainState,
    cooldown_days: dict[str, int],
    log: RequestLog | None = None,
) -> list[Decision]:
    """Decide which signals become retraining requests: of the signals of one customer's model, the latest day's;
    never twice for one drift episode (the same ``shift_start``); and a customer's model at most once per
    ``cooldown_days[customer]`` days of data (the day of the last request counts). The last requests come from
    ``log`` (shared between processes) when given, else from ``state``; both are updated."""
    out = []
    # one evaluation can read many days of one model (a backfill run records every day it covered): the latest
    # day speaks for them, the earlier ones are superseded
    latest: dict[str, DriftSignal] = {}
    for s in sorted(signals, key=lambda s: (s.day, s.storage_id)):
        latest[f"{s.customer}/{s.model}"] = s
    for s in sorted(signals, key=lambda s: s.storage_id):
        key = f"{s.customer}/{s.model}"
        if latest[key] is not s:
            out.append(Decision(s, False, f"superseded by the drift measured on {latest[key].day}"))
            continue
        shared = log.last(key) if log is not None else None
        last = shared["day"] if shared else state.last_request.get(key)
        if shared and s.shift_start is not None and shared.get("shift_start") == s.shift_start.isoformat():
            out.append(
                Decision(s, False, f"already requested (data day {last}) for the shift that began on {s.shift_start}")
            )
            continue
        cooldown = cooldown_days.get(s.customer, 7)
        if last is not None and s.day < date.fromisoformat(last) + timedelta(days=cooldown):
            out.append(Decision(s, False, f"cooldown: last request for data day {last}, {cooldown} days"))
            continue
        state.last_request[key] = s.day.isoformat()
        if log is not None:
            log.record(s)
        out.append(Decision(s, True, s.reason))
    return out


def yesterday(now: datetime, timezone_name: str) -> date:
    """The last complete day in the customer's timezone at ``now`` (export days are the project's local days)."""
    return (now.astimezone(ZoneInfo(timezone_name)) - timedelta(days=1)).date()
