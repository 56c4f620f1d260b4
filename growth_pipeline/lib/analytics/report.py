"""The customer report: one static HTML page per customer with its models' quality in plain words, the latest
published scores and the growth analytics. Charts are PNG files next to the page (``charts/``), so it opens from
disk or any static web server with no script and nothing fetched from the network. No Dagster import.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import numpy as np
import polars as pl

from growth_pipeline.lib.analytics import charts
from growth_pipeline.lib.analytics import marts as ga
from growth_pipeline.lib.files import atomic_write_bytes
from growth_pipeline.lib.models import registry
from growth_pipeline.lib.models.candidates import describe_family
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.mlflow_store import registered_model_name
from growth_pipeline.lib.warehouse.sql import fetch_one, read_frame, table_exists
from growth_pipeline.pipeline_shape import MODEL_NAMES

TITLES = {"churn": "Churn risk", "conversion": "Conversion", "goal": "Goal", "ltv": "Predicted lifetime value"}
MODEL_CHARTS = ("gains_and_lift.png", "calibration.png", "deciles.png")


@dataclass
class ModelSummary:
    name: str
    kind: str
    registered: str
    version: str
    run_id: str
    trained_at: datetime | None
    test_as_of: str
    horizon_days: int | None
    metrics: dict[str, float]
    drivers: list[tuple[str, float]] = field(default_factory=list)  # feature, share of importance
    chart_files: list[str] = field(default_factory=list)
    family: str = "catboost"  # which candidate family serves


@dataclass
class ScoreSummary:
    model: str
    users: int
    mean_score: float
    bands: dict[str, int]
    chart_file: str | None = None


@dataclass
class ReportContent:
    customer: str
    name: str
    as_of: date | None
    scores_day: date | None
    models: list[ModelSummary] = field(default_factory=list)
    missing_models: dict[str, str] = field(default_factory=dict)
    scores: list[ScoreSummary] = field(default_factory=list)
    revenue_at_risk: float | None = None
    top_risk: pl.DataFrame | None = None
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    charts: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    high_band_percentile: float = 90.0  # the customer's score bands (customers.yaml ``scoring``)
    medium_band_percentile: float = 70.0
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _model_summary(uri: str, customer_id: str, name: str, content: ReportContent) -> ModelSummary | None:
    from mlflow import MlflowClient

    registered = registered_model_name(customer_id, name)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = registry.alias_version(client, registered, registry.CHAMPION)
    if mv is None:
        return None
    run = client.get_run(mv.run_id)
    tags = run.data.tags
    summary = ModelSummary(
        name=name,
        kind=tags.get("kind", "classifier"),
        registered=registered,
        version=str(mv.version),
        run_id=mv.run_id,
        trained_at=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
        test_as_of=tags.get("as_of_test", ""),
        horizon_days=_int(run.data.params.get("label.horizon_days")),
        metrics=dict(run.data.metrics),
        family=tags.get("family", "catboost"),
    )
    with tempfile.TemporaryDirectory(prefix="growth-report-") as tmp:
        try:
            imp = pl.read_csv(client.download_artifacts(mv.run_id, "feature_importance.csv", tmp))
            col = "importance" if "importance" in imp.columns else imp.columns[-1]
            total = float(imp[col].abs().sum()) or 1.0
            summary.drivers = [
                (r["feature"], abs(float(r[col])) / total)
                for r in imp.sort(col, descending=True).head(8).iter_rows(named=True)
            ]
        except Exception:  # an older run without the table: the report says so instead of failing
            summary.drivers = []
        for chart in MODEL_CHARTS:
            try:
                data = Path(client.download_artifacts(mv.run_id, f"charts/{chart}", tmp)).read_bytes()
            except Exception:
                continue
            fname = f"{name}_{chart}"
            content.charts[fname] = data
            summary.chart_files.append(fname)
    return summary


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _histogram(scores: np.ndarray, title: str, xlabel: str) -> bytes:
    fig = charts._new_figure()
    ax = fig.add_subplot()
    ax.hist(scores, bins=40, color="C0")
    ax.set(title=title, xlabel=xlabel, ylabel="users")
    ax.grid(alpha=0.3)
    return charts._render(fig, None)


def collect(con: duckdb.DuckDBPyConnection, customer, tracking_uri: str) -> ReportContent:
    """Everything the report shows, read from the customer's warehouse and the MLflow registry."""
    as_of = ga.latest_day(con) if table_exists(con, "core.user_daily") else None
    content = ReportContent(
        customer=customer.id,
        name=customer.name or customer.id,
        as_of=as_of,
        scores_day=None,
        high_band_percentile=customer.scoring.high_band_percentile,
        medium_band_percentile=customer.scoring.medium_band_percentile,
    )
    for name in label_specs(customer):
        summary = _model_summary(tracking_uri, customer.id, name, content)
        if summary is None:
            content.missing_models[name] = registry.why_no_champion(tracking_uri, customer.id, name)
        else:
            content.models.append(summary)
    if table_exists(con, "marts.user_scores"):
        day = fetch_one(con, "user_scores_latest_day")[0]
        content.scores_day = day
        if day is not None:
            scores = read_frame(con, "user_scores_of_day", day=day)
            for name in MODEL_NAMES:
                s = scores.filter(pl.col("model") == name)
                if s.is_empty():
                    continue
                fname = f"{name}_score_distribution.png"
                label = "predicted revenue" if name == "ltv" else "probability"
                content.charts[fname] = _histogram(s["score"].to_numpy(), f"{TITLES[name]}: scores on {day}", label)
                bands = dict(s["band"].value_counts().iter_rows())
                content.scores.append(
                    ScoreSummary(
                        name,
                        s.height,
                        float(s["score"].mean()),
                        {b: int(bands.get(b, 0)) for b in ("high", "medium", "low")},
                        fname,
                    )
                )
            churn = scores.filter(pl.col("model") == "churn")
            if churn.height and churn["revenue_at_risk"].is_not_null().any():
                content.revenue_at_risk = float(churn["revenue_at_risk"].sum())
                content.top_risk = (
                    churn.filter(pl.col("revenue_at_risk").is_not_null())
                    .sort("revenue_at_risk", descending=True)
                    .head(10)
                )
    for name in ga.ANALYSES:
        tables = ga.read_tables(con, name)
        content.tables.update(tables)
        content.charts.update(ga.make_charts(name, tables, customer))
    return content


# ------------------------------------------------------------------------------------------------------- words


def quality_sentence(m: ModelSummary) -> str:
    """The model's test results in plain words."""
    k = m.metrics
    h = f"{m.horizon_days} days" if m.horizon_days else "its horizon"
    if m.kind == "ltv":
        gini, ratio = k.get("model.normalized_gini"), k.get("model.total_ratio")
        base = k.get("historical_average.normalized_gini")
        parts = []
        if gini is not None:
            lo, hi = k.get("model.normalized_gini_lo90"), k.get("model.normalized_gini_hi90")
            interval = f", 90% interval {lo:.0%} to {hi:.0%}" if lo is not None and hi is not None and lo == lo else ""
            parts.append(
                f"it orders users by their revenue over the next {h} with {gini:.0%} of the quality of a "
                f"perfect ordering (normalized Gini{interval})"
                + (f", against {base:.0%} for last quarter's revenue scaled to the horizon" if base else "")
            )
        if ratio is not None:
            parts.append(f"its predicted total was {ratio:.0%} of the actual total")
        return f"Served by {describe_family(m.family, m.kind)}. On users it had not seen, " + "; ".join(parts) + "."
    auc, lift, ece = k.get("model.roc_auc"), k.get("model.top_decile_lift"), k.get("model.ece")
    what = {"churn": "stop using the product", "conversion": "convert", "goal": "reach the goal"}.get(m.name, "respond")
    out = []
    if auc is not None:
        lo, hi = k.get("model.roc_auc_lo90"), k.get("model.roc_auc_hi90")
        interval = f", 90% interval {lo:.3f} to {hi:.3f}" if lo is not None and hi is not None and lo == lo else ""
        out.append(
            f"a user who went on to {what} within {h} scored higher than one who did not {auc:.0%} of the time "
            f"(ROC-AUC {auc:.3f}{interval}; 50% is a coin toss)"
        )
    if lift is not None:
        out.append(f"the 10% of users with the highest scores held {lift:.1f}x as many of them as a random 10%")
    if ece is not None:
        out.append(
            f"a predicted probability was off by {ece * 100:.1f} percentage points on average (calibration error)"
        )
    return f"Served by {describe_family(m.family, m.kind)}. On users it had not seen: " + "; ".join(out) + "."


# -------------------------------------------------------------------------------------------------------- HTML

_TEMPLATES = Path(__file__).parent / "templates"


def _fmt(v: Any, spec: str) -> str:
    return format(v, spec)


def _num(v: Any) -> str:
    """A number for a table cell: 3 decimals below 100, whole numbers with thousands separators above; blank for
    missing or non-finite values; anything else as text (escaped by the template)."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["num"] = _num
    return env


def _table(frame: pl.DataFrame | None, columns: list[str] | None = None, n: int = 20) -> dict[str, list] | None:
    """Header ``(column, is_text)`` and rows of ``(cell, is_text)`` (text is left-aligned) of a frame's first rows;
    None when there is nothing to show."""
    if frame is None or frame.is_empty():
        return None
    cols = columns or [c for c in frame.columns if c != "as_of"]
    text = {c: frame.schema[c] == pl.Utf8 for c in cols}
    rows = [[(r[c] if text[c] else _num(r[c]), text[c]) for c in cols] for r in frame.head(n).iter_rows(named=True)]
    return {"header": [(c, text[c]) for c in cols], "rows": rows}


def _model_view(m: ModelSummary) -> dict[str, Any]:
    """A served model's heading, sentence and comparison table (this model against its baselines)."""
    keys = (
        ("roc_auc", "pr_auc", "top_decile_lift", "ece", "brier")
        if m.kind != "ltv"
        else ("normalized_gini", "spearman", "total_ratio", "rmse", "decile_mape")
    )
    whos = ("model", "logistic", "rule") if m.kind != "ltv" else ("model", "linear", "historical_average", "rule")
    rows = [
        ("this model" if w == "model" else w, [_num(m.metrics.get(f"{w}.{k}")) for k in keys])
        for w in whos
        if any(f"{w}.{k}" in m.metrics for k in keys)
    ]
    return {"s": m, "title": TITLES.get(m.name, m.name), "sentence": quality_sentence(m), "columns": keys, "rows": rows}


def _share(percent: float) -> str:
    """A share of users in percent, without a trailing ``.0``: 10.0 -> "10", 2.5 -> "2.5"."""
    return f"{round(percent, 6):g}"


def render_html(c: ReportContent) -> str:
    lift = c.tables.get("campaign_lift")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            c=c,
            titles=TITLES,
            models=[_model_view(m) for m in c.models],
            bands={
                "high": _share(100 - c.high_band_percentile),
                "medium": _share(c.high_band_percentile - c.medium_band_percentile),
            },
            top_risk=_table(c.top_risk, ["user_key", "score", "revenue_at_risk", "reason_1", "reason_2", "reason_3"]),
            tables={name: _table(c.tables.get(name)) for name in ("channels", "top_users", "channel_ltv")},
            lift=lift.tail(1).row(0, named=True) if lift is not None and lift.height else None,
        )
    )


def write(content: ReportContent, folder: Path) -> Path:
    """Write the charts, then the page (each atomically): a reader never sees a page pointing at a missing chart."""
    for fname, data in content.charts.items():
        atomic_write_bytes(folder / "charts" / fname, data)
    index = folder / "index.html"
    atomic_write_bytes(index, render_html(content).encode())
    atomic_write_bytes(
        folder / "report.json",
        json.dumps(
            {
                "customer": content.customer,
                "as_of": str(content.as_of),
                "scores_day": str(content.scores_day),
                "models": {m.name: {"version": m.version, "run_id": m.run_id} for m in content.models},
                "charts": sorted(content.charts),
            },
            indent=2,
        ).encode(),
    )
    return index
