"""When a drifted model may be retrained: after post-drift data can train and test it, never on the champion's
own as-of dates, and never twice for one shift, whichever process (daemon sensor or CLI) asks."""

from __future__ import annotations

import json
import multiprocessing
from datetime import date, timedelta

import pytest

from growth_pipeline.lib.automation.retraining import (
    REQUEST_LOG,
    DriftSignal,
    RequestLog,
    RetrainState,
    plan,
    ready_day,
    retrain_timing,
)

SHIFT = date(2026, 9, 1)


def test_a_retrain_waits_two_horizons_after_the_shift():
    assert ready_day(SHIFT, 14) == date(2026, 9, 29)
    assert ready_day(SHIFT, 30) == SHIFT + timedelta(days=60)
    assert ready_day(SHIFT, 14, wait_horizons=1.5) == SHIFT + timedelta(days=21)
    early = retrain_timing(date(2026, 9, 15), SHIFT, 14)
    assert not early.request and early.status == "retrain pending until 2026-09-29"
    assert early.ready_day == date(2026, 9, 29)
    assert not retrain_timing(date(2026, 9, 28), SHIFT, 14).request
    on_time = retrain_timing(date(2026, 9, 29), SHIFT, 14)
    assert on_time.request and on_time.status == "retrain requested"
    # a 90-day model waits half a year
    assert retrain_timing(date(2026, 11, 29), SHIFT, 90).status == "retrain pending until 2027-02-28"


def test_a_retrain_waits_for_enough_labelled_post_drift_users():
    few = retrain_timing(date(2026, 10, 5), SHIFT, 14, labelled_post_drift_users=120, min_post_drift_users=200)
    assert not few.request and "200 post-drift users" in few.status and "120" in few.status
    assert retrain_timing(date(2026, 10, 5), SHIFT, 14, labelled_post_drift_users=200, min_post_drift_users=200).request


def test_no_retrain_on_the_champions_own_as_of_dates():
    dates = tuple(date(2026, 7, 1) + timedelta(days=7 * k) for k in range(8))
    same = retrain_timing(date(2026, 10, 5), SHIFT, 14, train_dates=dates, champion_train_dates=dates)
    assert not same.request and "champion's own as-of dates" in same.status
    moved = dates[1:] + (dates[-1] + timedelta(days=7),)
    assert retrain_timing(date(2026, 10, 5), SHIFT, 14, train_dates=moved, champion_train_dates=dates).request


def signal(day: date, storage_id: int, shift: date | None = SHIFT, model: str = "churn") -> DriftSignal:
    return DriftSignal("powerplay", model, day, "drifted features", storage_id, shift)


def test_one_request_per_shift_shared_by_sensor_and_cli(tmp_path):
    """The daemon's sensor and the CLI read the same events with their own cursors; the shared record lets only
    the first ask."""
    sensor_state, cli_state = RetrainState(), RetrainState()
    with RequestLog.locked(tmp_path) as log:
        first = plan([signal(date(2026, 9, 29), 10)], sensor_state, {"powerplay": 7}, log)
    assert [d.request for d in first] == [True]
    with RequestLog.locked(tmp_path) as log:
        again = plan([signal(date(2026, 9, 29), 10)], cli_state, {"powerplay": 7}, log)
    assert [d.request for d in again] == [False] and "already requested" in again[0].why
    # the same shift, still drifting weeks later (the retrain was kept, not promoted): still not asked again
    with RequestLog.locked(tmp_path) as log:
        later = plan([signal(date(2026, 11, 1), 40)], cli_state, {"powerplay": 7}, log)
    assert not later[0].request and "2026-09-01" in later[0].why
    # a new shift after the cooldown asks again; another model of the customer is independent
    with RequestLog.locked(tmp_path) as log:
        new = plan(
            [signal(date(2026, 11, 2), 41, shift=date(2026, 10, 5)), signal(date(2026, 11, 2), 42, model="ltv")],
            sensor_state,
            {"powerplay": 7},
            log,
        )
    assert [d.request for d in new] == [True, True]
    record = json.loads((tmp_path / REQUEST_LOG).read_text())["requests"]
    assert record["powerplay/churn"] == {"day": "2026-11-02", "shift_start": "2026-10-05"}


def test_cooldown_still_applies_without_a_shift_start(tmp_path):
    """Verdicts written before shift starts were recorded: one request per cooldown, as before."""
    state = RetrainState()
    with RequestLog.locked(tmp_path) as log:
        assert plan([signal(date(2026, 9, 1), 1, shift=None)], state, {"powerplay": 7}, log)[0].request
        held = plan([signal(date(2026, 9, 5), 2, shift=None)], state, {"powerplay": 7}, log)[0]
        assert not held.request and "cooldown" in held.why
        assert plan([signal(date(2026, 9, 8), 3, shift=None)], state, {"powerplay": 7}, log)[0].request


def test_latest_day_of_a_backfill_speaks_for_it(tmp_path):
    with RequestLog.locked(tmp_path) as log:
        out = plan([signal(date(2026, 9, 29), 5), signal(date(2026, 9, 30), 6)], RetrainState(), {}, log)
    assert [d.request for d in out] == [False, True] and "superseded" in out[0].why


def _ask(state_dir: str, queue) -> None:
    with RequestLog.locked(state_dir) as log:
        queue.put(plan([signal(date(2026, 9, 29), 10)], RetrainState(), {"powerplay": 7}, log)[0].request)


def test_two_processes_at_once_ask_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ask, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(queue.get(timeout=5) for _ in procs) == [False, True]


def test_a_corrupt_record_is_named(tmp_path):
    (tmp_path / REQUEST_LOG).write_text("{not json")
    with pytest.raises(ValueError, match=REQUEST_LOG), RequestLog.locked(tmp_path):
        pass
