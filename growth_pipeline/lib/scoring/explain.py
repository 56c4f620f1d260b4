"""Explanations of model scores: SHAP values, global importance and each user's top reasons in plain words.

No Dagster import.

* :func:`shap_matrix`: per-row, per-feature contributions from CatBoost's own exact tree SHAP
  (``get_feature_importance(type="ShapValues")``), with the expected-value column dropped. They are in the model's
  *raw* space: log-odds for a ``CatBoostClassifier`` (so a row's contributions plus the expected value equal
  ``predict(x, prediction_type="RawFormulaVal")``), the raw formula value for a ``CatBoostRegressor`` (the
  prediction itself for RMSE, its log for Poisson / Tweedie losses).
* :func:`global_importance`: mean absolute SHAP per feature and its share of the total, largest first.
* :func:`top_reasons`: for every row, the ``k`` features that push its score up the most, described in words
  by :func:`growth_pipeline.lib.scoring.phrases.describe`.
* :func:`reasons_frame`: those reasons next to the user keys, one column per reason.

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl

from growth_pipeline.lib.models.model_types import model_input
from growth_pipeline.lib.scoring.phrases import describe

SHAP_CHUNK_ROWS = 200_000
REASONS_CHUNK_ROWS = 100_000


# ------------------------------------------------------------------------------------------------------- SHAP


def shap_matrix(
    model: Any,
    frame: pl.DataFrame,
    feature_names: Sequence[str],
    cat_features: Sequence[str],
    *,
    thread_count: int = -1,
    chunk_rows: int = SHAP_CHUNK_ROWS,
) -> np.ndarray:
    """SHAP values of ``model`` for the rows of ``frame``: a float64 array of rows x ``feature_names``.

    The model's input is built with :func:`~growth_pipeline.lib.models.model_types.model_input` (same column order,
    absent columns empty, categorical nulls as ``"missing"``), so ``frame`` may hold extra columns. Rows are
    processed ``chunk_rows`` at a time to bound memory (CatBoost's own matrix is rows x (features + 1) doubles
    plus the pandas copy of the chunk). Works for binary classifiers and single-output regressors.
    """
    from catboost import Pool

    names = list(feature_names)
    cats = [c for c in names if c in set(cat_features)]
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    n = frame.height
    out = np.empty((n, len(names)), dtype=np.float64)
    for start in range(0, n, chunk_rows):
        x = model_input(frame.slice(start, chunk_rows), names, cats).to_pandas()
        pool = Pool(x, cat_features=cats or None)
        sv = np.asarray(model.get_feature_importance(data=pool, type="ShapValues", thread_count=thread_count))
        if sv.ndim != 2 or sv.shape[1] != len(names) + 1:
            raise ValueError(
                f"expected SHAP values of shape (rows, {len(names) + 1}), got {sv.shape}: only binary "
                "classifiers and single-output regressors are supported"
            )
        out[start : start + len(x)] = sv[:, :-1]
    return out


def global_importance(shap: np.ndarray, feature_names: Sequence[str]) -> pl.DataFrame:
    """Mean absolute SHAP value per feature and its share of the sum over features, sorted largest first
    (ties by feature name). With no rows, every feature has 0 and share 0."""
    names = list(feature_names)
    shap = np.asarray(shap, dtype=np.float64)
    if shap.ndim != 2 or shap.shape[1] != len(names):
        raise ValueError(f"shap has shape {shap.shape}, expected (rows, {len(names)})")
    mean_abs = np.abs(shap).mean(axis=0) if shap.shape[0] else np.zeros(len(names))
    total = float(mean_abs.sum())
    share = mean_abs / total if total > 0 else np.zeros(len(names))
    return pl.DataFrame(
        {"feature": names, "mean_abs_shap": mean_abs, "share": share},
        schema={"feature": pl.Utf8, "mean_abs_shap": pl.Float64, "share": pl.Float64},
    ).sort(["mean_abs_shap", "feature"], descending=[True, False])


# ---------------------------------------------------------------------------------------------------- reasons


def _rank_keys(s: np.ndarray) -> np.ndarray:
    """Sort keys, larger first: positive contributions by size, then the rest by magnitude.

    Positives keep their value (> 0); non-positives map to ``-1 / (1 + |s|)``, which is negative and increases
    with ``|s|``, so every positive outranks every non-positive. NaN ranks last."""
    with np.errstate(invalid="ignore"):
        key = np.where(s > 0, s, -1.0 / (1.0 + np.abs(s)))
    key[np.isnan(key)] = -np.inf
    return key


def _column_values(frame: pl.DataFrame, feature: str, rows: np.ndarray) -> np.ndarray:
    """The values of ``feature`` at ``rows`` as a numpy array (numbers as float64 with NaN for null, anything
    else as Python objects with None for null); an absent column gives all None."""
    if feature not in frame.columns:
        return np.full(len(rows), None, dtype=object)
    s = frame.get_column(feature)
    idx = pl.Series(rows, dtype=pl.UInt32 if frame.height < 2**32 else pl.UInt64)
    if s.dtype.is_numeric() or s.dtype == pl.Boolean:
        return s.gather(idx).cast(pl.Float64).to_numpy()
    return np.array(s.gather(idx).cast(pl.Utf8, strict=False).to_list(), dtype=object)


def top_reasons(
    shap: np.ndarray,
    frame: pl.DataFrame,
    feature_names: Sequence[str],
    labels: dict[str, str] | None = None,
    k: int = 3,
    direction: Literal["up", "down"] = "up",
) -> list[list[str]]:
    """For every row, the ``k`` features that push its score up the most, each described in words.

    ``direction="up"``: the features with the largest positive SHAP contribution (for churn: what makes the user
    risky); ``"down"``: the largest negative ones (what keeps the score low). When a row has fewer than ``k``
    contributions in that direction, the rest are the largest-magnitude remaining ones. Reasons are ordered
    strongest first; a row gets ``min(k, number of features)`` reasons.

    ``frame`` holds the rows' feature values (in the same row order as ``shap``); a feature it lacks is described
    as null. Each phrase is :func:`describe` of the row's value; the phrases are computed once per distinct
    (feature, value) among the chosen cells, so repeated values cost nothing.
    """
    names = list(feature_names)
    shap = np.asarray(shap)
    if shap.ndim != 2 or shap.shape[1] != len(names):
        raise ValueError(f"shap has shape {shap.shape}, expected (rows, {len(names)})")
    n = shap.shape[0]
    if frame.height != n:
        raise ValueError(f"frame has {frame.height} rows but shap has {n}")
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    kk = min(k, len(names))
    if n == 0 or kk == 0:
        return [[] for _ in range(n)]

    # 1. which feature fills each (row, slot): argpartition per chunk of rows, then order the k chosen ones.
    chosen = np.empty((n, kk), dtype=np.int32)
    for start in range(0, n, REASONS_CHUNK_ROWS):
        block = np.asarray(shap[start : start + REASONS_CHUNK_ROWS], dtype=np.float64)
        key = _rank_keys(block if direction == "up" else -block)
        if kk < len(names):
            part = np.argpartition(-key, kk - 1, axis=1)[:, :kk]
        else:
            part = np.broadcast_to(np.arange(len(names)), key.shape).copy()
        order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
        chosen[start : start + len(block)] = np.take_along_axis(part, order, axis=1)

    # 2. describe only the chosen cells, once per distinct value of each feature.
    out = np.empty((n, kk), dtype=object)
    out_flat = out.reshape(-1)  # a view: writing it fills out
    flat = chosen.ravel()
    by_feature = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[by_feature], np.arange(len(names) + 1))
    for j, feature in enumerate(names):
        cells = by_feature[bounds[j] : bounds[j + 1]]
        if len(cells) == 0:
            continue
        rows = cells // kk
        values = _column_values(frame, feature, rows)
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        phrases = np.array([describe(feature, None if _is_null(u) else u, labels) for u in uniques], dtype=object)
        out_flat[cells] = phrases[codes]
    return out.tolist()


def _is_null(u: Any) -> bool:
    return u is None or (isinstance(u, float) and math.isnan(u))


def reasons_frame(
    user_keys: Sequence[Any] | pl.Series | np.ndarray, reasons: Sequence[Sequence[str]], k: int = 3
) -> pl.DataFrame:
    """One row per user: ``user_key``, ``reason_1`` .. ``reason_k`` (null where a user has fewer reasons; extra
    reasons are dropped). The user key keeps its dtype when given as a polars Series."""
    keys = (
        user_keys
        if isinstance(user_keys, pl.Series)
        else pl.Series(list(user_keys) if not isinstance(user_keys, np.ndarray) else user_keys)
    )
    if len(keys) != len(reasons):
        raise ValueError(f"{len(keys)} user keys but {len(reasons)} rows of reasons")
    cols: dict[str, Any] = {"user_key": keys.alias("user_key")}
    for i in range(k):
        cols[f"reason_{i + 1}"] = pl.Series(
            f"reason_{i + 1}", [r[i] if i < len(r) else None for r in reasons], dtype=pl.Utf8
        )
    return pl.DataFrame(list(cols.values()))
