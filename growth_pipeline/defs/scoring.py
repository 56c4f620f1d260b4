"""Daily operation: every customer's users scored with the champion models and published, and the models
watched for drift and for how their published scores turned out."""

from functools import partial

import dagster as dg
import polars as pl

from growth_pipeline.defs.features import user_daily
from growth_pipeline.defs.models import MODEL_ASSETS
from growth_pipeline.defs.partitions import (
    ALL_DAYS_OF_CUSTOMER,
    BACKFILL_IN_ONE_RUN,
    customer_day_partitions,
    customer_days,
    group_by_customer,
)
from growth_pipeline.defs.resources import GrowthResource, MlflowResource
from growth_pipeline.lib.features.user_features import build_features, read_customer_activity
from growth_pipeline.lib.models import registry, run_logging
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.mlflow_store import registered_model_name
from growth_pipeline.lib.models.model_types import model_input
from growth_pipeline.lib.models.training import model_features
from growth_pipeline.lib.scoring import drift
from growth_pipeline.lib.scoring import scores as scoring
from growth_pipeline.lib.warehouse.sql import run_sql, transaction

GROUP = "scoring"


def _champions(uri: str, customer_id: str, names) -> tuple[dict, dict[str, str]]:
    """The champion of each model, and why a model has none."""
    champions, missing = {}, {}
    for name in names:
        loaded = registry.load_model(uri, registered_model_name(customer_id, name), registry.CHAMPION)
        if loaded is None:
            missing[name] = "no champion yet (never trained, or no version beat its baselines)"
        else:
            champions[name] = loaded
    return champions, missing


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    kinds={"catboost", "duckdb", "parquet"},
    deps=[user_daily, *(dg.AssetDep(m, partition_mapping=ALL_DAYS_OF_CUSTOMER) for m in MODEL_ASSETS)],
)
def user_scores(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
    """The day's scores of every user in each model's population, by the champion models (``marts.user_scores``):
    calibrated probability (ltv: predicted revenue over its horizon), percentile within the customer, band
    (high / medium / low, customers.yaml `scoring`), the top 3 reasons in words, the model name and version, and
    revenue at risk (probability of churn x predicted ltv). Published atomically as
    ``GROWTH_HOME/exports/<customer>/user_scores_<day>.parquet`` and ``.csv`` (and ``user_scores_latest.*``).
    A day is replaced, never appended: re-running it gives the same rows."""
    uri = mlflow.uri(growth.paths)
    registry = growth.registry()
    meta: dict = {}
    per_day = []
    for customer_id, days in group_by_customer(customer_days(context)).items():
        customer = registry.get(customer_id)
        specs = label_specs(customer)
        champions, missing = _champions(uri, customer_id, specs)
        for name, why in missing.items():
            context.log.warning(f"{customer_id}/{name}: not scored: {why}")
        bands = scoring.Bands(customer.scoring.high_band_percentile, customer.scoring.medium_band_percentile)
        with growth.warehouse(customer_id, read_only=True) as con:
            act = read_customer_activity(con, customer, until=max(days))
        for day in days:
            features = build_features(act, day)
            scores = scoring.score_day(
                partial(model_features, act, day, features=features),
                specs,
                champions,
                day,
                labels=act.labels,
                band_limits=bands,
                thread_count=growth.model_threads,
            )
            with growth.warehouse(customer_id) as con, transaction(con):
                run_sql(con, "scores_schema")
                con.register("frame", scores.to_arrow())
                run_sql(con, "user_scores_replace", day=day)
                con.unregister("frame")
            files = scoring.export_scores(scores, growth.paths.exports(customer_id), day)
            per_day.append((customer_id, day, scores, files))
        meta["unscored_models"] = dg.MetadataValue.json(missing)
        meta["champions"] = dg.MetadataValue.json(
            {n: f"{m.registered_name} v{m.version}" for n, m in champions.items()}
        )
    customer_id, day, scores, files = per_day[-1]
    summ = scoring.summary(scores)
    risk = scores.filter(pl.col("model") == "churn")["revenue_at_risk"].sum() if scores.height else 0.0
    meta.update(
        {
            "day": str(day),
            "days": len(per_day),
            "dagster/row_count": sum(s.height for _, _, s, _ in per_day),
            "users_scored": int(scores["user_key"].n_unique()) if scores.height else 0,
            "revenue_at_risk": round(float(risk or 0.0), 2),
            "export_parquet": dg.MetadataValue.path(str(files["parquet"])),
            "export_csv": dg.MetadataValue.path(str(files["csv"])),
            "per_model": dg.MetadataValue.md(
                "| model | version | users | mean score | high | medium | low |\n|---|---|---:|---:|---:|---:|---:|\n"
                + "\n".join(
                    f"| {r['model']} | {r['model_version']} | {r['users']:,} | {r['mean_score']:.3f} | "
                    f"{r['high']:,} | {r['medium']:,} | {r['low']:,} |"
                    for r in summ.iter_rows(named=True)
                )
                if summ.height
                else "(no model has a champion yet)"
            ),
            "highest_churn_risk": dg.MetadataValue.md(_top_table(scores, "churn")),
        }
    )
    return dg.MaterializeResult(metadata=meta)


def _top_table(scores: pl.DataFrame, model: str, n: int = 10) -> str:
    top = scores.filter(pl.col("model") == model).sort("score", descending=True).head(n)
    if top.is_empty():
        return "(not scored)"
    return "| user | score | revenue at risk | reasons |\n|---|---:|---:|---|\n" + "\n".join(
        f"| {r['user_key']} | {r['score']:.1%} | {r['revenue_at_risk'] or 0:,.0f} | "
        f"{r['reason_1']}; {r['reason_2']}; {r['reason_3']} |"
        for r in top.iter_rows(named=True)
    )


@dg.asset(
    partitions_def=customer_day_partitions,
    backfill_policy=BACKFILL_IN_ONE_RUN,
    group_name=GROUP,
    kinds={"duckdb", "mlflow"},
    deps=[user_scores],
)
def model_drift(context: dg.AssetExecutionContext, growth: GrowthResource, mlflow: MlflowResource):
    """How each champion model's world compares with the one it was trained in (``marts.model_drift``, per
    feature ``marts.feature_drift``): population stability index and a KS / chi-square test per feature between
    the champion's reference (its test population, logged to MLflow) and the day's scoring population; drift
    of the scores themselves; and realised performance: once the label window of an earlier scoring day has
    matured, the AUC (ltv: normalized Gini and total against actual) of the scores published that day against
    what happened. Thresholds: customers.yaml `monitoring`. The metadata `retrain` lists the models the
    `retrain_on_drift` sensor should retrain, with the reasons."""
    uri = mlflow.uri(growth.paths)
    registry = growth.registry()
    retrain: dict[str, dict[str, str]] = {}
    table_rows = []
    for customer_id, days in group_by_customer(customer_days(context)).items():
        customer = registry.get(customer_id)
        th = drift.Thresholds.from_settings(customer.monitoring)
        specs = label_specs(customer)
        champions, missing = _champions(uri, customer_id, specs)
        references = {n: m.reference() for n, m in champions.items()}
        with growth.warehouse(customer_id, read_only=True) as con:
            act = read_customer_activity(con, customer, until=max(days))
            has_scores = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = 'user_scores'"
            ).fetchall()[0][0]
            if not has_scores:
                raise dg.Failure(
                    f"{customer_id}: marts.user_scores does not exist yet: materialize user_scores "
                    f"for {', '.join(str(d) for d in days)} first"
                )
            published = pl.DataFrame(
                con.sql(
                    "SELECT day, model, user_key, score, model_version FROM marts.user_scores WHERE day <= ?",
                    params=[max(days)],
                )
            )
        for day in days:
            features = build_features(act, day)
            rows, feature_rows = [], []
            for name, spec in specs.items():
                champ = champions.get(name)
                if champ is None:
                    rows.append(
                        {
                            "day": day,
                            "model": name,
                            "verdict": "no champion",
                            "retrain": False,
                            "reasons": missing[name],
                        }
                    )
                    continue
                today = published.filter((pl.col("model") == name) & (pl.col("day") == day))
                pop = model_features(act, day, spec, features).join(
                    today.select("user_key", "score"), on="user_key", how="inner"
                )
                current = model_input(pop, champ.feature_names, champ.cat_features)
                rep = drift.drift_report(
                    name,
                    references[name],
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
                    version = past["model_version"][0]
                    promised = registry.version_metrics(uri, champ.registered_name, version)
                    realised = drift.realised_performance(
                        past.select("user_key", "score"),
                        act.daily.filter(pl.col("day") <= day),
                        scored_day,
                        spec,
                        promised,
                        th,
                    )
                    drift.apply_realised(rep, realised, th)
                row, feats = drift.report_rows(day, rep, champ.version)
                rows.append(row)
                feature_rows.append(feats)
                if rep.retrain and day == max(days):
                    retrain.setdefault(customer_id, {})[name] = "; ".join(rep.reasons)
                if day == max(days):
                    run_logging.tag_run(
                        uri,
                        champ.run_id,
                        {
                            "monitoring.last_day": day.isoformat(),
                            "monitoring.last_verdict": rep.verdict,
                            "monitoring.last_reasons": "; ".join(rep.reasons) or "-",
                        },
                    )
            drift_frame = pl.DataFrame(rows, schema=drift.DRIFT_SCHEMA)
            feature_frame = (
                pl.concat(feature_rows)
                if feature_rows
                else pl.DataFrame(schema={"day": pl.Date, "model": pl.Utf8, "feature": pl.Utf8})
            )
            with growth.warehouse(customer_id) as con, transaction(con):
                run_sql(con, "scores_schema")
                con.register("drift", drift_frame.to_arrow())
                con.register("features", feature_frame.to_arrow())
                run_sql(con, "model_drift_replace", day=day)
                con.unregister("drift")
                con.unregister("features")
            table_rows.append((customer_id, drift_frame))
    last_customer, last = table_rows[-1]
    return dg.MaterializeResult(
        metadata={
            "retrain": dg.MetadataValue.json(retrain),
            "models_to_retrain": sum(len(v) for v in retrain.values()),
            "dagster/row_count": sum(f.height for _, f in table_rows),
            "verdicts": dg.MetadataValue.md(_verdict_table(last)),
        }
    )


def _fmt(v, spec: str = ".3f") -> str:
    return "" if v is None else format(v, spec)


def _verdict_table(frame: pl.DataFrame) -> str:
    lines = [
        "| model | version | verdict | score PSI | drifted features (importance) | realised | test | reasons |",
        "|---|---|---|---:|---|---:|---:|---|",
    ]
    for r in frame.iter_rows(named=True):
        lines.append(
            f"| {r['model']} | {r['model_version'] or ''} | {r['verdict']} | {_fmt(r['prediction_psi'])} | "
            f"{r['drifted_features'] or 0} ({_fmt(r['drifted_importance_share'], '.0%')}) | "
            f"{_fmt(r['realised_value'])} | {_fmt(r['realised_test_value'])} | {r['reasons'] or ''} |"
        )
    return "\n".join(lines)


SCORING_ASSETS = [user_scores, model_drift]
