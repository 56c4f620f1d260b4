"""Buy-till-you-die models on a customer's history, used twice: as a candidate that may serve a model, and as
features for CatBoost (the hybrid). No Dagster, no MLflow.

Two BG/NBD fits per as-of date, on every user seen on or before it (point in time, like every other feature):

* on **active days** (a "transaction" is a day with any activity): the chance a user comes back in the horizon;
  churn is its complement. For a customer whose only activity is orders this is "no purchase in the horizon".
* on **purchase days**, with Gamma-Gamma on the spend of repeat purchase days: expected purchases, the chance of
  buying again and the expected spend in the horizon (ltv).

Time is in weeks (BG/NBD's usual unit); counts are days with activity or purchases, so several orders on one
day are one transaction (their spend is summed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from growth_pipeline.lib.models import btyd

UNIT_DAYS = 7.0
MIN_USERS = 50  # fewer users with history: no fit, the btyd features stay empty
# A light L2 penalty on the log-parameters: on real purchase data the likelihood has a flat ridge along which a
# and b run to 1e4 and back from one day to the next (same dropout chance, a different fit), which made the
# daily features jump and the drift monitor cry wolf; 1e-4 keeps a, b in the tens and moves r and alpha < 1%.
PENALIZER = 1e-4
ACTIVITY_INPUTS = ("lifetime_active_days", "recency_days", "days_since_first_seen")
PURCHASE_INPUTS = (
    "repeat_purchase_days",
    "days_since_last_purchase",
    "days_since_first_purchase",
    "repeat_order_value_mean",
)
FEATURES = (
    "btyd_return_probability",
    "btyd_alive_probability",
    "btyd_purchase_probability",
    "btyd_expected_purchases",
    "btyd_expected_spend",
)


@dataclass
class Fits:
    """The BG/NBD (and Gamma-Gamma) parameters fitted on the data up to one as-of date; None where a fit was
    impossible, with the reason."""

    activity: dict | None = None
    purchases: dict | None = None
    spend: dict | None = None
    notes: list[str] = field(default_factory=list)


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def activity_rfm(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks from active days: repeat active days, first to last active day, first day to as-of."""
    days, rec, age = (_col(frame, c) for c in ACTIVITY_INPUTS)
    # clipped: an explanation moves one input to the population's median, which can leave t_x outside [0, T]
    return np.maximum(days - 1, 0), np.clip(age - rec, 0, age) / UNIT_DAYS, age / UNIT_DAYS


def purchase_rfm(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T, spend per repeat day) from purchase days; NaN for users who never bought."""
    x, since_last, age, value = (_col(frame, c) for c in PURCHASE_INPUTS)
    return x, np.clip(age - since_last, 0, age) / UNIT_DAYS, age / UNIT_DAYS, value


def fit(features: pl.DataFrame) -> Fits:
    """Fit the models on every user of a feature frame (all users as of one date, not one model's population)."""
    out = Fits()
    x, t_x, T = activity_rfm(features)
    ok = np.isfinite(x) & np.isfinite(T) & (T > 0)
    try:
        if ok.sum() < MIN_USERS:
            raise ValueError(f"only {int(ok.sum())} users with history (at least {MIN_USERS} needed)")
        out.activity = btyd.BetaGeoModel(penalizer=PENALIZER).fit(x[ok], t_x[ok], T[ok]).to_dict()
    except ValueError as exc:
        out.notes.append(f"BG/NBD on active days not fitted: {exc}")
    x, t_x, T, value = purchase_rfm(features)
    ok = np.isfinite(x) & np.isfinite(T) & (T > 0)
    try:
        if ok.sum() < MIN_USERS:
            raise ValueError(f"only {int(ok.sum())} buyers (at least {MIN_USERS} needed)")
        out.purchases = btyd.BetaGeoModel(penalizer=PENALIZER).fit(x[ok], t_x[ok], T[ok]).to_dict()
        repeat = ok & (x > 0) & np.isfinite(value) & (value > 0)
        out.spend = btyd.GammaGammaModel().fit(x[repeat], value[repeat]).to_dict()
    except ValueError as exc:
        out.notes.append(f"BG/NBD on purchase days not fitted: {exc}")
    return out


def fits_for(act: Any, as_of: date, features: pl.DataFrame) -> Fits:
    """The fits as of ``as_of``, computed once per Activity (``features`` is its full frame for that date)."""
    if as_of not in act.btyd_fits:
        act.btyd_fits[as_of] = fit(features)
    return act.btyd_fits[as_of]


def _predictions(fits: Fits, frame: pl.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    t = horizon_days / UNIT_DAYS
    n = frame.height
    out = {name: np.full(n, np.nan) for name in FEATURES}
    if fits.activity is not None:
        bg = btyd.BetaGeoModel.from_dict(fits.activity)
        x, t_x, T = activity_rfm(frame)
        ok = np.isfinite(x) & np.isfinite(T)
        out["btyd_return_probability"][ok] = bg.probability_of_purchase(t, x[ok], t_x[ok], T[ok])
    if fits.purchases is not None:
        bg = btyd.BetaGeoModel.from_dict(fits.purchases)
        x, t_x, T, value = purchase_rfm(frame)
        ok = np.isfinite(x) & np.isfinite(T)
        out["btyd_alive_probability"][ok] = bg.probability_alive(x[ok], t_x[ok], T[ok])
        out["btyd_purchase_probability"][ok] = bg.probability_of_purchase(t, x[ok], t_x[ok], T[ok])
        expected = bg.expected_purchases(t, x[ok], t_x[ok], T[ok])
        out["btyd_expected_purchases"][ok] = expected
        if fits.spend is not None:
            gg = btyd.GammaGammaModel.from_dict(fits.spend)
            v = np.where(np.isfinite(value[ok]), value[ok], np.nan)
            out["btyd_expected_spend"][ok] = expected * gg.conditional_expected_value(x[ok], v)
    return out


def add_features(features: pl.DataFrame, act: Any, as_of: date, horizon_days: int) -> pl.DataFrame:
    """``features`` (all users as of ``as_of``) with the buy-till-you-die columns for this horizon, from models
    fitted on data up to ``as_of`` only."""
    if features.is_empty():
        return features
    preds = _predictions(fits_for(act, as_of, features), features, horizon_days)
    return features.with_columns(
        [pl.Series(k, np.where(np.isfinite(v), v, np.nan)).fill_nan(None) for k, v in preds.items()]
    )


# --------------------------------------------------------------------------------------------- the candidate


@dataclass
class BtydPredictor:
    """A fitted buy-till-you-die model as a candidate: reads its inputs from the feature frame and scores
    ``output`` over ``horizon_days`` with fixed parameters (those fitted on the training data).

    ``output``: ``no_return`` (churn: no active day in the horizon), ``buys`` (at least one purchase day),
    ``spend`` (expected revenue). Users without the history a model needs (never bought) score 0 spend, or the
    population's chance for a new user."""

    output: str
    horizon_days: int
    bg: dict
    gg: dict | None = None
    reference: dict[str, float] = field(default_factory=dict)  # input -> median, for contributions

    @property
    def feature_names(self) -> list[str]:
        return list(ACTIVITY_INPUTS if self.output == "no_return" else PURCHASE_INPUTS)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        t = self.horizon_days / UNIT_DAYS
        bg = btyd.BetaGeoModel.from_dict(self.bg)
        if self.output == "no_return":
            x, t_x, T = activity_rfm(frame)
        else:
            x, t_x, T, value = purchase_rfm(frame)
        ok = np.isfinite(x) & np.isfinite(T) & np.isfinite(t_x)
        out = np.zeros(frame.height)
        if self.output == "no_return":
            out[~ok] = 1.0
            out[ok] = 1.0 - bg.probability_of_purchase(t, x[ok], t_x[ok], T[ok])
        elif self.output == "buys":
            out[ok] = bg.probability_of_purchase(t, x[ok], t_x[ok], T[ok])
        else:
            gg = btyd.GammaGammaModel.from_dict(self.gg)
            out[ok] = bg.expected_purchases(t, x[ok], t_x[ok], T[ok]) * gg.conditional_expected_value(x[ok], value[ok])
        # a hypergeometric term can overflow for extreme parameters: such a user scores as one without history
        return np.clip(np.nan_to_num(out, nan=1.0 if self.output == "no_return" else 0.0, posinf=0.0), 0.0, None)

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """Per input: the score minus the score with that input at the population's median (0 for the other
        features of the frame, which this model does not read)."""
        base = self.predict(frame)
        cols = list(frame.columns)
        out = np.zeros((frame.height, len(cols)))
        for name in self.feature_names:
            if name not in cols or name not in self.reference:
                continue
            moved = frame.with_columns(
                pl.when(pl.col(name).is_not_null())
                .then(pl.lit(self.reference[name]))
                .otherwise(pl.col(name))
                .cast(frame.schema[name])
                .alias(name)
            )
            out[:, cols.index(name)] = base - self.predict(moved)
        return out

    def to_dict(self) -> dict:
        return {
            "output": self.output,
            "horizon_days": self.horizon_days,
            "bg": self.bg,
            "gg": self.gg,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, d: dict) -> BtydPredictor:
        return cls(d["output"], int(d["horizon_days"]), d["bg"], d.get("gg"), dict(d.get("reference") or {}))


def candidate_output(
    model_name: str, kind: str, use_churn_event: bool = False, population: str | None = None
) -> str | None:
    """Which buy-till-you-die output answers a model, or None when none does (conversion and goal ask about a
    first event, which a model of repeat transactions cannot say; "buys again" it can)."""
    if model_name == "churn" and not use_churn_event:
        return "no_return"
    if model_name == "conversion" and population == "repeat_buyers":
        return "buys"
    if kind == "ltv":
        return "spend"
    return None


def fit_candidate(output: str, horizon_days: int, fits: Fits, frame: pl.DataFrame) -> BtydPredictor:
    """The candidate with the parameters of ``fits`` (fitted on the training data up to its latest as-of date);
    ``frame`` (that date's users) gives the medians its explanations compare with."""
    bg = fits.activity if output == "no_return" else fits.purchases
    if bg is None or (output == "spend" and fits.spend is None):
        raise ValueError("; ".join(fits.notes) or "no buy-till-you-die fit")
    names = list(ACTIVITY_INPUTS if output == "no_return" else PURCHASE_INPUTS)
    reference = {n: float(np.nanmedian(v)) for n in names if np.isfinite(v := _col(frame, n)).any()}
    return BtydPredictor(output, horizon_days, bg, fits.spend if output == "spend" else None, reference)
