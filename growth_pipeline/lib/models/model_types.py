"""The shapes passed between training, tracking (MLflow), explanations and scoring. No Dagster import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl

ModelKind = Literal["classifier", "ltv"]


@dataclass(frozen=True)
class SplitDates:
    """As-of dates of a time-based split: train on earlier snapshots, validate on a later one, test on the
    latest one whose label window has matured. No training or validation label window reaches past the
    test as-of date, so no label window of the test set overlaps the training data."""

    train: tuple[date, ...]
    valid: date  # the latest validation as-of date
    test: date
    valid_extra: tuple[date, ...] = ()  # earlier validation snapshots (more rows for early stopping)
    step_days: int = 7  # days between snapshots (fewer than 7 for a short history)
    shift_start: date | None = None  # a drift retrain's split: when the shift began (training includes it)

    @property
    def valid_all(self) -> tuple[date, ...]:
        return tuple(sorted((*self.valid_extra, self.valid)))

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": [d.isoformat() for d in self.train],
            "valid": self.valid.isoformat(),
            "valid_all": [d.isoformat() for d in self.valid_all],
            "test": self.test.isoformat(),
            "step_days": self.step_days,
            **({"shift_start": self.shift_start.isoformat()} if self.shift_start is not None else {}),
        }


@dataclass
class TrainedModel:
    """Everything a training step produced for one customer and model, before it is logged."""

    customer: str
    model_name: str  # churn | conversion | goal | ltv
    kind: ModelKind
    model: Any  # the serving family's estimator: CatBoost model, candidates.LinearModel or
    # purchase_models.BtydPredictor
    feature_names: list[str]  # column order the model expects
    cat_features: list[str]  # the categorical ones among them (strings, never null)
    calibrator: Any | None  # growth_pipeline.lib.models.calibration.Calibrator: probabilities for
    # classifiers, a total-matching scale for ltv
    label_definition: dict[str, Any]  # the label as configured (kind, horizon_days, population, ...)
    catboost_params: dict[str, Any]  # every CatBoost parameter (get_all_params() and the ones set explicitly)
    split: SplitDates
    metrics: dict[str, float]  # flat names, same in every run: "<who>.<metric>", who in model (the
    # candidate serving) | catboost | logistic | linear | btyd |
    # historical_average | rule | champion | oracle; "<who>.<m>_lo90/_hi90"
    # bootstrap intervals; "valid.<family>.<primary>" chooses who serves
    rows: dict[str, int]  # rows per split: train, valid, test, and positives where relevant
    test_frame: pl.DataFrame  # user_key, label, then feature_names (the test set as scored)
    test_predictions: dict[str, np.ndarray] = field(default_factory=dict)  # "model", "logistic", "rule: recency"
    importance: pl.DataFrame | None = None  # feature, importance (CatBoost PredictionValuesChange)
    shap_values: np.ndarray | None = None  # test rows x features (CatBoost ShapValues, last column dropped)
    charts: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes
    reasons: pl.DataFrame | None = None  # user_key, score, label, reason_1..3 for the SHAP rows of the test set
    notes: list[str] = field(default_factory=list)
    family: str = "catboost"  # which candidate family serves: catboost | logistic | linear | btyd
    family_params: dict[str, Any] = field(default_factory=dict)  # the serving family's parameters (not CatBoost)
    weights: bool = False  # training rows weighted (every user the same total, and/or post-drift rows more)
    weighting: dict[str, Any] = field(default_factory=dict)  # how (split.user_weights): logged to MLflow

    @property
    def primary_metric(self) -> str:
        return "roc_auc" if self.kind == "classifier" else "normalized_gini"

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability (classifiers) or predicted value (ltv) for rows of ``frame``."""
        from growth_pipeline.lib.models.candidates import predict

        return predict(
            self.family, self.kind, self.model, self.feature_names, self.cat_features, self.calibrator, frame
        )


def model_input(frame: pl.DataFrame, feature_names: list[str], cat_features: list[str]) -> pl.DataFrame:
    """The columns a model expects, in order; a missing column (a feature the model knew that today's data
    lacks) is added empty, categorical nulls become the string "missing" (CatBoost refuses null categories)."""
    cols = []
    for name in feature_names:
        if name in frame.columns:
            col = pl.col(name)
        else:
            col = pl.lit(None)
        if name in cat_features:
            cols.append(col.cast(pl.Utf8).fill_null("missing").alias(name))
        else:
            cols.append(col.cast(pl.Float64).alias(name))
    return frame.select(cols)
