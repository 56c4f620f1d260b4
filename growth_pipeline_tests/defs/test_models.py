"""The feature and model assets end to end: real Dagster runs, a real DuckDB warehouse, real CatBoost training
and a real MLflow store in a temporary folder."""

from datetime import date, timedelta

import dagster as dg
import mlflow
import pytest
from mlflow import MlflowClient

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, customers_yaml, load_customers
from growth_pipeline.definitions import defs
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.models.mlflow_store import tracking_uri
from growth_pipeline.pipeline_shape import MODEL_ASSET_NAMES
from growth_pipeline_tests.warehouse_builder import materialize_load_stages

START = date(2026, 1, 1)
DAYS = 110
MODELS = list(MODEL_ASSET_NAMES)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    generate_demo(DemoSpec("powerplay", n_users=1500, start=START, days=DAYS, seed=11), root / "src")
    generate_demo(DemoSpec("powerplay", n_users=60, start=START, days=40, seed=5), root / "tiny")
    cfg = root / "customers.yaml"
    powerplay = load_customers(REPO_ROOT / "customers.yaml").get("powerplay")
    pp = customer_like(powerplay, "pp", root / "src", conversion={"horizon_days": 14}, ltv={"horizon_days": 14})
    tiny = customer_like(powerplay, "tiny", root / "tiny", goal={"enabled": False})
    cfg.write_text(customers_yaml([pp, tiny]))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTH_HOME", str(root / "home"))
    mp.setenv("GROWTH_CUSTOMERS", str(cfg))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("customer", ["pp", "tiny"])
        for customer, days in (("pp", DAYS), ("tiny", 40)):
            end = START + timedelta(days=days - 1)
            materialize_load_stages(instance, customer, START, end)
        yield instance, Paths(root / "home")
    mp.undo()


def materialize_models(instance, customer):
    return dg.materialize(
        list(defs.assets),
        selection=["user_features", *MODELS],
        instance=instance,
        resources=defs.resources,
        partition_key=customer,
        raise_on_error=False,
    )


def meta(result, asset):
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def test_models_train_log_to_mlflow_and_go_through_the_gate(pipeline):
    instance, paths = pipeline
    first = materialize_models(instance, "pp")
    features = meta(first, "user_features")
    assert features["users"] > 500 and features["features"] > 40
    client = MlflowClient(tracking_uri(paths))
    for asset in MODELS:
        name = asset.removesuffix("_model")
        m = meta(first, asset)
        assert m["outcome"] in {"promoted", "refused"}, m
        metrics = m["metrics"]
        primary = "normalized_gini" if name == "ltv" else "roc_auc"
        baselines = ("linear", "historical_average", "rule") if name == "ltv" else ("logistic", "rule")
        assert all(f"{b}.{primary}" in metrics for b in baselines)
        assert "oracle." + primary in metrics  # the demo's truth file gives the best achievable
        run_id = m["mlflow_run"].rsplit("/", 1)[-1]
        run = client.get_run(run_id)
        assert run.data.tags["customer"] == "pp" and run.data.tags["dagster_run_id"] == first.run_id
        assert "catboost.depth" in run.data.params and "label.horizon_days" in run.data.params
        assert f"model.{primary}" in run.data.metrics and f"rule.{primary}" in run.data.metrics
        arts = {a.path for a in client.list_artifacts(run_id)} | {
            a.path for a in client.list_artifacts(run_id, "charts")
        }
        assert {
            "charts/gains_and_lift.png",
            "shap_summary.png",
            "feature_importance.csv",
            "reasons_test_set.csv",
        } <= arts
        # every explained user gets three reasons in words, e.g. "no activity for 12 days"
        assert m["highest_scores_with_reasons"].count("\n") >= 5
        reasons = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/reasons_test_set.csv")
        header, top_row = reasons.splitlines()[:2]
        assert header == "user_key,score,label,reason_1,reason_2,reason_3" and top_row.count(",") >= 5
        version = client.get_model_version_by_alias(f"pp-{name}", "challenger")
        assert str(version.version) == "1"
        promoted = m["outcome"] == "promoted"
        has_champion = "champion" in client.get_registered_model(f"pp-{name}").aliases
        assert promoted == has_champion
        checks = {c.asset_key.to_user_string(): c.passed for c in first.get_asset_check_evaluations()}
        assert checks[asset] == promoted

    # retraining on the same data: the new version is judged against the champion on the same test set
    second = materialize_models(instance, "pp")
    churn = meta(second, "churn_model")
    if meta(first, "churn_model")["outcome"] == "promoted":
        assert "champion.roc_auc" in churn["metrics"]
        champion = client.get_model_version_by_alias("pp-churn", "champion")
        expected = "2" if churn["outcome"] == "promoted" else "1"
        assert str(champion.version) == expected
    assert str(client.get_model_version_by_alias("pp-churn", "challenger").version) == "2"


def test_a_customer_with_too_little_data_gets_not_enough_data_not_a_crash(pipeline):
    instance, paths = pipeline
    result = materialize_models(instance, "tiny")
    assert result.success  # a warning, not a failed run
    for asset in MODELS:
        if asset == "goal_model":
            continue  # the goal model is disabled for this customer
        m = meta(result, asset)
        assert m["outcome"] == "not enough data"
        assert "days of data" in m["reason"] or "positives" in m["reason"], m["reason"]
    assert meta(result, "goal_model")["outcome"] == "disabled"


def test_the_pipeline_does_not_import_the_demo():
    """The demo's oracle reaches training only through the demo customers' reference_scores hook."""
    import subprocess
    import sys

    code = "import sys, growth_pipeline.definitions; print(sorted(m for m in sys.modules if '.lib.demo' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
