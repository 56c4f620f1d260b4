"""The scoring steps: what the ``user_scores`` and ``model_drift`` assets do, callable without Dagster.

- ``score_users``: for each customer-day, every user of each model's population scored by the champion models,
  stored in ``marts.user_scores`` and exported as Parquet and CSV;
- ``check_drift``: for each customer-day, each champion's drift verdict (features, scores, and the realised
  performance of scores published earlier) in ``marts.model_drift`` / ``marts.feature_drift``, the verdict
  tagged on the champion's MLflow run, and the models to retrain: a drifting model records when its shift began
  and asks for retraining only once post-drift data can train and test it (until then "retrain pending until
  <day>"; see growth_pipeline.lib.automation.retraining).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from growth_pipeline.config import Customer, CustomerRegistry
from growth_pipeline.lib.automation.retraining import retrain_timing
from growth_pipeline.lib.features.user_features import Activity, build_features, read_customer_activity
from growth_pipeline.lib.models.labels import LabelSpec, label_specs
from growth_pipeline.lib.models.mlflow_store import registered_model_name
from growth_pipeline.lib.models.model_types import model_input
from growth_pipeline.lib.models.registry import CHAMPION, LoadedModel, load_model, version_metrics
from growth_pipeline.lib.models.run_logging import tag_run
from growth_pipeline.lib.models.split import NotEnoughData, split_dates
from growth_pipeline.lib.models.training import model_features
from growth_pipeline.lib.scoring import drift
from growth_pipeline.lib.scoring import scores as scoring
from growth_pipeline.lib.warehouse.connection import MissingInput, Warehouses
from growth_pipeline.lib.warehouse.sql import read_frame, replace_day, table_exists

Log = Callable[[str], None]


def load_champions(uri: str, customer_id: str, names: Iterable[str]) -> tuple[dict, dict[str, str]]:
    """The champion of each model, and why a model has none."""
    champions, missing = {}, {}
    for name in names:
        loaded = load_model(uri, registered_model_name(customer_id, name), CHAMPION)
        if loaded is None:
            missing[name] = "no champion yet (never trained, or no version beat its baselines)"
        else:
            champions[name] = loaded
    return champions, missing


# ------------------------------------------------------------------------------------------------- user_scores


@dataclass(frozen=True)
class ScoredDay:
    customer_id: str
    day: date
    scores: pl.DataFrame  # the day's rows of marts.user_scores
    files: dict[str, Path]  # the exports: parquet, csv (and latest_parquet, latest_csv)

    @property
    def users_scored(self) -> int:
        return int(self.scores["user_key"].n_unique()) if self.scores.height else 0

    @property
    def revenue_at_risk(self) -> float:
        risk = self.scores.filter(pl.col("model") == "churn")["revenue_at_risk"].sum() if self.scores.height else 0.0
        return round(float(risk or 0.0), 2)

    def per_model_markdown(self) -> str:
        summ = scoring.summary(self.scores)
        if not summ.height:
            return "(no model has a champion yet)"
        return (
            "| model | version | users | mean score | high | medium | low |\n|---|---|---:|---:|---:|---:|---:|\n"
            + (
                "\n".join(
                    f"| {r['model']} | {r['model_version']} | {r['users']:,} | {r['mean_score']:.3f} | "
                    f"{r['high']:,} | {r['medium']:,} | {r['low']:,} |"
                    for r in summ.iter_rows(named=True)
                )
            )
        )

    def top_markdown(self, model: str, n: int = 10) -> str:
        top = self.scores.filter(pl.col("model") == model).sort("score", descending=True).head(n)
        if top.is_empty():
            return "(not scored)"
        return "| user | score | revenue at risk | reasons |\n|---|---:|---:|---|\n" + "\n".join(
            f"| {r['user_key']} | {r['score']:.1%} | {r['revenue_at_risk'] or 0:,.0f} | "
            f"{r['reason_1']}; {r['reason_2']}; {r['reason_3']} |"
            for r in top.iter_rows(named=True)
        )


@dataclass
class UserScores:
    days: list[ScoredDay] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)  # model -> why not scored (the last customer's)
    champions: dict[str, str] = field(default_factory=dict)  # model -> "<registered name> v<version>" (same)

    @property
    def last(self) -> ScoredDay:
        return self.days[-1]

    @property
    def rows(self) -> int:
        return sum(d.scores.height for d in self.days)


def score_customer_days(
    warehouses: Warehouses,
    customer: Customer,
    days: list[date],
    tracking_uri: str,
    *,
    thread_count: int = 2,
    warn: Log | None = None,
) -> UserScores:
    """Score, store and export each day of one customer with its champion models."""
    specs = label_specs(customer)
    champions, missing = load_champions(tracking_uri, customer.id, specs)
    for name, why in missing.items():
        if warn:
            warn(f"{customer.id}/{name}: not scored: {why}")
    bands = scoring.Bands(customer.scoring.high_band_percentile, customer.scoring.medium_band_percentile)
    with warehouses.open(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer, until=max(days))
    out = UserScores(unscored=missing, champions={n: f"{m.registered_name} v{m.version}" for n, m in champions.items()})
    for day in days:
        features = build_features(act, day)
        scores = scoring.score_day(
            partial(model_features, act, day, features=features),
            specs,
            champions,
            day,
            labels=act.labels,
            band_limits=bands,
            thread_count=thread_count,
        )
        with warehouses.open(customer.id) as con:
            scoring.store_scores(con, scores, day)
        files = scoring.export_scores(scores, warehouses.paths.exports(customer.id), day)
        out.days.append(ScoredDay(customer.id, day, scores, files))
    return out


def score_users(
    warehouses: Warehouses,
    registry: CustomerRegistry,
    days_by_customer: Mapping[str, list[date]],
    tracking_uri: str,
    *,
    thread_count: int = 2,
    warn: Log | None = None,
) -> UserScores:
    out = UserScores()
    for customer_id, days in days_by_customer.items():
        scored = score_customer_days(
            warehouses, registry.get(customer_id), days, tracking_uri, thread_count=thread_count, warn=warn
        )
        out.days += scored.days
        out.unscored, out.champions = scored.unscored, scored.champions
    return out


# ------------------------------------------------------------------------------------------------- model_drift


@dataclass
class DriftCheck:
    days: list[tuple[str, pl.DataFrame]] = field(default_factory=list)  # (customer, the day's marts.model_drift)
    retrain: dict[str, dict[str, str]] = field(default_factory=dict)  # customer -> model -> reasons (last day)
    shift_start: dict[str, dict[str, str]] = field(default_factory=dict)  # customer -> model -> ISO day (drifting)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)  # customer -> model -> "retrain pending ..."

    @property
    def models_to_retrain(self) -> int:
        return sum(len(v) for v in self.retrain.values())

    @property
    def rows(self) -> int:
        return sum(f.height for _, f in self.days)

    def verdict_table(self) -> str:
        """The per-model verdicts of the last day checked."""
        lines = [
            "| model | version | verdict | status | shift start | score PSI | drifted features (importance) | "
            "realised | test | reasons |",
            "|---|---|---|---|---|---:|---|---:|---:|---|",
        ]
        for r in self.days[-1][1].iter_rows(named=True):
            lines.append(
                f"| {r['model']} | {r['model_version'] or ''} | {r['verdict']} | {r['status'] or ''} | "
                f"{r['shift_start'] or ''} | {_fmt(r['prediction_psi'])} | "
                f"{r['drifted_features'] or 0} ({_fmt(r['drifted_importance_share'], '.0%')}) | "
                f"{_fmt(r['realised_value'])} | {_fmt(r['realised_test_value'])} | {r['reasons'] or ''} |"
            )
        return "\n".join(lines)


def _fmt(v, spec: str = ".3f") -> str:
    return "" if v is None else format(v, spec)


def _model_drift(
    name: str,
    spec: LabelSpec,
    champ: LoadedModel,
    reference: pl.DataFrame | None,
    act: Activity,
    day: date,
    features: pl.DataFrame,
    published: pl.DataFrame,
    tracking_uri: str,
    th: drift.Thresholds,
) -> drift.DriftReport:
    """One champion's drift on one day: its scoring population against its reference, and the realised
    performance of the latest earlier scores whose labels have matured."""
    today = published.filter((pl.col("model") == name) & (pl.col("day") == day))
    pop = model_features(act, day, spec, features).join(today.select("user_key", "score"), on="user_key", how="inner")
    current = model_input(pop, champ.feature_names, champ.cat_features)
    rep = drift.drift_report(
        name,
        reference,
        current,
        pop["score"].to_numpy(),
        champ.feature_names,
        champ.cat_features,
        champ.importance_share,
        th,
    )
    earlier = published.filter(pl.col("model") == name)
    scored_day = drift.matured_scoring_day(day, spec, earlier["day"].unique().to_list())
    if scored_day is not None:
        past = earlier.filter(pl.col("day") == scored_day)
        promised = version_metrics(tracking_uri, champ.registered_name, past["model_version"][0])
        realised = drift.realised_performance(
            past.select("user_key", "score"), act.daily.filter(pl.col("day") <= day), scored_day, spec, promised, th
        )
        drift.apply_realised(rep, realised, th)
    return rep


@dataclass(frozen=True)
class _Episode:
    """A drift episode running for a model: since when, for which champion version."""

    shift_start: date
    version: str | None


def _running_episodes(con, before: date) -> dict[str, _Episode]:
    """Each model's drift episode running on the last monitoring day before ``before`` (marts.model_drift)."""
    if not table_exists(con, "marts.model_drift"):
        return {}
    try:
        rows = read_frame(con, "model_drift_episodes", before=before)
    except duckdb.BinderException:  # a warehouse written before episodes were recorded (no shift_start yet)
        return {}
    return {
        r["model"]: _Episode(r["shift_start"], r["model_version"])
        for r in rows.iter_rows(named=True)
        if r["shift_start"] is not None
    }


def _time_retrain(
    rep: drift.DriftReport,
    episode: _Episode | None,
    champ: LoadedModel,
    spec: LabelSpec,
    customer: Customer,
    act: Activity,
    day: date,
    published: pl.DataFrame,
) -> _Episode | None:
    """A model that asks to be retrained: when its shift began (the running episode's start, or today; for
    scores that underperformed alone, the day they were published) and whether post-drift data can train and
    test a retrain yet (``rep.retrain`` true only then, ``rep.status`` says which). Returns the running episode."""
    if not rep.retrain:
        return None
    if episode is not None and episode.version == champ.version:
        start = episode.shift_start
    elif rep.verdict == "underperforming" and rep.realised.get("scored_day"):
        start = date.fromisoformat(rep.realised["scored_day"])
    else:
        start = day
    h = timedelta(days=spec.horizon_days)
    labelled = published.filter((pl.col("model") == rep.model) & (pl.col("day") >= start) & (pl.col("day") <= day - h))[
        "user_key"
    ].n_unique()
    try:
        settings = customer.models
        would = split_dates(act.first_day, day, spec, settings.snapshot_step_days, settings.max_train_snapshots).train
    except NotEnoughData:
        would = None
    champion_train = tuple(date.fromisoformat(d) for d in (champ.split or {}).get("train", ())) or None
    timing = retrain_timing(
        day,
        start,
        spec.horizon_days,
        wait_horizons=customer.monitoring.retrain_wait_horizons,
        labelled_post_drift_users=labelled,
        min_post_drift_users=customer.monitoring.min_post_drift_users,
        train_dates=would,
        champion_train_dates=champion_train,
    )
    rep.shift_start, rep.retrain_after, rep.status, rep.retrain = start, timing.ready_day, timing.status, timing.request
    return _Episode(start, champ.version)


def check_customer_drift(warehouses: Warehouses, customer: Customer, days: list[date], tracking_uri: str) -> DriftCheck:
    """Each day of one customer: every model's verdict stored (one transaction per day); on the last day the
    champions' MLflow runs tagged with it and the models to retrain listed."""
    out = DriftCheck()
    th = drift.Thresholds.from_settings(customer.monitoring)
    specs = label_specs(customer)
    champions, missing = load_champions(tracking_uri, customer.id, specs)
    references = {n: m.reference() for n, m in champions.items()}
    with warehouses.open(customer.id, read_only=True) as con:
        act = read_customer_activity(con, customer, until=max(days))
        if not table_exists(con, "marts.user_scores"):
            raise MissingInput(
                f"{customer.id}: marts.user_scores does not exist yet: materialize user_scores "
                f"for {', '.join(str(d) for d in days)} first"
            )
        published = read_frame(con, "user_scores_published", until=max(days))
        episodes = _running_episodes(con, min(days))
    for day in days:
        features = build_features(act, day)
        rows, feature_rows = [], []
        for name, spec in specs.items():
            champ = champions.get(name)
            if champ is None:
                rows.append(
                    {"day": day, "model": name, "verdict": "no champion", "retrain": False, "reasons": missing[name]}
                )
                continue
            rep = _model_drift(name, spec, champ, references[name], act, day, features, published, tracking_uri, th)
            episode = _time_retrain(rep, episodes.get(name), champ, spec, customer, act, day, published)
            if episode is None:
                episodes.pop(name, None)
            else:
                episodes[name] = episode
            row, feats = drift.report_rows(day, rep, champ.version)
            rows.append(row)
            feature_rows.append(feats)
            if day == max(days):
                if rep.retrain:
                    out.retrain.setdefault(customer.id, {})[name] = "; ".join(rep.reasons)
                if rep.shift_start is not None:
                    out.shift_start.setdefault(customer.id, {})[name] = rep.shift_start.isoformat()
                    if not rep.retrain:
                        out.pending.setdefault(customer.id, {})[name] = f"{rep.status}: " + "; ".join(rep.reasons)
                tag_run(
                    tracking_uri,
                    champ.run_id,
                    {
                        "monitoring.last_day": day.isoformat(),
                        "monitoring.last_verdict": rep.verdict,
                        "monitoring.last_status": rep.status or "-",
                        "monitoring.shift_start": rep.shift_start.isoformat() if rep.shift_start else "-",
                        "monitoring.last_reasons": "; ".join(rep.reasons) or "-",
                    },
                )
        drift_frame = pl.DataFrame(rows, schema=drift.DRIFT_SCHEMA)
        feature_frame = (
            pl.concat(feature_rows)
            if feature_rows
            else pl.DataFrame(schema={"day": pl.Date, "model": pl.Utf8, "feature": pl.Utf8})
        )
        with warehouses.open(customer.id) as con:
            replace_day(
                con,
                "model_drift_replace",
                day,
                {"drift": drift_frame, "features": feature_frame},
                schema="scores_schema",
            )
        out.days.append((customer.id, drift_frame))
    return out


def check_drift(
    warehouses: Warehouses, registry: CustomerRegistry, days_by_customer: Mapping[str, list[date]], tracking_uri: str
) -> DriftCheck:
    out = DriftCheck()
    for customer_id, days in days_by_customer.items():
        checked = check_customer_drift(warehouses, registry.get(customer_id), days, tracking_uri)
        out.days += checked.days
        out.retrain.update(checked.retrain)
        out.shift_start.update(checked.shift_start)
        out.pending.update(checked.pending)
    return out
