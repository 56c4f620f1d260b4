"""Concept drift in the demo generator: ``OutcomeChange`` changes what the inputs mean for an outcome from a day
on, leaving every earlier file byte-identical, with truth.py's probabilities following the change."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from growth_pipeline.cli import build_parser
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec, OutcomeChange
from growth_pipeline.lib.demo.truth import true_outcome_probability
from growth_pipeline.lib.demo.writer import day_files_for

START, DAYS, CHANGE = date(2024, 1, 1), 110, date(2024, 3, 31)  # the change on day 90
HORIZON = 14


def digest(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """The same population and seed without and with 'heavy Task Created users churn 5x from CHANGE on'."""
    root = tmp_path_factory.mktemp("outcome_change")
    kw = dict(customer="powerplay", n_users=3000, start=START, days=DAYS, seed=5)
    change = OutcomeChange(CHANGE, "churn", "Task Created", 5.0)
    out = {}
    for name, oc in (("base", None), ("changed", change)):
        spec = DemoSpec(**kw, outcome_change=oc)
        generate_demo(spec, root / name)
        out[name] = (spec, root / name, pl.read_parquet(root / name / "truth.parquet"))
    return out


def test_days_before_the_change_are_byte_identical(worlds):
    (base, base_dir, _), (changed, changed_dir, _) = worlds["base"], worlds["changed"]
    for k in range(DAYS):
        day = START + timedelta(days=k)
        same = digest(day_files_for(base, base_dir, day)) == digest(day_files_for(changed, changed_dir, day))
        assert same == (day < CHANGE), day  # identical before the change, different from it on


def test_truth_records_the_change_and_only_the_users_it_hits(worlds):
    _, base_dir, base = worlds["base"]
    _, changed_dir, truth = worlds["changed"]
    assert "churn_hazard_after_change" not in base.columns  # no change, no extra columns
    hit = truth["in_outcome_change"].to_numpy()
    assert 0.45 < hit.mean() < 0.55  # at or above the median expected count of the event
    before, after = truth["churn_hazard"].to_numpy(), truth["churn_hazard_after_change"].to_numpy()
    np.testing.assert_allclose(after[hit], np.clip(before[hit] * 5.0, 0.001, 0.25))
    np.testing.assert_array_equal(after[~hit], before[~hit])
    np.testing.assert_array_equal(truth["goal_hazard_after_change"], truth["goal_hazard"])
    # the heavy users of the event were the protected (engaged) ones before the change
    assert before[hit].mean() < 0.6 * before[~hit].mean()
    meta = json.loads((changed_dir / "truth.json").read_text())
    assert meta["outcome_change"]["start"] == CHANGE.isoformat() and meta["outcome_change"]["factor"] == 5.0
    assert meta["outcome_change"]["users_in_change"] == int(hit.sum())
    assert json.loads((base_dir / "truth.json").read_text())["outcome_change"] is None
    # users' fates up to the day before the change are the same in both worlds
    early = pl.col("churn_date").is_not_null() & (pl.col("churn_date") < CHANGE)
    assert base.filter(early)["user_id"].sort().equals(truth.filter(early)["user_id"].sort())


def realised_churn(truth: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Users alive at the end of ``as_of`` and whether they went silent in the next HORIZON days."""
    alive = truth.filter(
        (pl.col("signup_date") <= as_of) & (pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of))
    )
    return alive.select(
        "user_id", (pl.col("churn_date") <= as_of + timedelta(days=HORIZON)).fill_null(False).alias("y")
    )


def test_true_probabilities_follow_the_change(worlds):
    truth = worlds["changed"][2]
    old_relationship = truth.drop([c for c in truth.columns if c.endswith("_after_change")])
    for as_of in (CHANGE - timedelta(days=7), CHANGE - timedelta(days=1)):  # a window straddling it, one after it
        y = realised_churn(truth, as_of)
        p = true_outcome_probability(truth, "churn", as_of, HORIZON).join(y, on="user_id")
        old = true_outcome_probability(old_relationship, "churn", as_of, HORIZON).join(y, on="user_id")
        realised = float(p["y"].mean())
        # calibrated on the changed world; the old relationship clearly under-predicts it
        assert abs(float(p["probability"].mean()) - realised) < 0.03, as_of
        assert float(old["probability"].mean()) < realised - 0.03, as_of
    # before the change the two relationships agree exactly
    as_of = CHANGE - timedelta(days=HORIZON + 1)
    a = true_outcome_probability(truth, "churn", as_of, HORIZON)["probability"]
    b = true_outcome_probability(old_relationship, "churn", as_of, HORIZON)["probability"]
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_old_relationship_loses_auc_on_post_change_users(worlds):
    """The champion of the old world (here its best possible form, the pre-change truth) ranks post-change users
    worse: realised ROC-AUC at least 0.03 under what it scores in the world without the change."""
    as_of = CHANGE - timedelta(days=1)  # the whole label window after the change
    aucs = {}
    for name in ("base", "changed"):
        truth = worlds[name][2]
        old_relationship = truth.drop([c for c in truth.columns if c.endswith("_after_change")])
        y = realised_churn(truth, as_of)
        for hidden in (True, False):
            s = true_outcome_probability(old_relationship, "churn", as_of, HORIZON, hidden_state=hidden).join(
                y, on="user_id"
            )
            aucs[name, hidden] = roc_auc_score(s["y"].to_numpy(), s["probability"].to_numpy())
    for hidden in (True, False):
        assert aucs["changed", hidden] <= aucs["base", hidden] - 0.03, aucs


def test_bad_outcome_changes_are_refused(tmp_path):
    kw = dict(customer="powerplay", n_users=10, start=START, days=2)
    for bad, word in (
        (OutcomeChange(START, "churn", "Subscription Purchased", 2.0), "event"),
        (OutcomeChange(START, "churn", "Project Created", 2.0), "event"),  # the goal event
        (OutcomeChange(START, "revenue", "Task Created", 2.0), "hazard"),
        (OutcomeChange(START, "churn", "Task Created", -1.0), "factor"),
    ):
        with pytest.raises(ValueError, match=word):
            generate_demo(DemoSpec(**kw, outcome_change=bad), tmp_path)


def test_generate_demo_parses_outcome_change(capsys):
    args = build_parser().parse_args(["generate-demo", "--outcome-change", "2026-09-01:churn:Task Created:5"])
    assert args.outcome_change == OutcomeChange(date(2026, 9, 1), "churn", "Task Created", 5.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate-demo", "--outcome-change", "2026-09-01:revenue:Task Created:5"])
    assert "DAY:HAZARD:EVENT:FACTOR" in capsys.readouterr().err
