"""A small customer (1,500 users, one year, as `generate-demo --users 1500 --days 365` makes it) gets each model
its behaviour supports, and for any other a reason in words that names what is missing: which model, and why."""

from datetime import date

import pytest

from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.promotion import decide
from growth_pipeline.lib.models.split import NotEnoughData
from growth_pipeline.lib.models.training import train_model
from growth_pipeline_tests.warehouse_builder import demo_activity

START = date(2025, 10, 1)
DAYS = 365


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return demo_activity(tmp_path_factory.mktemp("small"), "small", n_users=1500, start=START, days=DAYS, seed=11)


@pytest.mark.slow
def test_a_small_customer_gets_every_model_its_behaviour_supports(small):
    customer, act = small
    served, refused, reasons = {}, {}, {}
    for name, spec in label_specs(customer).items():
        try:
            tm = train_model(act, spec, customer.id, log=lambda m: None)
        except NotEnoughData as exc:
            reasons[name] = str(exc)
            continue
        decision = decide(tm.kind, tm.metrics, has_champion=False)
        if not decision.beats_baselines:
            refused[name] = decision.reason
            continue
        lo, hi = tm.metrics[f"model.{tm.primary_metric}_lo90"], tm.metrics[f"model.{tm.primary_metric}_hi90"]
        assert lo < tm.metrics[f"model.{tm.primary_metric}"] < hi
        served[name] = (tm.family, tm.metrics[f"model.{tm.primary_metric}"])
    # 1,500 users over a year: about 150 active users go quiet in a 14-day window and a few hundred reach the goal:
    # churn and goal are served, with their intervals
    assert {"churn", "goal"} <= set(served), (served, refused, reasons)
    # conversion: about a hundred recent sign-ups at the test date, a handful of whom convert within 30 days; the
    # reason names what is missing and where, or the model is served when the draw gives enough converters
    assert "conversion" in served or reasons["conversion"].startswith(
        "conversion: fewer than 10 users who converted in a 30-day window in the test snapshot"
    ), reasons
    # ltv orders users well above the rule, but on about 300 test users the 90-day total of this generated
    # customer is overestimated by more than its interval allows (1.38x): served only when the total holds,
    # otherwise refused with that reason in words
    assert "ltv" in served or "x the actual total" in refused["ltv"], refused
    for name, reason in reasons.items():
        assert reason.startswith(f"{name}: fewer than") or "needs at least" in reason, reason
