"""Evaluation metrics of the pipeline's models on a time-based test set (pure numpy / scipy / scikit-learn / polars).

Two kinds of model are evaluated:

* **classifiers** (churn, conversion, custom goal): ``y_true`` is 0/1, the score is a probability.
  :func:`classifier_metrics` gives ranking (ROC AUC, PR AUC, top-decile lift, lift quality) and probability
  quality (log loss, Brier, ECE).
* **ltv** (revenue in a future window; most users spend 0): :func:`regression_metrics` gives ordering
  (normalized Gini, Spearman), error (RMSE, MAE) and calibration of totals (decile MAPE, total ratio).

:data:`PRIMARY_METRIC` names the metric that chooses and promotes a model of each kind (higher is better for both).

Inputs are 1-D numpy arrays, lists, polars or pandas Series; missing or infinite values are an error.

Ties and ordering
-----------------
Metrics that are *areas* (``roc_auc``, ``lift_quality``, ``normalized_gini``) treat tied scores as one block, i.e.
they give the expected value over a random order of the ties. So a constant score is exactly random (AUC 0.5,
lift quality 0, normalized Gini 0) whatever the row order of the input. Metrics that cut users into *deciles*
(``top_decile_lift``, ``decile_mape``, :func:`gains_table`, ``ece``) must put each user in one decile: they sort
stably, so users with tied scores that straddle a decile boundary are split by their input row order.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl

# scipy and scikit-learn are imported inside the functions that use them: they take seconds to import, and
# modules that only need gains tables or the constants (e.g. Dagster definitions) should not pay for that.

PRIMARY_METRIC: dict[str, str] = {"classifier": "roc_auc", "ltv": "normalized_gini"}

LOG_LOSS_EPS = 1e-6
N_BINS = 10

CLASSIFIER_KEYS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "top_decile_lift",
    "lift_quality",
    "positive_rate",
    "n",
)
REGRESSION_KEYS = (
    "normalized_gini",
    "spearman",
    "rmse",
    "mae",
    "decile_mape",
    "total_predicted",
    "total_actual",
    "total_ratio",
    "n",
)


class NotEnoughDataError(ValueError):
    """The data cannot give the metric (no rows, or labels of only one class). A ``ValueError``."""


# ----------------------------------------------------------------------------------------------------------- inputs


def as_array(x: Any, name: str = "array") -> np.ndarray:
    """A 1-D float64 numpy array from an array, list, polars or pandas Series; non-finite values raise."""
    if hasattr(x, "to_numpy"):
        x = x.to_numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise ValueError(f"{name} has {bad} missing or infinite value(s)")
    return a


def as_pair(y_true: Any, score: Any, score_name: str = "score") -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float arrays of the same, non-zero length (see :func:`as_array`)."""
    y = as_array(y_true, "y_true")
    s = as_array(score, score_name)
    if len(y) != len(s):
        raise ValueError(f"y_true and {score_name} differ in length: {len(y)} != {len(s)}")
    if len(y) == 0:
        raise NotEnoughDataError(f"no rows to evaluate (empty y_true and {score_name})")
    return y, s


def _binary(y: np.ndarray) -> np.ndarray:
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true of a classifier must contain only 0 and 1")
    return y


def is_binary(y_true: Any) -> bool:
    """True when every value of ``y_true`` is 0 or 1."""
    return bool(np.isin(as_array(y_true, "y_true"), (0.0, 1.0)).all())


# ----------------------------------------------------------------------------------------------------------- helpers


def decile_slices(n: int, n_bins: int = N_BINS) -> list[slice]:
    """Split positions ``0..n-1`` of a sorted array into ``min(n_bins, n)`` contiguous, near-equal parts.

    Sizes differ by at most one; the larger parts come first (``np.array_split``), so the first part holds
    ``ceil(n / n_bins)`` rows.
    """
    k = max(1, min(n_bins, n))
    bounds = np.cumsum([0] + [len(c) for c in np.array_split(np.arange(n), k)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def _desc_order(score: np.ndarray) -> np.ndarray:
    """Positions by descending score; tied scores keep their input order."""
    return np.argsort(-score, kind="stable")


def _tie_block_means(values_sorted: np.ndarray, score_sorted: np.ndarray) -> np.ndarray:
    """Replace each value by the mean over its block of tied scores (scores sorted, ties adjacent)."""
    n = len(values_sorted)
    starts = np.r_[0, np.flatnonzero(score_sorted[1:] != score_sorted[:-1]) + 1]
    counts = np.diff(np.r_[starts, n])
    return np.repeat(np.add.reduceat(values_sorted, starts) / counts, counts)


def gains_curve(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative-gains curve: share of users targeted (x) vs share of ``sum(y)`` captured (y).

    Users are taken by descending score; a block of tied scores is one straight segment (the expected curve over
    random orders of the ties). Both arrays start at 0 and end at 1. ``y`` may be 0/1 or non-negative revenue.
    """
    y, s = as_pair(y_true, score)
    total = y.sum()
    if total <= 0:
        raise NotEnoughDataError("gains need a positive sum of y_true (no positives / no revenue)")
    order = _desc_order(s)
    s_sorted = s[order]
    ends = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), len(s) - 1]
    x = np.r_[0.0, (ends + 1) / len(s)]
    g = np.r_[0.0, np.cumsum(y[order])[ends] / total]
    return x, g


def reliability_bins(y_true: Any, p: Any, n_bins: int = N_BINS) -> pl.DataFrame:
    """Equal-frequency bins of the predicted probability: ``bin, users, mean_p, mean_y`` (bin 1 = lowest p).

    Users are sorted by ``p`` (stably) and cut into ``min(n_bins, n)`` bins of near-equal size; used by
    ``ece`` and the reliability chart.
    """
    y, q = as_pair(y_true, p, "p")
    order = np.argsort(q, kind="stable")
    ys, qs = y[order], q[order]
    rows = [
        (i + 1, sl.stop - sl.start, float(qs[sl].mean()), float(ys[sl].mean()))
        for i, sl in enumerate(decile_slices(len(y), n_bins))
    ]
    return pl.DataFrame(
        rows, schema={"bin": pl.Int64, "users": pl.Int64, "mean_p": pl.Float64, "mean_y": pl.Float64}, orient="row"
    )


def expected_calibration_error(y_true: Any, p: Any, n_bins: int = N_BINS) -> float:
    """ECE with equal-frequency bins: ``sum_b (n_b / n) * |mean p in b - mean y in b|``.

    Users are sorted by ``p`` and cut into ``n_bins`` bins of (near-)equal size (see :func:`reliability_bins`),
    so every bin has enough users even when probabilities crowd near 0. 0 = perfectly calibrated at this
    resolution; a sample of size n drawn from perfectly calibrated probabilities still shows about
    ``sqrt(p(1-p) * n_bins / n)`` of noise.
    """
    b = reliability_bins(y_true, p, n_bins)
    w = b["users"].to_numpy() / b["users"].sum()
    return float(np.sum(w * np.abs(b["mean_p"].to_numpy() - b["mean_y"].to_numpy())))


# ------------------------------------------------------------------------------------------------------- classifier


def classifier_metrics(y_true: Any, p: Any) -> dict[str, float]:
    """Metrics of a binary classifier's probabilities ``p`` against 0/1 labels ``y_true``.

    Keys (all floats except ``n``):

    ``roc_auc``
        Probability that a random positive scores above a random negative (ties count 1/2). 0.5 = random.
    ``pr_auc``
        Average precision (scikit-learn's ``average_precision_score``).
    ``log_loss``
        Mean negative log-likelihood with ``p`` clipped to ``[1e-6, 1 - 1e-6]``.
    ``brier``
        Mean squared error of ``p``.
    ``ece``
        Expected calibration error, 10 equal-frequency bins of ``p``: the user-weighted mean over bins of
        ``|mean p - mean y|`` (:func:`expected_calibration_error`).
    ``top_decile_lift``
        Positive rate among the top 10% of users by ``p`` (``ceil(n/10)`` users, ties broken stably by input
        order) divided by the overall positive rate. A perfect model reaches ``min(1/positive_rate, 10)``.
    ``lift_quality``
        Area between the model's cumulative-gains curve and the random diagonal, divided by the same area for the
        perfect model: 1 = perfect ordering, 0 = random, < 0 = worse than random. This is the accuracy ratio
        (the Gini of the gains / CAP curve) and equals ``2 * roc_auc - 1``; tied scores form one segment.
    ``positive_rate``, ``n``
        Share of positives and number of users.

    Raises :class:`NotEnoughDataError` (a ``ValueError``) when ``y_true`` is empty or has only one class.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    y, q = as_pair(y_true, p, "p")
    _binary(y)
    if q.min() < 0 or q.max() > 1:
        raise ValueError(f"p must be probabilities in [0, 1], got range [{q.min()}, {q.max()}]")
    n = len(y)
    n_pos = int(y.sum())
    if n_pos in (0, n):
        raise NotEnoughDataError(
            f"y_true has only one class ({n_pos} positives out of {n} rows); classifier metrics need both"
        )
    rate = n_pos / n

    order = _desc_order(q)
    k = decile_slices(n, N_BINS)[0].stop
    top_rate = y[order[:k]].mean()

    x, g = gains_curve(y, q)
    area = float(np.sum((g[1:] + g[:-1]) / 2 * np.diff(x)))
    lift_quality = (area - 0.5) / ((1 - rate) / 2)

    out = {
        "roc_auc": roc_auc_score(y, q),
        "pr_auc": average_precision_score(y, q),
        # scikit-learn clips at the float epsilon only: clip at LOG_LOSS_EPS first, as documented above
        "log_loss": log_loss(y, np.clip(q, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS), labels=[0.0, 1.0]),
        "brier": brier_score_loss(y, q),
        "ece": expected_calibration_error(y, q),
        "top_decile_lift": top_rate / rate,
        "lift_quality": lift_quality,
        "positive_rate": rate,
    }
    res: dict[str, float] = {k_: float(v) for k_, v in out.items()}
    res["n"] = n
    return res


# ------------------------------------------------------------------------------------------------------- regression


def _gini(actual: np.ndarray, pred: np.ndarray) -> float:
    """The classic (Kaggle) Gini of ``pred``'s ordering of ``actual``, tied predictions averaged as one block."""
    n = len(actual)
    order = _desc_order(pred)
    a = _tie_block_means(actual[order], pred[order])
    total = a.sum()
    return float((np.cumsum(a).sum() / total - (n + 1) / 2) / n)


def normalized_gini(y_true: Any, y_pred: Any) -> float:
    """Gini of the predictions' ordering of actual values / Gini of the perfect ordering (1 perfect, 0 random).

    The classic normalized Gini of the Allstate / Porto Seguro competitions: sort users by prediction
    (descending), accumulate the share of actual value, compare with a random order, divide by the same for the
    ordering by the actual values themselves. Without tied predictions it is exactly the competitions' formula
    (sort by prediction desc, stable); a block of tied predictions counts as the average over its orders, so a
    constant prediction gives exactly 0 instead of a number that depends on the input row order. On 0/1 labels it
    equals ``lift_quality`` and ``2 * AUC - 1``. NaN when the actual total is not positive or all actual values
    are equal (nothing to order).
    """
    y, s = as_pair(y_true, y_pred, "y_pred")
    if y.sum() <= 0 or np.all(y == y[0]):
        return float("nan")
    if np.all(s == s[0]):
        return 0.0  # one block of ties: exactly random (the general formula leaves ~1e-13 of rounding)
    return _gini(y, s) / _gini(y, y)


def decile_mape(y_true: Any, y_pred: Any, n_bins: int = N_BINS) -> float:
    """Calibration of totals by predicted decile.

    Users are sorted by predicted value (descending, stable) and cut into ``n_bins`` near-equal groups; in each
    group the sum of predictions is compared with the sum of actual values, ``|pred_sum - actual_sum| /
    actual_sum``, and the result is the mean over the groups whose actual sum is > 0 (groups with no actual
    revenue are skipped: the percentage is undefined). NaN when no group has revenue. 0 = every decile's total is
    right.
    """
    y, s = as_pair(y_true, y_pred, "y_pred")
    order = _desc_order(s)
    ys, ss = y[order], s[order]
    errs = [abs(ss[sl].sum() - ys[sl].sum()) / ys[sl].sum() for sl in decile_slices(len(y), n_bins) if ys[sl].sum() > 0]
    return float(np.mean(errs)) if errs else float("nan")


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Metrics of a lifetime-value model: predicted vs actual revenue in the future window.

    Keys (all floats except ``n``):

    ``normalized_gini``
        How well the predictions order users by actual revenue (:func:`normalized_gini`); the primary metric.
    ``spearman``
        Spearman rank correlation (scipy); NaN when either side is constant.
    ``rmse``, ``mae``
        Root mean squared and mean absolute error.
    ``decile_mape``
        Mean absolute percentage error of the total per predicted decile, over deciles with actual revenue
        (:func:`decile_mape`).
    ``total_predicted``, ``total_actual``, ``total_ratio``
        Sums and their ratio predicted / actual (NaN when the actual total is 0).
    ``n``
        Number of users.

    .. warning::
        On zero-inflated revenue (most users spend 0) **MAE rewards predicting zero for everyone**: the all-zero
        model has a lower MAE than a useful model, yet orders nobody (normalized Gini 0). MAE is reported for
        reading only and must never be used to choose or promote an ltv model; use ``normalized_gini``
        (:data:`PRIMARY_METRIC`).
    """
    from scipy import stats
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    y, s = as_pair(y_true, y_pred, "y_pred")
    n = len(y)
    if np.all(y == y[0]) or np.all(s == s[0]):
        spearman = float("nan")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spearman = float(stats.spearmanr(y, s).statistic)
    total_pred, total_act = float(s.sum()), float(y.sum())
    res: dict[str, float] = {
        "normalized_gini": normalized_gini(y, s),
        "spearman": spearman,
        "rmse": float(root_mean_squared_error(y, s)),
        "mae": float(mean_absolute_error(y, s)),
        "decile_mape": decile_mape(y, s),
        "total_predicted": total_pred,
        "total_actual": total_act,
        "total_ratio": total_pred / total_act if total_act != 0 else float("nan"),
    }
    res["n"] = n
    return res


# ------------------------------------------------------------------------------------------------------ gains table


def gains_table(y_true: Any, score: Any, n_bins: int = N_BINS) -> pl.DataFrame:
    """Per decile of score (decile 1 = highest scores): how many users and how much of ``y`` it holds.

    Users are sorted by score (descending, ties in input order) and cut into ``min(n_bins, n)`` groups of
    near-equal size. Works for 0/1 labels (``positives`` = count of positives, ``rate`` = positive rate) and for
    continuous values such as revenue (``positives`` = revenue sum, ``rate`` = mean revenue per user).

    Columns: ``decile``, ``users``, ``positives``, ``rate``, ``score_min``, ``score_max``, ``cum_users_share``,
    ``gains`` (cumulative share of ``positives``; ends at 1), ``lift`` (decile rate / overall rate),
    ``cum_lift`` (rate of deciles 1..d / overall rate). Shares and lifts are NaN when ``sum(y)`` is 0.
    """
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    y, s = as_pair(y_true, score)
    n = len(y)
    order = _desc_order(s)
    ys, ss = y[order], s[order]
    slices = decile_slices(n, n_bins)
    users = np.array([sl.stop - sl.start for sl in slices], dtype=np.int64)
    pos = np.array([ys[sl].sum() for sl in slices], dtype=np.float64)
    total = pos.sum()
    overall = total / n
    rate = pos / users
    cum_users = np.cumsum(users)
    cum_pos = np.cumsum(pos)
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = cum_pos / total if total != 0 else np.full(len(slices), np.nan)
        lift = rate / overall if overall != 0 else np.full(len(slices), np.nan)
        cum_lift = (cum_pos / cum_users) / overall if overall != 0 else np.full(len(slices), np.nan)
    return pl.DataFrame(
        {
            "decile": np.arange(1, len(slices) + 1, dtype=np.int64),
            "users": users,
            "positives": pos,
            "rate": rate,
            "score_min": np.array([ss[sl].min() for sl in slices]),
            "score_max": np.array([ss[sl].max() for sl in slices]),
            "cum_users_share": cum_users / n,
            "gains": gains,
            "lift": lift,
            "cum_lift": cum_lift,
        }
    )


def finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    """The same dict with NaN / inf replaced by ``None`` (for JSON and for stores that reject NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def _paired_draws(
    y_true: Any, new: Any, old: Any, kind: str, n_resamples: int, seed: int
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The primary metric (ROC-AUC; ltv: normalized Gini) of ``new`` and ``old`` on the test set, and on each
    paired bootstrap resample of it (the same users for both); resamples that cannot give the metric (one class,
    no payer) are skipped."""
    from sklearn.metrics import roc_auc_score

    y = as_array(y_true, "y_true")
    a, b = as_array(new, "new"), as_array(old, "old")
    metric = roc_auc_score if kind == "classifier" else normalized_gini
    rng = np.random.default_rng(seed)
    draws_a, draws_b = [], []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        yy = y[idx]
        if (yy.min() == yy.max()) if kind == "classifier" else not np.any(yy > 0):
            continue
        draws_a.append(metric(yy, a[idx]))
        draws_b.append(metric(yy, b[idx]))
    return float(metric(y, a)), float(metric(y, b)), np.asarray(draws_a), np.asarray(draws_b)


def paired_bootstrap_win_rate(
    y_true: Any, new: Any, old: Any, kind: str, n_resamples: int = 200, seed: int = 0
) -> float:
    """The share of paired bootstrap resamples of one test set (the same users for both models) on which ``new``
    has the higher primary metric than ``old`` (ROC-AUC for classifiers, normalized Gini for ltv). 0.5 means the
    two are indistinguishable on this test set; the champion gate asks for clearly more."""
    _, _, da, db = _paired_draws(y_true, new, old, kind, n_resamples, seed)
    return float(np.mean(da > db)) if len(da) else float("nan")


def bootstrap_intervals(
    y_true: Any,
    score: Any,
    kind: str,
    keys: tuple[str, ...] | None = None,
    n_resamples: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals (default 90%) of test metrics: resample the users with replacement, compute
    the metrics on each resample, take the 5th and 95th percentiles. ``keys`` defaults to the primary metric;
    resamples that cannot give a metric (one class only, no payer) are skipped, and with fewer than 20 usable
    resamples the interval is NaN. A small test set gives a wide interval: what a reader of a small customer's
    model needs to see next to the figure."""
    from sklearn.metrics import roc_auc_score

    y = as_array(y_true, "y_true")
    s = as_array(score, "score")
    keys = keys or (PRIMARY_METRIC["classifier" if kind == "classifier" else "ltv"],)
    fast = {"roc_auc": roc_auc_score, "normalized_gini": normalized_gini}
    full = classifier_metrics if kind == "classifier" else regression_metrics
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {k: [] for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_resamples):
            idx = rng.integers(0, len(y), len(y))
            yy, ss = y[idx], s[idx]
            if (yy.min() == yy.max()) if kind == "classifier" else not np.any(yy > 0):
                continue
            m = {keys[0]: fast[keys[0]](yy, ss)} if len(keys) == 1 and keys[0] in fast else full(yy, ss)
            for k in keys:
                if math.isfinite(v := float(m.get(k, float("nan")))):
                    values[k].append(v)
    tail = (1 - level) / 2
    return {
        k: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail)))
        if len(v) >= 20
        else (float("nan"), float("nan"))
        for k, v in values.items()
    }


def paired_bootstrap_difference(
    y_true: Any, new: Any, old: Any, kind: str, n_resamples: int = 200, level: float = 0.9, seed: int = 0
) -> tuple[float, float, float]:
    """The primary metric of ``new`` minus that of ``old`` on one test set, with a paired percentile bootstrap
    interval (the same resampled users for both): an interval above zero says ``new`` is better beyond noise."""
    pa, pb, da, db = _paired_draws(y_true, new, old, kind, n_resamples, seed)
    if len(da) < 20:
        return pa - pb, float("nan"), float("nan")
    tail = (1 - level) / 2
    diffs = da - db
    return pa - pb, float(np.quantile(diffs, tail)), float(np.quantile(diffs, 1 - tail))
