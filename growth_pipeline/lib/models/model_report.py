"""A training run as text for Dagster metadata, the report and the benchmarks: the candidates side by side, the
figures shown, the top drivers and the highest scores with their reasons. Pure functions over the flat metrics of
one run (``"<who>.<metric>"``, ``"<who>.<metric>_lo90"`` / ``_hi90``, ``"valid.<family>.<primary>"``) and its
frames."""

from __future__ import annotations

import math

import polars as pl

from growth_pipeline.lib.models.metrics import PRIMARY_METRIC

CANDIDATES = ("catboost", "logistic", "linear", "btyd")
REFERENCES = ("historical_average", "rule")
COLUMNS = {
    "classifier": ("roc_auc", "pr_auc", "log_loss", "top_decile_lift"),
    "ltv": ("normalized_gini", "rmse", "decile_mape", "total_ratio"),
}
SHOWN = {
    "classifier": ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift", "lift_quality"),
    "ltv": ("normalized_gini", "spearman", "rmse", "mae", "decile_mape", "total_ratio"),
}
SHOWN_WHO = (
    "model",
    *CANDIDATES,
    *REFERENCES,
    "champion",
    "oracle",
    "oracle_traits",
    "oracle_observed",
)


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def interval_text(metrics: dict[str, float], who: str, key: str, digits: int = 3) -> str:
    """``0.742 [0.701, 0.779]``: the test figure with its 90% bootstrap interval (or the figure alone)."""
    v = metrics.get(f"{who}.{key}")
    if not _ok(v):
        return "-"
    lo, hi = metrics.get(f"{who}.{key}_lo90"), metrics.get(f"{who}.{key}_hi90")
    if _ok(lo) and _ok(hi):
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{v:.{digits}f}"


def candidates_table(metrics: dict[str, float], kind: str, serving: str | None = None) -> str:
    """Markdown: one row per candidate and reference found in ``metrics``, validation and test figures."""
    primary = PRIMARY_METRIC[kind]
    cols = COLUMNS[kind]
    head = f"| candidate | validation {primary} | " + " | ".join(f"test {c} [90%]" for c in cols) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(cols)]
    for who in (*CANDIDATES, *REFERENCES):
        if not any(k.startswith(f"{who}.") for k in metrics):
            continue
        valid = metrics.get(f"valid.{who}.{primary}")
        name = f"**{who}** (serving)" if who == serving else who
        cells = [interval_text(metrics, who, c) for c in cols]
        lines.append(f"| {name} | {valid:.3f} | " if _ok(valid) else f"| {name} | - | ")
        lines[-1] += " | ".join(cells) + " |"
    return "\n".join(lines)


def shown_metrics(metrics: dict[str, float], kind: str) -> dict[str, float]:
    """The figures a model's metadata shows: every candidate's, the references', the champion's and the oracles'
    test metrics with their intervals, rounded to 4 digits (missing and NaN left out)."""
    shown = {}
    for who in SHOWN_WHO:
        for k in SHOWN[kind]:
            for key in (f"{who}.{k}", f"{who}.{k}_lo90", f"{who}.{k}_hi90"):
                value = metrics.get(key)
                if value is not None and not math.isnan(value):
                    shown[key] = round(value, 4)
    return shown


def drivers_table(importance: pl.DataFrame) -> str:
    """Markdown: features and their mean absolute contribution (``explain.global_importance``)."""
    return "| feature | mean abs contribution |\n|---|---:|\n" + "\n".join(
        f"| {f} | {v:.4f} |" for f, v in importance.select("feature", "mean_abs_shap").iter_rows()
    )


def reasons_table(reasons: pl.DataFrame | None, kind: str, n: int = 10) -> str:
    """The test-set users with the highest scores and their top reasons, as markdown."""
    if reasons is None or reasons.is_empty():
        return "(none)"
    fmt = (lambda v: f"{v:.1%}") if kind == "classifier" else (lambda v: f"{v:,.0f}")
    rows = [
        f"| {r['user_key']} | {fmt(r['score'])} | {r['reason_1']} | {r['reason_2']} | {r['reason_3']} |"
        for r in reasons.head(n).iter_rows(named=True)
    ]
    return "| user | score | reason 1 | reason 2 | reason 3 |\n|---|---:|---|---|---|\n" + "\n".join(rows)
