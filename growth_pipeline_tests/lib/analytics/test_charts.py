"""Evaluation charts (growth_pipeline.lib.analytics.charts)."""

from __future__ import annotations

import numpy as np
import pytest

from growth_pipeline.lib.analytics import charts
from growth_pipeline_tests.score_samples import calibrated_sample, zero_inflated


def _is_png(b: bytes) -> bool:
    return isinstance(b, bytes) and b.startswith(b"\x89PNG\r\n\x1a\n") and 5_000 < len(b) < 2_000_000


def test_charts_return_png_and_write_files(tmp_path):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(30)
    p, y = calibrated_sample(rng, 3000)
    rev, pred = zero_inflated(rng, 3000)
    scores = {
        "catboost": p,
        "logistic": np.clip(p + rng.normal(0, 0.1, len(p)), 0, 1),
        "rule: recency": rng.uniform(size=len(p)),
    }
    out = tmp_path / "charts" / "gains.png"
    b = charts.gains_and_lift_chart(y, scores, "Churn: test set", path=out)
    assert _is_png(b) and out.read_bytes() == b
    assert _is_png(charts.gains_and_lift_chart(rev, {"ltv": pred}, "LTV gains"))
    assert _is_png(
        charts.calibration_chart(y, {"raw": p**3, "calibrated": p}, "Calibration", path=tmp_path / "cal.png")
    )
    assert _is_png(charts.decile_chart(rev, {"catboost": pred, "rule: past spend": pred * 0.5}, "LTV deciles"))
    assert _is_png(
        charts.bar_chart(
            [f"feature_{i}" for i in range(25)], rng.exponential(size=25), "Feature importance", "importance"
        )
    )
    assert _is_png(charts.bar_chart(["organic", "paid", "referral"], [1.3, -0.2, 0.7], "Channels", "lift"))
    assert (tmp_path / "cal.png").read_bytes().startswith(b"\x89PNG")
    assert plt.get_fignums() == []  # nothing left open in pyplot


def test_charts_are_deterministic():
    rng = np.random.default_rng(31)
    p, y = calibrated_sample(rng, 1000)
    a = charts.calibration_chart(y, {"model": p}, "Calibration")
    assert a == charts.calibration_chart(y, {"model": p}, "Calibration")
    assert b"Software" not in a
    assert charts.bar_chart(["a", "b"], [1, 2], "t", "x") == charts.bar_chart(["a", "b"], [1, 2], "t", "x")


def test_charts_reject_bad_input():
    with pytest.raises(ValueError):
        charts.gains_and_lift_chart([0, 1], {}, "empty")
    with pytest.raises(ValueError, match="length"):
        charts.calibration_chart([0, 1, 1], {"m": [0.1, 0.2]}, "t")
    with pytest.raises(ValueError, match="length"):
        charts.bar_chart(["a"], [1, 2], "t", "x")
