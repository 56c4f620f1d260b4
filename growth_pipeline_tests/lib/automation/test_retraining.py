"""Retraining decisions as plain functions (lib/automation/retraining.py): cooldown, the customer's yesterday."""

from datetime import UTC, date, datetime

from growth_pipeline.lib.automation.retraining import DriftSignal, RetrainState, plan, yesterday


def test_cooldown_allows_one_request_per_model_per_cooldown():
    state = RetrainState()
    first = plan([DriftSignal("acme", "churn", date(2026, 5, 1), "drift", 1)], state, {"acme": 7})
    assert first[0].request
    # later evaluations: within the cooldown nothing, after it one request; several days of one model read at
    # once (a backfill) make one request, for the latest day
    sig = [DriftSignal("acme", "churn", date(2026, 5, d), "drift", d) for d in (2, 8, 9)]
    sig.append(DriftSignal("acme", "ltv", date(2026, 5, 2), "drift", 10))
    sig.append(DriftSignal("other", "churn", date(2026, 5, 2), "drift", 11))
    decided = plan(sig, state, {"acme": 7, "other": 7})
    asked = [(d.signal.customer, d.signal.model, d.signal.day.day) for d in decided if d.request]
    assert asked == [("acme", "churn", 9), ("acme", "ltv", 2), ("other", "churn", 2)]
    # the state survives the cursor round trip
    again = plan(
        [DriftSignal("acme", "churn", date(2026, 5, 15), "drift", 12)],
        RetrainState.from_cursor(state.to_cursor()),
        {"acme": 7},
    )
    assert not again[0].request and "cooldown" in again[0].why


def test_yesterday_is_in_the_customers_timezone():
    at = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    assert yesterday(at, "Asia/Kolkata") == date(2026, 5, 1)
    assert yesterday(at, "America/Los_Angeles") == date(2026, 4, 30)  # still May 1st, 23:00 there
