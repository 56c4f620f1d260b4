"""Daily scoring with the champion models: calibrated probability (or predicted value), percentile, band and the
top 3 reasons for every user of each model's population, revenue at risk, and the atomic export of the result.
No Dagster import: the ``user_scores`` asset calls these.

The scores of one customer and day are one long table (one row per user and model), the shape of
``marts.user_scores``::

    day, model, user_key, score, percentile, band, reason_1, reason_2, reason_3,
    registered_model, model_version, model_family, revenue_at_risk, scored_at
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import polars as pl

from growth_pipeline.lib.files import atomic_write
from growth_pipeline.lib.models.labels import LabelSpec, population
from growth_pipeline.lib.scoring.explain import reasons_frame, top_reasons
from growth_pipeline.lib.warehouse.sql import replace_day

SCORE_COLUMNS = [
    "day",
    "model",
    "user_key",
    "score",
    "percentile",
    "band",
    "reason_1",
    "reason_2",
    "reason_3",
    "registered_model",
    "model_version",
    "model_family",
    "revenue_at_risk",
    "scored_at",
]
SCORE_SCHEMA = {
    "day": pl.Date,
    "model": pl.Utf8,
    "user_key": pl.Utf8,
    "score": pl.Float64,
    "percentile": pl.Float64,
    "band": pl.Utf8,
    "reason_1": pl.Utf8,
    "reason_2": pl.Utf8,
    "reason_3": pl.Utf8,
    "registered_model": pl.Utf8,
    "model_version": pl.Utf8,
    "model_family": pl.Utf8,
    "revenue_at_risk": pl.Float64,
    "scored_at": pl.Datetime("us", "UTC"),
}


class ScoringModel(Protocol):
    """What scoring needs of a model (``registry.LoadedModel`` is one)."""

    registered_name: str
    version: str
    kind: str
    family: str
    model: Any
    feature_names: list[str]
    cat_features: list[str]

    def predict(self, frame: pl.DataFrame) -> np.ndarray: ...

    def contributions(self, frame: pl.DataFrame, thread_count: int = 2) -> np.ndarray: ...


@dataclass(frozen=True)
class Bands:
    high_percentile: float = 90.0  # percentile above this: "high" (the top 10%)
    medium_percentile: float = 70.0  # above this: "medium" (the next 20%); the rest: "low"


def percentiles(score: np.ndarray) -> np.ndarray:
    """Percentile of each score within the population, 0-100: the share of users scored at or below it (ties
    share the higher rank, so equal scores get equal percentiles and the top user gets 100)."""
    score = np.asarray(score, dtype=np.float64)
    n = len(score)
    if n == 0:
        return np.empty(0)
    order = np.sort(score)
    at_or_below = np.searchsorted(order, score, side="right")
    return 100.0 * at_or_below / n


def bands(pct: np.ndarray, b: Bands) -> np.ndarray:
    return np.where(pct > b.high_percentile, "high", np.where(pct > b.medium_percentile, "medium", "low"))


def score_model(
    name: str,
    model: ScoringModel,
    features: pl.DataFrame,
    spec: LabelSpec,
    day: date,
    *,
    labels: dict[str, str] | None = None,
    band_limits: Bands = Bands(),
    thread_count: int = 2,
    scored_at: datetime | None = None,
) -> pl.DataFrame:
    """Score the model's population of ``features`` (one as-of date): one row per user, in the
    ``marts.user_scores`` shape (``revenue_at_risk`` still empty; :func:`combine` fills it)."""
    pop = population(features, spec)
    scored_at = scored_at or datetime.now(UTC)
    if pop.is_empty():
        return pl.DataFrame(schema=SCORE_SCHEMA)
    score = model.predict(pop)
    pct = percentiles(score)
    contrib = model.contributions(pop, thread_count=thread_count)
    # Reasons explain the raw model score (SHAP, or the linear or buy-till-you-die contributions); calibration is
    # monotone, so the features that push the raw score up push the calibrated probability up too.
    reasons = reasons_frame(pop["user_key"], top_reasons(contrib, pop, model.feature_names, labels=labels, k=3))
    return pl.DataFrame(
        {
            "day": pl.Series([day] * pop.height, dtype=pl.Date),
            "model": pl.Series([name] * pop.height, dtype=pl.Utf8),
            "user_key": pop["user_key"].cast(pl.Utf8),
            "score": pl.Series(np.asarray(score, dtype=np.float64)),
            "percentile": pl.Series(pct),
            "band": pl.Series(bands(pct, band_limits)),
            "reason_1": reasons["reason_1"],
            "reason_2": reasons["reason_2"],
            "reason_3": reasons["reason_3"],
            "registered_model": pl.Series([model.registered_name] * pop.height, dtype=pl.Utf8),
            "model_version": pl.Series([str(model.version)] * pop.height, dtype=pl.Utf8),
            "model_family": pl.Series([model.family] * pop.height, dtype=pl.Utf8),
            "revenue_at_risk": pl.Series([None] * pop.height, dtype=pl.Float64),
            "scored_at": pl.Series([scored_at] * pop.height).cast(pl.Datetime("us", "UTC")),
        }
    ).select(SCORE_COLUMNS)


def combine(per_model: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """All models' scores of one day in one table, with revenue at risk = probability of churn x predicted ltv
    on every row of a user who has both (null otherwise)."""
    frames = [f.select(SCORE_COLUMNS).cast(SCORE_SCHEMA) for f in per_model if f is not None and f.height]
    if not frames:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    scores = pl.concat(frames, how="vertical")
    churn = scores.filter(pl.col("model") == "churn").select("user_key", pl.col("score").alias("_p_churn"))
    ltv = scores.filter(pl.col("model") == "ltv").select("user_key", pl.col("score").alias("_ltv"))
    risk = churn.join(ltv, on="user_key", how="inner").select(
        "user_key", (pl.col("_p_churn") * pl.col("_ltv")).alias("_risk")
    )
    return (
        scores.join(risk, on="user_key", how="left")
        .with_columns(pl.col("_risk").alias("revenue_at_risk"))
        .drop("_risk")
        .select(SCORE_COLUMNS)
        .sort("model", "score", descending=[False, True])
    )


def summary(scores: pl.DataFrame) -> pl.DataFrame:
    """Per model: users scored, mean score, users per band, model version (for metadata and reports)."""
    if scores.is_empty():
        return pl.DataFrame(schema={"model": pl.Utf8, "users": pl.UInt32})
    return (
        scores.group_by("model")
        .agg(
            pl.len().alias("users"),
            pl.col("score").mean().alias("mean_score"),
            (pl.col("band") == "high").sum().alias("high"),
            (pl.col("band") == "medium").sum().alias("medium"),
            (pl.col("band") == "low").sum().alias("low"),
            pl.col("model_version").first().alias("model_version"),
        )
        .sort("model")
    )


def store_scores(con: duckdb.DuckDBPyConnection, scores: pl.DataFrame, day: date) -> None:
    """Replace day ``day`` of ``marts.user_scores`` with ``scores`` (one transaction; the tables made first)."""
    replace_day(con, "user_scores_replace", day, {"frame": scores}, schema="scores_schema")


def export_scores(scores: pl.DataFrame, folder: Path, day: date) -> dict[str, Path]:
    """Publish one day's scores as ``user_scores_<day>.parquet`` and ``.csv`` in ``folder``, and the same content
    as ``user_scores_latest.*`` when ``day`` is the newest day published there. Each file is written
    atomically; re-running a day replaces its files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    stem = f"user_scores_{day.isoformat()}"
    for ext, write in (("parquet", lambda p: scores.write_parquet(p)), ("csv", lambda p: scores.write_csv(p))):
        path = folder / f"{stem}.{ext}"
        atomic_write(path, write)
        out[ext] = path
    published = sorted(p.stem.removeprefix("user_scores_") for p in folder.glob("user_scores_????-??-??.parquet"))
    if published and published[-1] == day.isoformat():
        for ext, write in (("parquet", lambda p: scores.write_parquet(p)), ("csv", lambda p: scores.write_csv(p))):
            path = folder / f"user_scores_latest.{ext}"
            atomic_write(path, write)
            out[f"latest_{ext}"] = path
    return out


def score_day(
    features: pl.DataFrame | Callable[[LabelSpec], pl.DataFrame],
    specs: dict[str, LabelSpec],
    champions: dict[str, ScoringModel],
    day: date,
    *,
    labels: dict[str, str] | None = None,
    band_limits: Bands = Bands(),
    thread_count: int = 2,
) -> pl.DataFrame:
    """Every model that has a champion, scored on its population of the feature frame as of ``day`` (the frame,
    or a function giving each model's frame, e.g. ``training.model_features``), combined with revenue at risk."""
    scored_at = datetime.now(UTC)
    frame_of = features if callable(features) else (lambda spec: features)
    frames = [
        score_model(
            name,
            champions[name],
            frame_of(spec),
            spec,
            day,
            labels=labels,
            band_limits=band_limits,
            thread_count=thread_count,
            scored_at=scored_at,
        )
        for name, spec in specs.items()
        if name in champions
    ]
    return combine(frames)
