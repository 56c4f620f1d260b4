"""A training run's candidates side by side, as text for Dagster metadata, the report and the benchmarks.
Pure functions over the flat metrics of one run (``"<who>.<metric>"``, ``"<who>.<metric>_lo90"`` / ``_hi90``,
``"valid.<family>.<primary>"``)."""

from __future__ import annotations

import math

from growth_pipeline.lib.models.metrics import PRIMARY_METRIC

CANDIDATES = ("catboost", "logistic", "linear", "btyd")
REFERENCES = ("historical_average", "rule")
COLUMNS = {
    "classifier": ("roc_auc", "pr_auc", "log_loss", "top_decile_lift"),
    "ltv": ("normalized_gini", "rmse", "decile_mape", "total_ratio"),
}


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
