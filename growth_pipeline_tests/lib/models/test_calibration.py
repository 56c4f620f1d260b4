"""Probability calibration (growth_pipeline.lib.models.calibration)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from growth_pipeline.lib.models.calibration import Calibrator, choose_calibrator
from growth_pipeline.lib.models.metrics import (
    classifier_metrics,
    expected_calibration_error,
)
from growth_pipeline_tests.score_samples import calibrated_sample


def test_chooser_fixes_miscalibrated_but_well_ranked_probabilities():
    rng = np.random.default_rng(20)
    p_val, y_val = calibrated_sample(rng, 3000)
    cal, report = choose_calibrator(p_val**3, y_val)
    assert report["chosen"] in ("platt", "isotonic") and cal.method == report["chosen"]
    assert report[report["chosen"]] < report["none"] * 0.995
    p_test, y_test = calibrated_sample(rng, 20000)
    raw = p_test**3
    before = expected_calibration_error(y_test, raw)
    after = expected_calibration_error(y_test, cal.transform(raw))
    assert before > 0.15 and after < 0.03
    assert classifier_metrics(y_test, cal.transform(raw))["roc_auc"] == pytest.approx(
        classifier_metrics(y_test, raw)["roc_auc"], abs=0.005
    )
    json.dumps(report)


@pytest.mark.parametrize("seed", [21, 22])
def test_chooser_keeps_calibrated_probabilities(seed):
    p, y = calibrated_sample(np.random.default_rng(seed), 2000)
    cal, report = choose_calibrator(p, y)
    assert report["chosen"] == "none" and cal.method == "none"
    assert set(report) >= {"none", "platt", "isotonic", "chosen"}
    assert np.array_equal(cal.transform(p), p)


def test_chooser_is_deterministic():
    p, y = calibrated_sample(np.random.default_rng(23), 600)
    assert choose_calibrator(p**2, y, seed=3)[1] == choose_calibrator(p**2, y, seed=3)[1]


def test_chooser_falls_back_to_none_on_too_little_data():
    rng = np.random.default_rng(24)
    cal, report = choose_calibrator(rng.uniform(size=29), rng.integers(0, 2, size=29))
    assert cal.method == "none" and report["chosen"] == "none" and "29" in report["reason"]
    cal, report = choose_calibrator(rng.uniform(size=500), np.ones(500))
    assert cal.method == "none" and "one class" in report["reason"]
    y = np.zeros(500)
    y[:3] = 1
    cal, report = choose_calibrator(rng.uniform(size=500), y)
    assert cal.method == "none" and "rarer class" in report["reason"]


@pytest.mark.parametrize("method", ["none", "platt", "isotonic"])
def test_calibrator_round_trips(method):
    rng = np.random.default_rng(25)
    p, y = calibrated_sample(rng, 2000)
    cal = Calibrator(method).fit(p**2, y)
    probe = np.r_[0.0, 1.0, rng.uniform(size=1000)]
    back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back.method == method
    assert np.array_equal(back.transform(probe), cal.transform(probe))
    unpickled = pickle.loads(pickle.dumps(cal))
    assert np.array_equal(unpickled.transform(probe), cal.transform(probe))


def test_isotonic_is_clipped_monotone_and_keeps_ranking():
    rng = np.random.default_rng(26)
    p, y = calibrated_sample(rng, 3000)
    cal = Calibrator("isotonic").fit(p**3, y)
    grid = np.linspace(0, 1, 2001)
    out = cal.transform(grid)
    assert out.min() >= 1e-4 and out.max() <= 1 - 1e-4
    assert np.all(np.diff(out) >= 0)  # never reverses an order (but may create ties)
    p_test, y_test = calibrated_sample(rng, 10000)
    assert classifier_metrics(y_test, cal.transform(p_test**3))["roc_auc"] == pytest.approx(
        classifier_metrics(y_test, p_test)["roc_auc"], abs=0.01
    )


def test_calibrator_errors():
    with pytest.raises(ValueError, match="unknown"):
        Calibrator("beta")
    with pytest.raises(RuntimeError, match="not fitted"):
        Calibrator("platt").transform([0.5])
    with pytest.raises(ValueError, match="one class"):
        Calibrator("isotonic").fit([0.1, 0.2], [1, 1])
