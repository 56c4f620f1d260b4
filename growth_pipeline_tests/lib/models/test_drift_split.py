"""A drift retrain's split (lib/models/training.py split_dates with ``shift_start``): post-drift snapshots train,
weighted up through user_weights, on the latest matured test set; the normal split is unchanged without it."""

from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, load_customers
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec, OutcomeChange
from growth_pipeline.lib.models.labels import LabelSpec, label_specs
from growth_pipeline.lib.models.mlflow_store import tracking_uri
from growth_pipeline.lib.models.split import POST_DRIFT_WEIGHT, NotEnoughData, split_dates, user_weights
from growth_pipeline_tests.warehouse_builder import load_days

FIRST, LAST = date(2026, 1, 1), date(2026, 10, 27)
CHURN = LabelSpec("churn", horizon_days=14, population="active")
LTV = LabelSpec("ltv", horizon_days=90, population="active", active_days=90)


@pytest.mark.parametrize(
    ("spec", "shift"),
    [(CHURN, date(2026, 9, 1)), (CHURN, date(2026, 9, 29)), (LTV, date(2026, 4, 1))],
)
def test_the_drift_split_trains_on_post_drift_snapshots_whose_labels_end_by_the_test_date(spec, shift):
    h = timedelta(days=spec.horizon_days)
    split = split_dates(FIRST, LAST, spec, shift_start=shift)
    assert split.test == LAST - h and split.test > shift  # the latest matured snapshot, post-drift
    assert split.shift_start == shift and split.as_dict()["shift_start"] == shift.isoformat()
    assert any(d >= shift for d in split.train)
    assert max(split.train) == split.test - h  # the newest snapshot whose labels end on the test date
    for d in (*split.train, *split.valid_all):  # no training or validation label window reaches past the test
        assert d + h <= split.test
    # validation on the most recent snapshots (held-out users), not on ones older than training
    assert split.valid_all == split.train[-len(split.valid_all) :]
    normal = split_dates(FIRST, LAST, spec)
    assert max(split.train) > max(normal.train) and split.test == normal.test


def test_the_drift_split_has_post_drift_snapshots_after_the_shift_when_the_data_reaches_far_enough():
    shift = date(2026, 9, 10)
    split = split_dates(FIRST, LAST, CHURN, shift_start=shift)
    assert [d for d in split.train if d > shift]  # after the shift, not only on it
    # the normal split of the same data (the case): no training snapshot from after the change
    assert all(d < shift for d in split_dates(FIRST, LAST, CHURN).train)


def test_a_drift_retrain_too_early_for_post_drift_labels_says_when_it_can_run():
    with pytest.raises(NotEnoughData, match=r"post-drift training snapshot .* data up to 2026-10-29"):
        split_dates(FIRST, LAST, CHURN, shift_start=date(2026, 10, 1))


def test_the_normal_split_is_unchanged_without_a_shift_start():
    split = split_dates(FIRST, LAST, CHURN, shift_start=None)
    assert split == split_dates(FIRST, LAST, CHURN)
    assert split.shift_start is None and "shift_start" not in split.as_dict()
    # pinned: test on the latest matured date, validation one horizon earlier and weekly before, training before
    assert split.test == date(2026, 10, 13) and split.valid == date(2026, 9, 29)
    assert split.valid_extra == (date(2026, 9, 15), date(2026, 9, 22))
    assert max(split.train) == date(2026, 9, 8) and len(split.train) == 26 and split.step_days == 7


def test_post_drift_rows_weigh_more_through_the_same_user_weights():
    shift = date(2026, 9, 1)
    frame = pl.DataFrame(
        {
            "user_key": ["a", "a", "b", "b", "c", "d"],
            "as_of": [date(2026, 8, 18), date(2026, 9, 8), date(2026, 8, 25), date(2026, 9, 1)]
            + [date(2026, 8, 25)] * 2,
        }
    )
    w = user_weights(frame, per_user=False, shift_start=shift)
    post = (frame["as_of"] >= shift).to_numpy()
    assert w.mean() == pytest.approx(1.0)
    assert np.allclose(w[post], POST_DRIFT_WEIGHT * w[~post][0]) and np.allclose(w[~post], w[~post][0])
    # with the short-history per-user weighting as well: both factors multiply
    both = user_weights(frame, shift_start=shift)
    alone = user_weights(frame)
    ratio = both / alone
    assert np.allclose(ratio[post] / ratio[~post][0], POST_DRIFT_WEIGHT)
    assert np.array_equal(alone, user_weights(frame, shift_start=None))  # unchanged without a shift


# ------------------------------------------------------------------------------ end to end on a concept drift

START, DAYS, CHANGE = date(2026, 1, 1), 126, date(2026, 3, 31)  # the change on day 90


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """A small demo whose heavy 'Task Created' users churn 5x from CHANGE on, in a warehouse."""
    root = tmp_path_factory.mktemp("drift_split")
    change = OutcomeChange(CHANGE, "churn", "Task Created", 5.0)
    generate_demo(DemoSpec("powerplay", n_users=900, start=START, days=DAYS, seed=4, outcome_change=change), root / "s")
    customer = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "pp", root / "s")
    paths = Paths(root / "home")
    db = root / "pp.duckdb"
    with duckdb.connect(str(db)) as con:
        load_days(con, customer, paths, START, START + timedelta(days=DAYS - 1))
    return customer, paths, db


def test_a_drift_retrain_logs_post_drift_training_and_is_judged_against_the_champion_on_its_test_set(
    drifted, monkeypatch
):
    from growth_pipeline.lib.models.train_step import train_and_register

    customer, paths, db = drifted
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = tracking_uri(paths)
    kw = dict(
        warehouse=lambda: duckdb.connect(str(db), read_only=True),
        paths=paths,
        tracking_uri=uri,
        artifact_root=None,
        log=lambda m: None,
        warn=lambda m: None,
    )
    first = train_and_register(customer, "churn", trigger={"trigger": "manual"}, **kw)
    assert first.trained is not None and first.trained.split.shift_start is None
    assert max(first.trained.split.train) < CHANGE  # the normal split: nothing after the change trains
    trigger = {
        "trigger": "drift",
        "trigger.reason": "share_task_created_28d PSI 2.1",
        "trigger.shift_start": str(CHANGE),
    }
    res = train_and_register(customer, "churn", trigger=trigger, **kw)
    tm = res.trained
    h = timedelta(days=label_specs(customer)["churn"].horizon_days)
    assert tm.split.shift_start == CHANGE and tm.split.test > CHANGE
    assert [d for d in tm.split.train if d > CHANGE] and max(tm.split.train) + h <= tm.split.test
    run = MlflowClient(uri).get_run(res.logged.run_id)
    logged_train = [date.fromisoformat(d) for d in run.data.params["split.train"].split(",")]
    assert max(logged_train) > CHANGE and run.data.params["split.shift_start"] == str(CHANGE)
    assert run.data.tags["trigger.shift_start"] == str(CHANGE) and run.data.tags["as_of_test"] == str(tm.split.test)
    assert run.data.params["training.weights.shift_start"] == str(CHANGE)
    assert run.data.metrics["training.weights.post_drift_weight"] == POST_DRIFT_WEIGHT
    assert run.data.metrics["training.weights.post_drift_rows"] > 0
    m = run.data.metrics
    assert m["training.weights.post_drift_mean_weight"] == pytest.approx(
        POST_DRIFT_WEIGHT * m["training.weights.pre_drift_mean_weight"]
    )
    # the champion scored on the challenger's (post-drift) test set: the paired-bootstrap gate's input
    assert 0.0 <= m["champion.new_win_rate"] <= 1.0 and "champion.roc_auc" in m
    assert res.decision is not None and res.outcome in ("promoted", "kept", "refused")


def test_a_bad_shift_start_tag_is_named():
    from growth_pipeline.defs.models import REASON_TAG, SHIFT_START_TAG, TRIGGER_TAG, _trigger
    from growth_pipeline.lib.models.train_step import drift_shift_start

    # the drift sensor's run tags (defs/automation.py retrain_on_drift) become the training's trigger
    tags = {TRIGGER_TAG: "drift", REASON_TAG: "psi", SHIFT_START_TAG: "2026-09-01"}
    assert drift_shift_start(_trigger(tags)) == date(2026, 9, 1)
    assert drift_shift_start(_trigger({TRIGGER_TAG: "weekly_schedule"})) is None
    assert drift_shift_start({"trigger": "drift", "trigger.shift_start": "2026-09-01"}) == date(2026, 9, 1)
    assert drift_shift_start({"trigger": "manual", "trigger.shift_start": "2026-09-01"}) is None
    assert drift_shift_start({"trigger": "drift"}) is None
    with pytest.raises(ValueError, match="trigger.shift_start: '9/1/2026' is not a date"):
        drift_shift_start({"trigger": "drift", "trigger.shift_start": "9/1/2026"})
