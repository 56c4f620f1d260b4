"""The time split of one model's training: the as-of dates of the training, validation and test snapshots
(:func:`split_dates`, normal or after a drift), the users held out for validation, and the row weights (short
histories: one user weighs the same whatever their number of snapshots; a drift retrain: post-drift rows weigh
more). No Dagster, no MLflow. How the split is used: :mod:`growth_pipeline.lib.models.training`.
"""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import numpy as np
import polars as pl

from growth_pipeline.lib.models.labels import LabelSpec
from growth_pipeline.lib.models.model_types import SplitDates

MIN_HISTORY_DAYS = 28  # a snapshot needs this much history before its as-of date for 28-day features
VALID_USER_SHARE = 0.25  # users held out of training to validate on (see validation_users)
MIN_TRAIN_SNAPSHOTS = 8  # fewer weekly training snapshots than this: snapshots come closer together
POST_DRIFT_WEIGHT = 3.0  # a drift retrain: weight of a post-drift training row relative to a pre-drift one


class NotEnoughData(Exception):
    """Too little history, or too few positives or negatives, for a model worth having."""


class DriftSplitTooEarly(NotEnoughData):
    """A drift retrain asked before any post-drift training snapshot has matured labels (says when it can)."""


def split_dates(
    first_day: date,
    last_day: date,
    spec: LabelSpec,
    step_days: int = 7,
    max_train: int = 26,
    valid_snapshots: int = 3,
    shift_start: date | None = None,
) -> SplitDates:
    """The as-of dates of the split; with a short history (fewer than MIN_TRAIN_SNAPSHOTS training snapshots at
    ``step_days``), the step shrinks (down to daily) until there are enough or it is one day. ``shift_start``: a
    drift retrain's split (see the module text); None: the normal split."""
    if shift_start is None:
        make = _split_dates
    else:

        def make(first_day, last_day, spec, step_days, max_train, valid_snapshots):
            return _drift_split_dates(first_day, last_day, spec, step_days, max_train, valid_snapshots, shift_start)

    split = make(first_day, last_day, spec, step_days, max_train, valid_snapshots)
    step = step_days
    while len(split.train) < min(MIN_TRAIN_SNAPSHOTS, max_train) and step > 1:
        step = max(1, step // 2)
        split = make(first_day, last_day, spec, step, max_train, valid_snapshots)
    return split


def _drift_split_dates(
    first_day: date,
    last_day: date,
    spec: LabelSpec,
    step_days: int,
    max_train: int,
    valid_snapshots: int,
    shift_start: date,
) -> SplitDates:
    """A drift retrain's as-of dates: test on the latest matured snapshot; train on snapshots back from the latest
    one whose label window ends on the test date (so the newest, post-drift ones train); validate on the most
    recent of those (held-out users). Raises NotEnoughData when no training snapshot is post-drift yet."""
    h = timedelta(days=spec.horizon_days)
    step = timedelta(days=step_days)
    test = last_day - h
    latest = test - h  # its label window ends on the test as-of date
    earliest = first_day + timedelta(days=MIN_HISTORY_DAYS)
    if latest < max(shift_start, earliest):
        ready = max(shift_start, earliest) + 2 * h
        raise DriftSplitTooEarly(
            f"{spec.model}: a drift retrain needs a post-drift training snapshot (as of {shift_start} or later) "
            f"whose {spec.horizon_days}-day labels have matured before a post-drift test snapshot's: data up to "
            f"{ready}; the data ends on {last_day}"
        )
    train = []
    d = latest
    while d >= earliest and len(train) < max_train:
        train.append(d)
        d -= step
    recent = sorted(train)[-max(1, valid_snapshots) :]
    return SplitDates(
        train=tuple(sorted(train)),
        valid=recent[-1],
        test=test,
        valid_extra=tuple(recent[:-1]),
        step_days=step_days,
        shift_start=shift_start,
    )


def _split_dates(
    first_day: date, last_day: date, spec: LabelSpec, step_days: int, max_train: int, valid_snapshots: int
) -> SplitDates:
    h = timedelta(days=spec.horizon_days)
    step = timedelta(days=step_days)
    test = last_day - h
    valid = test - h
    earliest = first_day + timedelta(days=MIN_HISTORY_DAYS)
    # validation: the latest snapshot whose window ends on the test date, and a few weekly ones before it
    valid_extra = tuple(d for k in range(1, valid_snapshots) if (d := valid - k * step) >= earliest)
    train = []
    d = (min(valid_extra) if valid_extra else valid) - step
    while d >= earliest and len(train) < max_train:
        train.append(d)
        d -= step
    if not train:
        need = MIN_HISTORY_DAYS + 2 * spec.horizon_days + valid_snapshots * step_days
        have = (last_day - first_day).days + 1
        raise NotEnoughData(
            f"{spec.model}: a {spec.horizon_days}-day horizon needs at least {need} days of data "
            f"(history, training, validation and test windows); there are {have}"
        )
    return SplitDates(
        train=tuple(sorted(train)), valid=valid, test=test, valid_extra=tuple(sorted(valid_extra)), step_days=step_days
    )


def validation_users(user_keys: pl.Series, share: float = VALID_USER_SHARE) -> pl.Series:
    """The users whose rows validate (and never train): a fixed ``share`` of users chosen by a stable hash of
    their key. Training and validation label windows overlap in time, so with the same users on both sides a
    flexible model learns who a user is and looks better on validation than it will be (on the retail benchmark
    CatBoost's validation ROC-AUC was 0.923 with a test ROC-AUC of 0.852, and it was chosen over a logistic
    regression that scored 0.879 on test); users it has never seen make early stopping, calibration and the
    choice of the candidate to serve honest."""
    keys = user_keys.cast(pl.Utf8).to_list()
    cut = int(share * 2**32)
    return pl.Series("user_key", [k for k in keys if zlib.crc32(k.encode()) < cut], dtype=pl.Utf8)


def user_weights(
    frame: pl.DataFrame,
    *,
    per_user: bool = True,
    shift_start: date | None = None,
    post_drift_weight: float = POST_DRIFT_WEIGHT,
) -> np.ndarray:
    """The training rows' weights, scaled to mean 1. ``per_user``: one over the number of snapshots each row's
    user appears in, so every user weighs the same in total, however many as-of dates they were in the
    population. ``shift_start`` (a drift retrain): rows as of ``shift_start`` or later weigh ``post_drift_weight``
    times as much as earlier ones (``frame`` needs ``as_of``)."""
    w = np.ones(frame.height)
    if per_user:
        per = frame.group_by("user_key").agg(pl.len().alias("_n"))
        n = frame.select("user_key").join(per, on="user_key", how="left", maintain_order="left")["_n"].to_numpy()
        w = w / n
    if shift_start is not None:
        w = w * np.where((frame["as_of"] >= shift_start).to_numpy(), post_drift_weight, 1.0)
    return w / w.mean()


def weighting_summary(frame: pl.DataFrame, weights: np.ndarray, shift_start: date | None, per_user: bool) -> dict:
    """What :func:`user_weights` did, for the run's parameters and metrics (see run_logging)."""
    out: dict = {"per_user": per_user}
    if shift_start is not None:
        post = (frame["as_of"] >= shift_start).to_numpy()
        out.update(
            shift_start=shift_start.isoformat(),
            post_drift_weight=POST_DRIFT_WEIGHT,
            post_drift_rows=int(post.sum()),
            post_drift_weight_share=float(weights[post].sum() / weights.sum()) if weights.sum() > 0 else 0.0,
            post_drift_mean_weight=float(weights[post].mean()) if post.any() else 0.0,
            pre_drift_mean_weight=float(weights[~post].mean()) if (~post).any() else 0.0,
        )
    return out
