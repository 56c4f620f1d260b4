"""Model monitoring: drift of features and predictions against the champion's reference, and the realised
performance of scores published earlier once their labels have matured. No Dagster import.

Population stability index (PSI) per feature: numeric features are cut at the reference's deciles (nulls are a
bin of their own), categorical ones by value (the reference's 20 most frequent values, the rest "other", nulls
"missing"); PSI = sum((cur - ref) * ln(cur / ref)) over the bins, shares floored at 1e-4. A distribution test
goes with it: two-sample Kolmogorov-Smirnov for numbers, chi-square on the same bins for categories.

A feature is *drifted* when its PSI reaches ``psi_threshold`` AND its test rejects "same distribution" at
``p_value`` / number of features (Bonferroni): PSI alone fires on noise in small populations, a test alone fires
on tiny, harmless shifts in large ones. A model asks for retraining when the drifted features carry at least
``drifted_importance_share`` of its SHAP importance, when any drifted feature it uses shifted severely (PSI at
least ``severe_psi_threshold``: a product or tracking change puts the model outside the world it learned, even
when that feature matters little today), when its scores' PSI reaches ``prediction_psi_threshold``,
or when the realised performance of its published scores falls ``performance_margin`` below its test
performance. Nothing is judged on fewer than ``min_rows`` users.

When a model asks for retraining, ``shift_start`` records when its drift episode began and the request waits
until post-drift data can train and test a retrain (growth_pipeline.lib.automation.retraining.retrain_timing):
``retrain`` is then true, ``status`` "retrain requested"; before, ``status`` says "retrain pending until <day>".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from growth_pipeline.lib.models.labels import LabelSpec, attach_labels
from growth_pipeline.lib.models.metrics import classifier_metrics, regression_metrics

N_BINS = 10
MAX_LEVELS = 20
FLOOR = 1e-4
SCORE = "__score__"


# One row per input of a drift report (feature_drift's result).
FEATURE_DRIFT_SCHEMA = {
    "feature": pl.Utf8,
    "kind": pl.Utf8,
    "psi": pl.Float64,
    "statistic": pl.Float64,
    "p_value": pl.Float64,
    "importance_share": pl.Float64,
    "drifted": pl.Boolean,
}


@dataclass(frozen=True)
class Thresholds:
    psi_threshold: float = 0.25
    p_value: float = 0.01
    drifted_importance_share: float = 0.3
    severe_psi_threshold: float = 0.5
    prediction_psi_threshold: float = 0.25
    min_rows: int = 300
    performance_margin: float = 0.05
    min_outcomes: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        return cls(**{k: getattr(settings, k) for k in cls.__dataclass_fields__})


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    r = np.maximum(ref_share, FLOOR)
    c = np.maximum(cur_share, FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_drift(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, float]:
    """(PSI, KS statistic, p-value) of a numeric feature; nulls/NaN form their own bin."""
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    rn, cn = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    edges = np.unique(np.quantile(rn, np.linspace(0, 1, N_BINS + 1)[1:-1])) if len(rn) else np.array([])

    def shares(x: np.ndarray, finite: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1).astype(float)
        counts = np.append(counts, len(x) - len(finite))  # the null bin
        return counts / max(len(x), 1)

    psi = _psi(shares(ref, rn), shares(cur, cn))
    if len(rn) >= 2 and len(cn) >= 2:
        ks = stats.ks_2samp(rn, cn)
        return psi, float(ks.statistic), float(ks.pvalue)
    return psi, float("nan"), float("nan")


def categorical_drift(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float, float]:
    """(PSI, chi-square statistic, p-value) of a categorical feature over the reference's frequent values."""
    ref_s = pl.Series(ref, dtype=pl.Utf8).fill_null("missing")
    cur_s = pl.Series(cur, dtype=pl.Utf8).fill_null("missing")
    top = ref_s.value_counts(sort=True).head(MAX_LEVELS)[ref_s.name or ""].to_list() if ref_s.len() else []
    levels = list(top) + ["__other__"]

    def counts(s: pl.Series) -> np.ndarray:
        mapped = s.replace_strict(top, top, default="__other__") if top else pl.Series(["__other__"] * s.len())
        vc = dict(mapped.value_counts().iter_rows())
        return np.array([vc.get(level, 0) for level in levels], dtype=float)

    rc, cc = counts(ref_s), counts(cur_s)
    psi = _psi(rc / max(rc.sum(), 1), cc / max(cc.sum(), 1))
    keep = (rc + cc) > 0
    if keep.sum() >= 2 and rc.sum() > 0 and cc.sum() > 0:
        chi2, p, _, _ = stats.chi2_contingency(np.vstack([rc[keep], cc[keep]]))
        return psi, float(chi2), float(p)
    return psi, float("nan"), float("nan")


@dataclass
class DriftReport:
    """One model's drift on one day."""

    model: str
    rows_reference: int
    rows_current: int
    features: pl.DataFrame  # feature, kind, psi, statistic, p_value, importance_share, drifted
    prediction_psi: float | None = None
    prediction_p_value: float | None = None
    drifted_importance_share: float = 0.0
    realised: dict[str, Any] = field(default_factory=dict)  # scored_day, metric, value, test_value, outcomes...
    retrain: bool = False
    reasons: list[str] = field(default_factory=list)
    verdict: str = "ok"  # ok | drift | underperforming | too few rows | no reference
    shift_start: date | None = None  # the first scored day of this drift episode (see steps.check_drift)
    retrain_after: date | None = None  # the first day post-drift data can train and test a retrain
    status: str | None = None  # "retrain requested" | "retrain pending until <day>" | ...


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    feature_names: list[str],
    cat_features: list[str],
    importance_share: dict[str, float] | None,
    th: Thresholds,
) -> pl.DataFrame:
    """PSI and a distribution test per feature between the reference and the current population (both in the
    model's input form: one column per feature)."""
    importance_share = importance_share or {}
    alpha = th.p_value / max(len(feature_names), 1)
    rows = []
    for f in feature_names:
        if f not in reference.columns or f not in current.columns:
            continue
        if f in cat_features:
            psi, stat, p = categorical_drift(reference[f].cast(pl.Utf8).to_numpy(), current[f].cast(pl.Utf8).to_numpy())
            kind = "categorical"
        else:
            psi, stat, p = numeric_drift(
                reference[f].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                current[f].cast(pl.Float64).fill_null(np.nan).to_numpy(),
            )
            kind = "numeric"
        drifted = psi >= th.psi_threshold and not np.isnan(p) and p < alpha
        rows.append((f, kind, psi, stat, p, float(importance_share.get(f, 0.0)), drifted))
    return pl.DataFrame(
        rows,
        orient="row",
        schema=FEATURE_DRIFT_SCHEMA,
    ).sort("psi", descending=True)


def drift_report(
    model_name: str,
    reference: pl.DataFrame | None,
    current: pl.DataFrame,
    current_scores: np.ndarray,
    feature_names: list[str],
    cat_features: list[str],
    importance_share: dict[str, float] | None,
    th: Thresholds,
) -> DriftReport:
    """Feature and prediction drift of one model between its reference and today's scoring population
    (``current``: model inputs of the scored users, in the same order as ``current_scores``)."""
    empty = pl.DataFrame(schema=FEATURE_DRIFT_SCHEMA)
    if reference is None or reference.is_empty():
        return DriftReport(
            model_name,
            0,
            current.height,
            empty,
            verdict="no reference",
            reasons=["the champion has no drift reference (trained before references were logged)"],
        )
    rep = DriftReport(
        model_name,
        reference.height,
        current.height,
        feature_drift(reference, current, feature_names, cat_features, importance_share, th),
    )
    if SCORE in reference.columns and len(current_scores):
        rep.prediction_psi, _, rep.prediction_p_value = numeric_drift(
            reference[SCORE].to_numpy(), np.asarray(current_scores, dtype=np.float64)
        )
    if min(reference.height, current.height) < th.min_rows:
        rep.verdict = "too few rows"
        rep.reasons.append(
            f"{current.height} scored users and {reference.height} reference users: at least "
            f"{th.min_rows} of each are needed for a drift verdict"
        )
        return rep
    drifted = rep.features.filter(pl.col("drifted"))
    rep.drifted_importance_share = float(drifted["importance_share"].sum()) if drifted.height else 0.0
    if drifted.height and rep.drifted_importance_share >= th.drifted_importance_share:
        top = ", ".join(f"{r['feature']} (PSI {r['psi']:.2f})" for r in drifted.head(3).iter_rows(named=True))
        rep.reasons.append(
            f"drifted features carry {rep.drifted_importance_share:.0%} of the model's importance "
            f"(threshold {th.drifted_importance_share:.0%}): {top}"
        )
    severe = drifted.filter((pl.col("psi") >= th.severe_psi_threshold) & (pl.col("importance_share") > 0))
    if severe.height:
        top = ", ".join(f"{r['feature']} (PSI {r['psi']:.2f})" for r in severe.head(3).iter_rows(named=True))
        rep.reasons.append(f"{severe.height} input(s) shifted severely (PSI >= {th.severe_psi_threshold:.2f}): {top}")
    if (
        rep.prediction_psi is not None
        and rep.prediction_psi >= th.prediction_psi_threshold
        and (rep.prediction_p_value or 0.0) < th.p_value
    ):
        rep.reasons.append(f"score PSI {rep.prediction_psi:.2f} (threshold {th.prediction_psi_threshold:.2f})")
    if rep.reasons:
        rep.retrain, rep.verdict = True, "drift"
    return rep


def realised_performance(
    published: pl.DataFrame,
    daily: pl.DataFrame,
    scored_day: date,
    spec: LabelSpec,
    test_metrics: dict[str, float],
    th: Thresholds,
) -> dict[str, Any]:
    """How the scores published on ``scored_day`` did, now that their label window has matured: ROC-AUC (ltv:
    normalized Gini and total against actual) of the published scores against what happened, next to the test
    value the model promised. ``published``: user_key, score (one model, one day); ``daily``: core.user_daily."""
    labelled = attach_labels(published.select("user_key", "score"), daily, scored_day, spec)
    y = labelled["label"].to_numpy()
    s = labelled["score"].to_numpy()
    out: dict[str, Any] = {"scored_day": scored_day.isoformat(), "users": int(labelled.height)}
    if spec.kind == "classifier":
        pos = int(y.sum())
        out.update(
            metric="roc_auc", positives=pos, negatives=int(len(y) - pos), test_value=test_metrics.get("model.roc_auc")
        )
        if pos < th.min_outcomes or len(y) - pos < th.min_outcomes:
            out.update(value=None, verdict="too few outcomes")
            return out
        out["value"] = classifier_metrics(y, s)["roc_auc"]
    else:
        payers = int((y > 0).sum())
        out.update(
            metric="normalized_gini",
            positives=payers,
            negatives=int(len(y) - payers),
            test_value=test_metrics.get("model.normalized_gini"),
        )
        if payers < th.min_outcomes:
            out.update(value=None, verdict="too few outcomes")
            return out
        m = regression_metrics(y, s)
        out["value"], out["total_ratio"] = m["normalized_gini"], m.get("total_ratio")
    test_value = out["test_value"]
    below = test_value is not None and out["value"] < test_value - th.performance_margin
    out["verdict"] = "underperforming" if below else "ok"
    return out


def matured_scoring_day(day: date, spec: LabelSpec, published_days: list[date]) -> date | None:
    """The latest published scoring day whose label window (``horizon_days`` after it) has matured by ``day``."""
    ready = [d for d in published_days if d + timedelta(days=spec.horizon_days) <= day]
    return max(ready) if ready else None


def apply_realised(rep: DriftReport, realised: dict[str, Any], th: Thresholds) -> None:
    rep.realised = realised
    if realised.get("verdict") == "underperforming":
        rep.retrain = True
        rep.verdict = "underperforming" if rep.verdict in ("ok", "too few rows", "no reference") else rep.verdict
        rep.reasons.append(
            f"realised {realised['metric']} {realised['value']:.3f} of the scores published on "
            f"{realised['scored_day']} is more than {th.performance_margin:.2f} under the test "
            f"value {realised['test_value']:.3f}"
        )


def report_rows(day: date, rep: DriftReport, version: str | None) -> tuple[dict[str, Any], pl.DataFrame]:
    """The rows of marts.model_drift (one) and marts.feature_drift (one per feature) for a report."""
    r = rep.realised or {}
    row = {
        "day": day,
        "model": rep.model,
        "model_version": version,
        "verdict": rep.verdict,
        "retrain": rep.retrain,
        "reasons": "; ".join(rep.reasons) or None,
        "rows_reference": rep.rows_reference,
        "rows_current": rep.rows_current,
        "prediction_psi": rep.prediction_psi,
        "drifted_features": int(rep.features["drifted"].sum()) if rep.features.height else 0,
        "drifted_importance_share": rep.drifted_importance_share,
        "max_feature_psi": float(rep.features["psi"].max()) if rep.features.height else None,
        "realised_scored_day": date.fromisoformat(r["scored_day"]) if r.get("scored_day") else None,
        "realised_metric": r.get("metric"),
        "realised_value": r.get("value"),
        "realised_test_value": r.get("test_value"),
        "realised_outcomes": r.get("positives"),
        "shift_start": rep.shift_start,
        "retrain_after": rep.retrain_after,
        "status": rep.status,
    }
    feats = rep.features.with_columns(pl.lit(day).alias("day"), pl.lit(rep.model).alias("model"))
    return row, feats


DRIFT_SCHEMA = {
    "day": pl.Date,
    "model": pl.Utf8,
    "model_version": pl.Utf8,
    "verdict": pl.Utf8,
    "retrain": pl.Boolean,
    "reasons": pl.Utf8,
    "rows_reference": pl.Int32,
    "rows_current": pl.Int32,
    "prediction_psi": pl.Float64,
    "drifted_features": pl.Int32,
    "drifted_importance_share": pl.Float64,
    "max_feature_psi": pl.Float64,
    "realised_scored_day": pl.Date,
    "realised_metric": pl.Utf8,
    "realised_value": pl.Float64,
    "realised_test_value": pl.Float64,
    "realised_outcomes": pl.Int32,
    "shift_start": pl.Date,
    "retrain_after": pl.Date,
    "status": pl.Utf8,
}
