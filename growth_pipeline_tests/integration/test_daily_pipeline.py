"""Daily operation end to end, on real Dagster runs, DuckDB files, MLflow stores and CatBoost models: scoring and
publishing, drift after a behaviour change in one customer's app, the retraining sensor and its gate, the daily
schedule and the chain of daily stages."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, customers_yaml, load_customers
from growth_pipeline.definitions import defs
from growth_pipeline.defs.automation import daily_pipeline_next_stage, daily_refresh, retrain_on_drift
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import BehaviourChange, DemoSpec
from growth_pipeline.lib.models.metrics import classifier_metrics
from growth_pipeline.lib.models.mlflow_store import tracking_uri
from growth_pipeline_tests.warehouse_builder import materialize_load_stages

START = date(2026, 1, 1)
DAYS = 130
TRAINED_UNTIL = START + timedelta(days=99)  # models trained on data up to here
CHANGE = START + timedelta(days=101)  # from here on, "shifted" users create 70% fewer tasks
SCORED_AFTER = START + timedelta(days=121)  # scored 20 days into the change
CUSTOMERS = ("stable", "shifted")


def _load(instance, customer, first, last):
    materialize_load_stages(instance, customer, first, last)


def _score(instance, customer, day):
    return dg.materialize(
        list(defs.assets),
        selection=["user_scores", "model_drift"],
        instance=instance,
        resources=defs.resources,
        partition_key=f"{customer}|{day}",
    )


def meta(result, asset):
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    base = load_customers(REPO_ROOT / "customers.yaml").get("powerplay")
    entries = []
    for name in CUSTOMERS:
        change = BehaviourChange(CHANGE, "Task Created", 0.3) if name == "shifted" else None
        generate_demo(
            DemoSpec("powerplay", n_users=1500, start=START, days=DAYS, seed=11, behaviour_change=change), root / name
        )
        entry = customer_like(
            base, name, root / name, conversion={"enabled": False}, goal={"enabled": False}, ltv={"horizon_days": 14}
        )
        # retrain as soon as drift is seen: these tests are about the sensor's plumbing (the wait for post-drift
        # labels is pinned in lib/automation/test_retrain_timing.py)
        wait = entry.monitoring.model_copy(update={"retrain_wait_horizons": 0.0, "min_post_drift_users": 0})
        entries.append(entry.model_copy(update={"monitoring": wait}))
    cfg = root / "customers.yaml"
    cfg.write_text(customers_yaml(entries))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTH_HOME", str(root / "home"))
    mp.setenv("GROWTH_CUSTOMERS", str(cfg))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("customer", list(CUSTOMERS))
        trained = {}
        for c in CUSTOMERS:
            _load(instance, c, START, TRAINED_UNTIL)
            trained[c] = dg.materialize(
                list(defs.assets),
                selection=["churn_model", "ltv_model"],
                instance=instance,
                resources=defs.resources,
                partition_key=c,
                raise_on_error=False,
            )
            # Scoring needs a champion. On 1,500 users the gate can refuse a first version on noise (a 14-day ltv
            # is mostly zeros); then the fixture promotes version 1 by hand, as an operator can in the MLflow UI.
            client = MlflowClient(tracking_uri(Paths(root / "home")))
            for model in ("churn", "ltv"):
                try:
                    client.get_model_version_by_alias(f"{c}-{model}", "champion")
                except Exception:
                    client.set_registered_model_alias(f"{c}-{model}", "champion", "1")
        first = {c: _score(instance, c, TRAINED_UNTIL) for c in CUSTOMERS}
        for c in CUSTOMERS:
            _load(instance, c, TRAINED_UNTIL + timedelta(days=1), SCORED_AFTER)
        later = {c: _score(instance, c, SCORED_AFTER) for c in CUSTOMERS}
        yield {"instance": instance, "paths": Paths(root / "home"), "trained": trained, "first": first, "later": later}
    mp.undo()


def _warehouse(world, customer):
    return duckdb.connect(str(world["paths"].warehouse(customer)), read_only=True)


def test_scores_are_published_with_percentile_band_reasons_and_revenue_at_risk(world):
    paths = world["paths"]
    with _warehouse(world, "stable") as con:
        scores = pl.DataFrame(con.sql("SELECT * FROM marts.user_scores WHERE day = ?", params=[TRAINED_UNTIL]))
        features = pl.DataFrame(con.sql("SELECT count(*) AS n FROM core.user_daily"))
    assert features["n"][0] > 0
    churn = scores.filter(pl.col("model") == "churn")
    assert churn.height > 300
    assert churn["score"].is_between(0, 1).all() and churn["percentile"].is_between(0, 100).all()
    # bands follow the percentiles: top 10% high, next 20% medium
    share = churn["band"].value_counts(normalize=True).to_dict(as_series=False)
    shares = dict(zip(share["band"], share["proportion"], strict=False))
    assert shares["high"] == pytest.approx(0.10, abs=0.03) and shares["medium"] == pytest.approx(0.20, abs=0.03)
    assert churn.filter(pl.col("band") == "high")["score"].min() >= churn.filter(pl.col("band") == "low")["score"].max()
    assert churn["reason_1"].null_count() == 0 and churn["reason_3"].null_count() == 0
    assert churn["registered_model"].unique().to_list() == ["stable-churn"]
    client = MlflowClient(tracking_uri(paths))
    assert churn["model_version"][0] == str(client.get_model_version_by_alias("stable-churn", "champion").version)
    # revenue at risk = p(churn) x predicted ltv, where the user has both scores
    ltv = scores.filter(pl.col("model") == "ltv")
    if ltv.height:
        both = churn.join(ltv.select("user_key", pl.col("score").alias("ltv")), on="user_key")
        assert both.height > 0
        np.testing.assert_allclose(both["revenue_at_risk"].to_numpy(), (both["score"] * both["ltv"]).to_numpy())
    # published atomically as Parquet and CSV with the same rows as the warehouse
    folder = paths.exports("stable")
    exported = pl.read_parquet(folder / f"user_scores_{TRAINED_UNTIL}.parquet")
    assert exported.height == scores.height
    assert pl.read_csv(folder / f"user_scores_{TRAINED_UNTIL}.csv").height == scores.height
    assert not list(folder.glob(".*.tmp"))
    latest = pl.read_parquet(folder / "user_scores_latest.parquet")
    assert latest["day"].unique().to_list() == [SCORED_AFTER]


def test_rescoring_a_day_replaces_it(world):
    instance = world["instance"]
    with _warehouse(world, "stable") as con:
        before = con.execute("SELECT count(*) FROM marts.user_scores WHERE day = ?", [TRAINED_UNTIL]).fetchall()[0][0]
    _score(instance, "stable", TRAINED_UNTIL)
    with _warehouse(world, "stable") as con:
        after = con.execute("SELECT count(*) FROM marts.user_scores WHERE day = ?", [TRAINED_UNTIL]).fetchall()[0][0]
        drift_rows = con.execute("SELECT count(*) FROM marts.model_drift WHERE day = ?", [TRAINED_UNTIL]).fetchall()[0][
            0
        ]
    assert after == before and drift_rows == 2


def test_no_drift_before_the_change_drift_after_it_in_the_changed_customer_only(world):
    first, later = world["first"], world["later"]
    for c in CUSTOMERS:
        assert meta(first[c], "model_drift")["retrain"] == {}, c
    assert meta(later["stable"], "model_drift")["retrain"] == {}
    asked = meta(later["shifted"], "model_drift")["retrain"]
    assert "shifted" in asked and asked["shifted"], asked
    with _warehouse(world, "shifted") as con:
        feats = pl.DataFrame(
            con.sql("SELECT * FROM marts.feature_drift WHERE day = ? AND model = 'churn'", params=[SCORED_AFTER])
        )
    task = feats.filter(pl.col("feature").str.contains("task_created")).sort("psi", descending=True)
    assert task["drifted"][0], task  # the changed event is what drifted
    with _warehouse(world, "stable") as con:
        quiet = pl.DataFrame(
            con.sql("SELECT * FROM marts.feature_drift WHERE day = ? AND model = 'churn'", params=[SCORED_AFTER])
        )
    assert quiet["drifted"].sum() <= 1


def test_realised_performance_of_published_scores(world):
    """Scores published on TRAINED_UNTIL matured 14 days later: their AUC against what happened is recorded
    and equals the AUC computed here from the published scores and the activity after that day."""
    with _warehouse(world, "stable") as con:
        row = con.execute(
            "SELECT realised_scored_day, realised_value, realised_test_value FROM marts.model_drift "
            "WHERE day = ? AND model = 'churn'",
            [SCORED_AFTER],
        ).fetchall()[0]
        published = pl.DataFrame(
            con.sql(
                "SELECT user_key, score FROM marts.user_scores WHERE model='churn' AND day=?", params=[TRAINED_UNTIL]
            )
        )
        active = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT user_key FROM core.user_daily WHERE day > ? AND day <= ?",
                [TRAINED_UNTIL, TRAINED_UNTIL + timedelta(days=14)],
            ).fetchall()
        }
    assert row[0] == TRAINED_UNTIL
    y = np.array([0 if u in active else 1 for u in published["user_key"]])
    assert row[1] == pytest.approx(classifier_metrics(y, published["score"].to_numpy())["roc_auc"], abs=1e-9)
    assert row[1] > 0.75 and row[2] is not None


def test_drift_sensor_retrains_only_the_changed_customer_through_the_gate(world):
    instance = world["instance"]
    with dg.build_sensor_context(instance=instance, resources=defs.resources) as ctx:
        result = retrain_on_drift(ctx)
    requests = result.run_requests
    assert requests and {r.partition_key for r in requests} == {"shifted"}
    assert all(r.tags["growth/trigger"] == "drift" and r.tags["growth/retrain_reason"] for r in requests)
    # the same events do not ask twice (the cursor moved), and a new drift within the cooldown is not acted on
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor) as ctx:
        again = retrain_on_drift(ctx)
    assert not again.run_requests
    paths = world["paths"]
    client = MlflowClient(tracking_uri(paths))
    req = requests[0]
    model = req.asset_selection[0].to_user_string().removesuffix("_model")
    before = client.get_model_version_by_alias(f"shifted-{model}", "champion").version
    run = dg.materialize(
        list(defs.assets),
        selection=[k.to_user_string() for k in req.asset_selection],
        instance=instance,
        resources=defs.resources,
        partition_key=req.partition_key,
        tags=req.tags,
        raise_on_error=False,
    )
    m = meta(run, f"{model}_model")
    assert m["trigger"].startswith("drift")
    versions = client.search_model_versions(f"name='shifted-{model}'")
    newest = max(versions, key=lambda v: int(v.version))
    mlflow_run = client.get_run(newest.run_id)
    assert mlflow_run.data.tags["trigger"] == "drift" and mlflow_run.data.tags["trigger.reason"]
    assert mlflow_run.data.tags["promotion.decision"] == m["outcome"]
    champion = client.get_model_version_by_alias(f"shifted-{model}", "champion").version
    if m["outcome"] == "promoted":
        assert str(champion) == str(newest.version)
    else:
        assert str(champion) == str(before)
    # the stable customer's models were not touched
    assert len(client.search_model_versions("name='stable-churn'")) == 1


def test_daily_schedule_requests_yesterday_for_every_customer_in_its_timezone(world):
    instance = world["instance"]
    at = datetime(2026, 5, 2, 6, 0, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at, resources=defs.resources) as ctx:
        requests = daily_refresh(ctx)
    # both test customers are in Asia/Kolkata (from the powerplay entry): at 06:00 UTC yesterday is May 1st
    assert sorted(r.partition_key for r in requests) == ["shifted|2026-05-01", "stable|2026-05-01"]
    assert all(r.tags["growth/customer"] == r.partition_key.split("|")[0] for r in requests)


def test_daily_stages_chain_from_ingest_to_outputs(world):
    """A day run by the jobs the schedule starts: each successful stage makes the sensor ask for the next."""
    instance = world["instance"]
    day = SCORED_AFTER + timedelta(days=1)
    request = dg.RunRequest(
        partition_key=f"stable|{day}",
        tags={"growth/customer": "stable", "growth/day": str(day), "growth/pipeline": "daily"},
    )
    job_name, seen = "daily_ingest", []
    while True:
        job = defs.resolve_job_def(job_name)
        result = job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=request.tags)
        assert result.success, job_name
        seen.append(job_name)
        success = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records[0]
        ctx = dg.build_run_status_sensor_context(
            sensor_name="daily_pipeline_next_stage",
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=success.event_log_entry.dagster_event,
        )
        nxt = daily_pipeline_next_stage(ctx)
        if not isinstance(nxt, dg.RunRequest):
            break
        job_name, request = nxt.job_name, nxt
    assert seen == ["daily_ingest", "customer_refresh", "daily_scoring", "customer_outputs"]
    with _warehouse(world, "stable") as con:
        assert con.execute("SELECT count(*) FROM marts.user_scores WHERE day = ?", [day]).fetchall()[0][0] > 0


def test_definitions_load_with_schedules_and_sensors(tmp_path):
    """What `dagster dev` loads: the repository's workspace.yaml and dagster.yaml, with both schedules and the
    three sensors."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "GROWTH_HOME": str(tmp_path / "growth")}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "All code locations passed validation" in done.stderr + done.stdout, done.stderr
    dg.Definitions.validate_loadable(defs)
    assert {s.name for s in defs.schedules} == {"daily_refresh", "weekly_retrain"}
    weekly = defs.resolve_schedule_def("weekly_retrain")
    assert weekly.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {s.name for s in defs.sensors} >= {"retrain_on_drift", "daily_pipeline_next_stage", "customer_registry"}


def _chromium():
    """Debian's Chromium and ChromeDriver driven by Selenium; skipped without them, except under CI."""
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chrome or not driver:
        if os.environ.get("CI"):
            pytest.fail("chromium / chromedriver missing: run ./dev system-packages")
        pytest.skip("chromium / chromedriver not installed (./dev system-packages)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,2000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.mark.browser
def test_analytics_and_customer_report_render_in_a_real_browser(world, tmp_path):
    """After scoring: the analytics assets and the report; the report opens in headless Chromium with every
    chart loaded and no console error, and shows the published scores and the models in service."""
    instance, paths = world["instance"], world["paths"]
    result = dg.materialize(
        list(defs.assets),
        selection=["channels", "top_users", "channel_ltv", "cohort_retention", "campaign_lift", "customer_report"],
        instance=instance,
        resources=defs.resources,
        partition_key="stable",
    )
    assert result.success
    channels = meta(result, "channels")
    with _warehouse(world, "stable") as con:
        latest = con.execute("SELECT max(day) FROM core.user_daily").fetchall()[0][0]
    assert "users_by_channel" in channels and channels["as_of"] == str(latest)
    index = paths.reports("stable") / "index.html"
    page = index.read_text()
    assert "Churn risk" in page and "Revenue at risk" in page and "Weekly cohort retention" in page
    driver = _chromium()
    try:
        driver.get(index.as_uri())
        images = driver.find_elements("tag name", "img")
        assert len(images) >= 8
        broken = [
            i.get_attribute("src")
            for i in images
            if not driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
        ]
        assert broken == []
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert "stable-churn" in driver.find_element("tag name", "body").text
    finally:
        driver.quit()
    # a chart that is missing shows as broken: the check above can fail
    first = sorted((paths.reports("stable") / "charts").glob("*.png"))[0]
    first.rename(tmp_path / first.name)
    driver = _chromium()
    try:
        driver.get(index.as_uri())
        images = driver.find_elements("tag name", "img")
        assert any(
            not driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
            for i in images
        )
    finally:
        driver.quit()
