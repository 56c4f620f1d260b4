"""The model families that may serve a model, behind one interface: fit, predict, explain. No Dagster, no MLflow.

Every model (churn, conversion, goal, ltv) is fitted as several *candidates* on the same training rows:

* ``catboost``: gradient-boosted trees on every feature, early stopping on the validation set;
* ``logistic`` (classifiers) / ``linear`` (ltv): a regularised linear model on the same features, numbers
  signed-log transformed and scaled, categories one-hot encoded;
* ``btyd``: a buy-till-you-die model (BG/NBD, with Gamma-Gamma for spend) on the user's history of active or
  purchase days; see :mod:`growth_pipeline.lib.models.purchase_models`.

Whichever serves, scoring needs the same three things, given here for each family:

* :func:`raw_scores`: the uncalibrated probability (classifiers) or value (ltv);
* :func:`contributions`: rows x features, how much each feature moves the user's score away from the typical
  user, in the family's own raw space (CatBoost: exact tree SHAP in log-odds; linear: coefficient x (transformed
  value - its training mean), summed over the columns one feature expands to; btyd: the change in score when the
  feature is set to the population's median). Reasons in words rank these.
* the calibrator (fitted by the training step) maps raw scores to published ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from growth_pipeline.lib.models.model_types import ModelKind, model_input

FAMILIES = ("catboost", "logistic", "linear", "btyd")
LINEAR_FAMILY = {"classifier": "logistic", "ltv": "linear"}


def finite_or_nan(a: np.ndarray) -> np.ndarray:
    """Infinities as missing values: a ratio or a customer's numeric property can be infinite, and a linear
    model cannot use it (CatBoost can)."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def signed_log1p(a: np.ndarray) -> np.ndarray:
    """sign(a) * log(1 + |a|): counts and revenue are heavy-tailed; a linear model wants them compressed.
    A module-level function, so a fitted pipeline pickles by reference."""
    return np.sign(a) * np.log1p(np.abs(a))


# ------------------------------------------------------------------------------------------------------ linear


@dataclass
class LinearModel:
    """A scikit-learn pipeline (preprocessing, then LogisticRegression or Ridge) with what its explanations need:
    which original feature each transformed column belongs to, and the transformed columns' training means."""

    pipeline: Any
    owner: np.ndarray  # transformed column -> index into feature_names
    reference: np.ndarray  # transformed columns' means on the training rows

    @property
    def coef(self) -> np.ndarray:
        return np.asarray(self.pipeline.named_steps["model"].coef_, dtype=np.float64).ravel()


def _linear_pipeline(kind: ModelKind, nums: list[str], cats: list[str], seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    steps = [
        (
            "num",
            Pipeline(
                [
                    ("finite", FunctionTransformer(finite_or_nan)),
                    ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                    ("log", FunctionTransformer(signed_log1p)),
                    ("scale", StandardScaler()),
                ]
            ),
            nums,
        )
    ]
    # one encoder per categorical feature: its output columns are then known to belong to that feature
    steps += [
        (f"cat{i}", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False), [c])
        for i, c in enumerate(cats)
    ]
    est = LogisticRegression(max_iter=3000, C=1.0, random_state=seed) if kind == "classifier" else Ridge(alpha=1.0)
    return Pipeline([("prep", ColumnTransformer(steps, sparse_threshold=0.0)), ("model", est)])


def fit_linear(
    kind: ModelKind,
    feature_names: list[str],
    cat_features: list[str],
    x,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    seed: int = 0,
) -> LinearModel:
    nums = [f for f in feature_names if f not in cat_features]
    pipe = _linear_pipeline(kind, nums, list(cat_features), seed)
    pipe.fit(x, y, model__sample_weight=weights)
    prep = pipe.named_steps["prep"]
    index = {f: i for i, f in enumerate(feature_names)}
    width = sum(s.stop - s.start for s in prep.output_indices_.values())
    owner = np.full(width, -1, dtype=np.int64)
    num_slice = prep.output_indices_["num"]
    imputer = prep.named_transformers_["num"].named_steps["impute"]
    missing_flags = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
    num_owner = [index[f] for f in nums] + [index[nums[i]] for i in missing_flags]
    owner[num_slice] = num_owner
    for i, c in enumerate(cat_features):
        owner[prep.output_indices_[f"cat{i}"]] = index[c]
    z = prep.transform(x)
    return LinearModel(pipeline=pipe, owner=owner, reference=np.asarray(z, dtype=np.float64).mean(axis=0))


def _linear_contributions(m: LinearModel, x, n_features: int) -> np.ndarray:
    z = np.asarray(m.pipeline.named_steps["prep"].transform(x), dtype=np.float64)
    per_column = (z - m.reference) * m.coef
    out = np.zeros((z.shape[0], n_features))
    np.add.at(out.T, m.owner, per_column.T)  # sum the columns of each original feature
    return out


# ---------------------------------------------------------------------------------------------------- catboost


def fit_catboost(
    kind: ModelKind, params: dict, x_tr, y_tr, x_va, y_va, cats: list[str], w_tr: np.ndarray | None = None
):
    from catboost import CatBoostClassifier, CatBoostRegressor, Pool

    cls = CatBoostClassifier if kind == "classifier" else CatBoostRegressor
    model = cls(**params)
    model.fit(Pool(x_tr, y_tr, cat_features=cats, weight=w_tr), eval_set=Pool(x_va, y_va, cat_features=cats))
    return model


# -------------------------------------------------------------------------------------------- the interface


def raw_scores(
    family: str, kind: ModelKind, estimator: Any, feature_names: list[str], cat_features: list[str], frame: pl.DataFrame
) -> np.ndarray:
    """Uncalibrated probability of the positive class, or predicted value (never below 0), for rows of ``frame``."""
    x = model_input(frame, feature_names, cat_features)
    if family == "btyd":
        return np.asarray(estimator.predict(x), dtype=np.float64)
    x = x.to_pandas()
    if family not in ("catboost", "logistic", "linear"):
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    est = estimator.pipeline if isinstance(estimator, LinearModel) else estimator
    if kind == "classifier":
        return np.asarray(est.predict_proba(x)[:, 1], dtype=np.float64)
    return np.clip(np.asarray(est.predict(x), dtype=np.float64), 0.0, None)


def predict(
    family: str,
    kind: ModelKind,
    estimator: Any,
    feature_names: list[str],
    cat_features: list[str],
    calibrator: Any | None,
    frame: pl.DataFrame,
) -> np.ndarray:
    """The published score: the raw score through the calibrator."""
    raw = raw_scores(family, kind, estimator, feature_names, cat_features, frame)
    return calibrator.transform(raw) if calibrator is not None else raw


def contributions(
    family: str,
    kind: ModelKind,
    estimator: Any,
    feature_names: list[str],
    cat_features: list[str],
    frame: pl.DataFrame,
    *,
    thread_count: int = 2,
) -> np.ndarray:
    """Rows x ``feature_names``: how much each feature pushes each row's score up (see the module docstring)."""
    if frame.height == 0:
        return np.zeros((0, len(feature_names)))
    if family == "catboost":
        from growth_pipeline.lib.scoring.explain import shap_matrix

        return shap_matrix(estimator, frame, feature_names, cat_features, thread_count=thread_count)
    x = model_input(frame, feature_names, cat_features)
    if family in ("logistic", "linear"):
        return _linear_contributions(estimator, x.to_pandas(), len(feature_names))
    if family == "btyd":
        return estimator.contributions(x)
    raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")


def describe_family(family: str, kind: ModelKind) -> str:
    """The family in words, for tags, metadata and the report."""
    return {
        "catboost": "CatBoost (gradient-boosted trees)",
        "logistic": "logistic regression",
        "linear": "ridge regression",
        "btyd": "BG/NBD + Gamma-Gamma (buy till you die)" if kind == "ltv" else "BG/NBD (buy till you die)",
    }.get(family, family)
