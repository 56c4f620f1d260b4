"""The customer report: one static HTML page per customer with its models' quality in plain words, the latest
published scores and the growth analytics. Charts are PNG files next to the page (``charts/``), so it opens from
disk or any static web server with no script and nothing fetched from the network. No Dagster import.
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

from growth_pipeline.lib.analytics import charts
from growth_pipeline.lib.analytics import marts as ga
from growth_pipeline.lib.models import registry
from growth_pipeline.lib.models.candidates import describe_family
from growth_pipeline.lib.models.labels import MODEL_NAMES, label_specs
from growth_pipeline.lib.models.mlflow_store import registered_model_name

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


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
        ).fetchall()[0][0]
    )


def _histogram(scores: np.ndarray, title: str, xlabel: str) -> bytes:
    fig = charts._new_figure()
    ax = fig.add_subplot()
    ax.hist(scores, bins=40, color="C0")
    ax.set(title=title, xlabel=xlabel, ylabel="users")
    ax.grid(alpha=0.3)
    return charts._render(fig, None)


def collect(con: duckdb.DuckDBPyConnection, customer, tracking_uri: str) -> ReportContent:
    """Everything the report shows, read from the customer's warehouse and the MLflow registry."""
    as_of = ga.latest_day(con) if _has_table(con, "core", "user_daily") else None
    content = ReportContent(customer=customer.id, name=customer.name or customer.id, as_of=as_of, scores_day=None)
    for name in label_specs(customer):
        summary = _model_summary(tracking_uri, customer.id, name, content)
        if summary is None:
            content.missing_models[name] = registry.why_no_champion(tracking_uri, customer.id, name)
        else:
            content.models.append(summary)
    if _has_table(con, "marts", "user_scores"):
        day = con.execute("SELECT max(day) FROM marts.user_scores").fetchall()[0][0]
        content.scores_day = day
        if day is not None:
            scores = pl.DataFrame(con.sql("SELECT * FROM marts.user_scores WHERE day = ?", params=[day]))
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

_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1rem}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #ddd;
padding:.25rem .5rem;text-align:right}th{background:#f4f6f8}td.l,th.l{text-align:left}img{max-width:100%;
margin:.5rem 0;border:1px solid #eee}.muted{color:#666}.grid{display:flex;flex-wrap:wrap;gap:1rem}
.grid>div{flex:1 1 480px}"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _e(v)


def _table(frame: pl.DataFrame | None, columns: list[str] | None = None, n: int = 20) -> str:
    if frame is None or frame.is_empty():
        return "<p class='muted'>No data yet.</p>"
    cols = columns or [c for c in frame.columns if c != "as_of"]
    head = "".join(f"<th class='l'>{_e(c)}</th>" if frame.schema[c] == pl.Utf8 else f"<th>{_e(c)}</th>" for c in cols)
    rows = []
    for r in frame.head(n).iter_rows(named=True):
        rows.append(
            "<tr>"
            + "".join(
                f"<td class='l'>{_e(r[c])}</td>" if frame.schema[c] == pl.Utf8 else f"<td>{_num(r[c])}</td>"
                for c in cols
            )
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _img(content: ReportContent, fname: str, alt: str) -> str:
    if fname not in content.charts:
        return ""
    return f"<img src='charts/{_e(fname)}' alt='{_e(alt)}'>"


def render_html(c: ReportContent) -> str:
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(c.name)}: growth report</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(c.name)}: growth report</h1>",
        f"<p class='muted'>Data up to {_e(c.as_of or 'no data yet')}; scores published for "
        f"{_e(c.scores_day or 'no day yet')}; generated {c.generated_at:%Y-%m-%d %H:%M} UTC.</p>",
    ]
    parts.append("<h2>Models</h2>")
    if not c.models:
        parts.append("<p class='muted'>No model is in service yet.</p>")
    for m in c.models:
        trained = f"{m.trained_at:%Y-%m-%d}" if m.trained_at else "?"
        parts.append(
            f"<h3>{_e(TITLES.get(m.name, m.name))} <span class='muted'>({_e(m.registered)} version "
            f"{_e(m.version)}, trained {trained}, tested on users as of {_e(m.test_as_of)})</span></h3>"
        )
        parts.append(f"<p>{_e(quality_sentence(m))}</p>")
        keys = (
            ("roc_auc", "pr_auc", "top_decile_lift", "ece", "brier")
            if m.kind != "ltv"
            else ("normalized_gini", "spearman", "total_ratio", "rmse", "decile_mape")
        )
        whos = ("model", "logistic", "rule") if m.kind != "ltv" else ("model", "linear", "historical_average", "rule")
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        rows = "".join(
            f"<tr><td class='l'>{_e('this model' if w == 'model' else w)}</td>"
            + "".join(f"<td>{_num(m.metrics.get(f'{w}.{k}'))}</td>" for k in keys)
            + "</tr>"
            for w in whos
            if any(f"{w}.{k}" in m.metrics for k in keys)
        )
        parts.append(f"<table><tr><th class='l'>compared on the same test users</th>{head}</tr>{rows}</table>")
        if m.drivers:
            parts.append(
                "<p>Top drivers (share of the model's attention): "
                + ", ".join(f"{_e(f)} {s:.0%}" for f, s in m.drivers)
                + ".</p>"
            )
        parts.append("<div class='grid'>" + "".join(f"<div>{_img(c, f, f)}</div>" for f in m.chart_files) + "</div>")
    for name, why in c.missing_models.items():
        parts.append(f"<p class='muted'>{_e(TITLES.get(name, name))}: {_e(why)}.</p>")

    parts.append("<h2>Scores</h2>")
    if not c.scores:
        parts.append("<p class='muted'>No scores published yet.</p>")
    else:
        rows = "".join(
            f"<tr><td class='l'>{_e(TITLES.get(s.model, s.model))}</td><td>{s.users:,}</td>"
            f"<td>{_num(s.mean_score)}</td><td>{s.bands['high']:,}</td><td>{s.bands['medium']:,}</td>"
            f"<td>{s.bands['low']:,}</td></tr>"
            for s in c.scores
        )
        parts.append(
            "<p>Bands: <b>high</b> = the top 10% of scores, <b>medium</b> = the next 20%, <b>low</b> = the "
            "rest.</p><table><tr><th class='l'>model</th><th>users scored</th><th>mean score</th>"
            f"<th>high</th><th>medium</th><th>low</th></tr>{rows}</table>"
        )
        parts.append(
            "<div class='grid'>"
            + "".join(f"<div>{_img(c, s.chart_file, s.model)}</div>" for s in c.scores if s.chart_file)
            + "</div>"
        )
        if c.revenue_at_risk is not None:
            parts.append(
                f"<p>Revenue at risk (probability of churn x predicted lifetime value, summed over users): "
                f"<b>{c.revenue_at_risk:,.0f}</b>. Users with the most revenue at risk:</p>"
            )
            parts.append(
                _table(c.top_risk, ["user_key", "score", "revenue_at_risk", "reason_1", "reason_2", "reason_3"])
            )
    parts.append("<h2>Channels</h2>")
    parts.append("<div class='grid'>" + _div(c, "users_by_channel.png") + _div(c, "revenue_by_channel.png") + "</div>")
    parts.append(_table(c.tables.get("channels")))
    parts.append(_img(c, "actions_per_user_by_channel.png", "actions per user by channel"))
    if "category_purchases" in c.tables:
        parts.append(_img(c, "purchases_by_category_and_channel.png", "purchases by category and channel"))
    parts.append("<h2>Most profitable users</h2>" + _table(c.tables.get("top_users"), n=20))
    parts.append(
        "<h2>Lifetime value per channel</h2><p>Lifetime value = average order value x repeat purchases "
        "per month x average retention in months, over the channel's paying users.</p>"
        + _img(c, "ltv_by_channel.png", "lifetime value by channel")
        + _table(c.tables.get("channel_ltv"))
    )
    parts.append("<h2>Weekly cohort retention</h2>" + _img(c, "cohort_retention.png", "cohort retention"))
    lift = c.tables.get("campaign_lift")
    parts.append("<h2>Campaign lift</h2>")
    if lift is not None and lift.height:
        last = lift.tail(1).row(0, named=True)
        parts.append(
            f"<p>Campaign A ({_e(last['campaign_a'])}) against campaign B ({_e(last['campaign_b'])}, the "
            f"baseline): {last['rate_a']:.1%} of A's sign-ups bought within {last['day_since_signup']} "
            f"days, against {last['rate_b']:.1%} of B's: a lift of {_num(last['lift'])}.</p>"
        )
    parts.append(_img(c, "campaign_lift.png", "campaign lift"))
    parts.append("</body></html>")
    return "\n".join(parts)


def _div(c: ReportContent, fname: str) -> str:
    return f"<div>{_img(c, fname, fname)}</div>"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(content: ReportContent, folder: Path) -> Path:
    """Write the charts, then the page (each atomically): a reader never sees a page pointing at a missing chart."""
    for fname, data in content.charts.items():
        _atomic_write_bytes(folder / "charts" / fname, data)
    index = folder / "index.html"
    _atomic_write_bytes(index, render_html(content).encode())
    _atomic_write_bytes(
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
