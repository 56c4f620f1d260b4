"""Probability calibration of classifiers on the validation set (pure numpy / scikit-learn).

"Probabilities are calibrated on the validation set when that improves calibration": :func:`choose_calibrator`
compares three maps of the model's validation probabilities,

* ``none``: the probabilities as they are;
* ``platt``: logistic regression on ``logit(p)``, ``p' = sigmoid(a * logit(p) + b)``, strictly increasing, so
  the ranking of users is unchanged;
* ``isotonic``: the best non-decreasing step function of ``p`` (scikit-learn's ``IsotonicRegression``), evaluated
  as the piecewise-linear interpolation of its thresholds and clipped to ``[1e-4, 1 - 1e-4]``. It never reverses
  the order of two users, but it flattens ranges of ``p`` into **ties** (users with different raw scores get the
  same calibrated probability), which can lower rank metrics such as AUC a little when they are computed on the
  calibrated probabilities. Compute ranking metrics on raw scores if that matters;

by 5-fold stratified cross-validated log loss on the validation set only, and refits the winner on the whole
validation set. The test set is never touched.

A :class:`Calibrator` is a small, picklable object; ``to_dict`` / ``from_dict`` give a JSON form (Platt
coefficients, or the isotonic thresholds) from which the same transform is rebuilt exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from growth_pipeline.lib.models.metrics import as_array

TIE_BREAK = 1e-6
METHODS = ("none", "platt", "isotonic")  # in order of complexity: ties go to the earlier one
LOGIT_EPS = 1e-6  # p is clipped to [eps, 1 - eps] before logit and in log loss
ISOTONIC_MIN, ISOTONIC_MAX = 1e-4, 1 - 1e-4
MIN_ROWS = 30  # fewer validation rows: no calibration
MIN_PER_CLASS = 5  # fewer positives (or negatives) than folds: no calibration
N_FOLDS = 5
MIN_RELATIVE_IMPROVEMENT = 0.005  # a more complex method must cut CV log loss by at least 0.5% (relative)
PLATT_C = 1e4  # almost no regularisation; keeps coefficients finite on perfectly separated data


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, LOGIT_EPS, 1 - LOGIT_EPS)
    return np.log(q) - np.log1p(-q)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, LOGIT_EPS, 1 - LOGIT_EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


class Calibrator:
    """A monotone map of predicted probabilities: ``method`` is ``"none"``, ``"platt"`` or ``"isotonic"``.

    ``fit(p_val, y_val)`` learns the map (a no-op for ``none``), ``transform(p)`` applies it. Transforms use only
    the stored parameters (Platt ``coef`` / ``intercept``; isotonic ``x`` / ``y`` thresholds), so a calibrator
    rebuilt with :meth:`from_dict` gives bit-identical outputs.
    """

    def __init__(self, method: str = "none") -> None:
        if method not in (*METHODS, "scale"):
            raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")
        self.method = method
        self.coef: float | None = None
        self.intercept: float | None = None
        self.x_thresholds: np.ndarray | None = None
        self.y_thresholds: np.ndarray | None = None
        self.n_fit: int = 0
        self.factor: float | None = None  # "scale": predicted values times this (lifetime value models)

    @property
    def fitted(self) -> bool:
        if self.method == "scale":
            return self.factor is not None
        if self.method == "platt":
            return self.coef is not None
        if self.method == "isotonic":
            return self.x_thresholds is not None
        return True

    def fit(self, p_val: Any, y_val: Any) -> Calibrator:
        p = as_array(p_val, "p_val")
        y = as_array(y_val, "y_val")
        if len(p) != len(y):
            raise ValueError(f"p_val and y_val differ in length: {len(p)} != {len(y)}")
        if self.method == "scale":
            # predicted value totals: make the validation total match (bounded: a wild factor means a broken model)
            self.n_fit = len(y)
            self.factor = float(np.clip(y.sum() / p.sum(), 0.2, 5.0)) if p.sum() > 0 else 1.0
            return self
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y_val must contain only 0 and 1")
        self.n_fit = len(y)
        if self.method == "none":
            return self
        if len(np.unique(y)) < 2:
            raise ValueError(f"cannot fit {self.method} calibration: y_val has only one class")
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression  # imported late: scikit-learn is slow to import

            lr = LogisticRegression(C=PLATT_C, max_iter=1000)
            lr.fit(_logit(p).reshape(-1, 1), y)
            self.coef = float(lr.coef_[0, 0])
            self.intercept = float(lr.intercept_[0])
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=ISOTONIC_MIN, y_max=ISOTONIC_MAX, increasing=True, out_of_bounds="clip")
            iso.fit(p, y)
            self.x_thresholds = np.asarray(iso.X_thresholds_, dtype=np.float64).copy()
            self.y_thresholds = np.asarray(iso.y_thresholds_, dtype=np.float64).copy()
        return self

    def transform(self, p: Any) -> np.ndarray:
        q = as_array(p, "p")
        if self.method == "none":
            return q.copy()
        if not self.fitted:
            raise RuntimeError(f"{self.method} calibrator is not fitted")
        if self.method == "scale":
            return q * self.factor
        if self.method == "platt":
            z = self.coef * _logit(q) + self.intercept
            return 1.0 / (1.0 + np.exp(-z))
        out = np.interp(q, self.x_thresholds, self.y_thresholds)  # constant outside the fitted range
        # Isotonic steps are flat: users the model ranks apart would tie, and ties cost ranking quality (AUC,
        # lift, percentiles). A tie-breaker of at most 1e-6 keeps the model's order and changes no probability
        # by more than that.
        return np.clip(out, ISOTONIC_MIN, ISOTONIC_MAX - TIE_BREAK) + TIE_BREAK * np.clip(q, 0.0, 1.0)

    def to_dict(self) -> dict:
        """JSON-serialisable parameters (Python floats; ``repr`` round-trips them exactly)."""
        d: dict[str, Any] = {"method": self.method, "n_fit": int(self.n_fit)}
        if self.method == "scale" and self.fitted:
            d.update(factor=self.factor)
        elif self.method == "platt" and self.fitted:
            d.update(coef=self.coef, intercept=self.intercept)
        elif self.method == "isotonic" and self.fitted:
            d.update(x=[float(v) for v in self.x_thresholds], y=[float(v) for v in self.y_thresholds])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        c = cls(d["method"])
        c.n_fit = int(d.get("n_fit", 0))
        if c.method == "scale" and "factor" in d:
            c.factor = float(d["factor"])
        elif c.method == "platt" and "coef" in d:
            c.coef, c.intercept = float(d["coef"]), float(d["intercept"])
        elif c.method == "isotonic" and "x" in d:
            c.x_thresholds = np.asarray(d["x"], dtype=np.float64)
            c.y_thresholds = np.asarray(d["y"], dtype=np.float64)
            if len(c.x_thresholds) != len(c.y_thresholds) or len(c.x_thresholds) == 0:
                raise ValueError("isotonic calibrator needs x and y thresholds of the same, non-zero length")
        return c

    def __repr__(self) -> str:
        if self.method == "platt" and self.fitted:
            return f"Calibrator(platt: coef={self.coef:.4g}, intercept={self.intercept:.4g})"
        if self.method == "isotonic" and self.fitted:
            return f"Calibrator(isotonic: {len(self.x_thresholds)} thresholds)"
        return f"Calibrator({self.method}{'' if self.fitted else ', unfitted'})"


def _cv_log_loss(method: str, p: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Log loss of out-of-fold calibrated probabilities, pooled over all validation rows."""
    if method == "none":
        return _log_loss(y, p)
    oof = np.empty_like(p)
    for train, test in folds:
        oof[test] = Calibrator(method).fit(p[train], y[train]).transform(p[test])
    return _log_loss(y, oof)


def choose_calibrator(p_val: Any, y_val: Any, seed: int = 0) -> tuple[Calibrator, dict]:
    """Pick and fit the calibration of validation probabilities ``p_val`` for labels ``y_val``.

    Each method of :data:`METHODS` is scored by its log loss over out-of-fold predictions of a 5-fold
    ``StratifiedKFold(shuffle=True, random_state=seed)`` on the validation set (``none`` needs no fitting: its
    score is the plain log loss). Methods are taken in order of complexity (none < platt < isotonic); a method
    replaces the current choice only if its CV log loss is at least 0.5% (relative) lower, so ties and
    near-ties go to the simpler one. The winner is refitted on the whole validation set.

    Returns ``(calibrator, report)`` with ``report = {"none": ll, "platt": ll, "isotonic": ll, "chosen": method,
    "n_val": n, "positives": k}``. With fewer than 30 rows, a single class, or fewer than 5 rows of a class,
    the calibrator is ``none`` and the report says why under ``"reason"`` (without CV scores).
    """
    p = as_array(p_val, "p_val")
    y = as_array(y_val, "y_val")
    if len(p) != len(y):
        raise ValueError(f"p_val and y_val differ in length: {len(p)} != {len(y)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_val must contain only 0 and 1")
    n, n_pos = len(y), int(y.sum())
    report: dict[str, Any] = {"n_val": n, "positives": n_pos}
    reason = None
    if n < MIN_ROWS:
        reason = f"only {n} validation rows (< {MIN_ROWS}): not calibrated"
    elif n_pos in (0, n):
        reason = "validation labels have only one class: not calibrated"
    elif min(n_pos, n - n_pos) < MIN_PER_CLASS:
        reason = f"only {min(n_pos, n - n_pos)} validation rows of the rarer class (< {MIN_PER_CLASS}): not calibrated"
    if reason is not None:
        report.update(chosen="none", reason=reason)
        return Calibrator("none").fit(p, y), report

    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    folds = list(skf.split(np.zeros(n), y.astype(np.int64)))
    scores = {m: _cv_log_loss(m, p, y, folds) for m in METHODS}
    chosen = "none"
    for m in METHODS[1:]:
        if math.isfinite(scores[m]) and scores[m] <= scores[chosen] * (1 - MIN_RELATIVE_IMPROVEMENT):
            chosen = m
    report = {
        **scores,
        "chosen": chosen,
        **report,
        "folds": N_FOLDS,
        "min_relative_improvement": MIN_RELATIVE_IMPROVEMENT,
    }
    return Calibrator(chosen).fit(p, y), report
