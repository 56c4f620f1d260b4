"""Loading registered models, promotion aliases and tags, and why a model has no champion
(growth_pipeline.lib.models.registry)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from growth_pipeline.lib.models import registry, run_logging
from growth_pipeline.lib.models.promotion import Decision, decide
from growth_pipeline_tests.lib.models.trained_models import CATS, FEATURES, SPLIT, log_run


def test_load_model_predicts_like_the_trained_model(store, clf_tm):
    _, uri, root, _ = store
    logged = log_run(clf_tm, uri, root)
    loaded = registry.load_model(uri, "acme-conversion", alias="challenger")
    assert loaded is not None
    assert (loaded.version, loaded.run_id, loaded.kind) == ("1", logged.run_id, "classifier")
    assert loaded.feature_names == FEATURES and loaded.cat_features == CATS
    assert loaded.label_definition == clf_tm.label_definition and loaded.split == SPLIT.as_dict()
    assert loaded.metrics["model.roc_auc"] == pytest.approx(clf_tm.metrics["model.roc_auc"])
    assert loaded.calibrator.to_dict() == clf_tm.calibrator.to_dict()
    np.testing.assert_array_equal(loaded.predict(clf_tm.test_frame), clf_tm.predict(clf_tm.test_frame))
    # a frame without a column and with a null category still scores (model_input fills them)
    partial = clf_tm.test_frame.drop("revenue_28d").with_columns(pl.lit(None, pl.Utf8).alias("plan"))
    assert np.isfinite(loaded.predict(partial)).all()

    assert registry.load_model(uri, "acme-conversion") is None  # no champion yet
    assert registry.load_model(uri, "acme-conversion", alias="nope") is None
    assert registry.load_model(uri, "nobody-conversion", alias="challenger") is None


def test_promotion_aliases_and_tags(store, clf_tm):
    _, uri, root, _ = store
    client = MlflowClient(uri, registry_uri=uri)

    first = log_run(clf_tm, uri, root, run="run-1")
    d1 = decide("classifier", clf_tm.metrics, has_champion=False)
    assert d1.promote and d1.champion_value is None
    registry.record_decision(uri, first, d1)
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"
    assert registry.champion_version(uri, "acme-conversion") == "1"
    r1 = client.get_run(first.run_id).data.tags
    assert r1["promotion.decision"] == "promoted" and r1["promotion.champion_version_before"] == "none"
    assert r1["promotion.reason"] == d1.reason

    champ = registry.load_model(uri, "acme-conversion")
    m2 = {
        **clf_tm.metrics,
        "champion.roc_auc": float(
            roc_auc_score(clf_tm.test_frame["label"].to_numpy(), champ.predict(clf_tm.test_frame))
        ),
    }
    second = log_run(replace(clf_tm, metrics=m2), uri, root, run="run-2")
    assert second.version == "2"
    d2 = decide("classifier", m2, has_champion=True, champion_version=champ.version)
    assert not d2.promote and d2.beats_baselines and d2.reason.startswith("champion v1 keeps")
    registry.record_decision(uri, second, d2)
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("acme-conversion", "challenger").version) == "2"
    r2 = client.get_run(second.run_id).data
    assert r2.tags["promotion.decision"] == "kept" and r2.tags["promotion.champion_version_before"] == "1"
    assert r2.metrics["champion.roc_auc"] == pytest.approx(m2["champion.roc_auc"])
    v2 = client.get_model_version("acme-conversion", "2").tags
    assert v2["promotion.decision"] == "kept" and v2["promotion.reason"] == d2.reason
    assert client.get_model_version("acme-conversion", "1").tags["promotion.decision"] == "promoted"

    refused = Decision(
        promote=False,
        beats_baselines=False,
        reason="model roc_auc 0.5 does not beat logistic 0.6",
        primary_metric="roc_auc",
        new_value=0.5,
        champion_value=None,
    )
    registry.record_decision(uri, second, refused)
    assert client.get_run(second.run_id).data.tags["promotion.decision"] == "refused"
    assert str(client.get_model_version_by_alias("acme-conversion", "champion").version) == "1"


def test_why_a_model_has_no_champion_in_words(store, clf_tm):
    _, uri, root, _ = store
    assert registry.why_no_champion(uri, "acme", "conversion") == "no champion: never trained"
    run_id = run_logging.log_not_enough_data(
        uri, root, "acme", "conversion", "conversion: fewer than 10 users who converted in a 30-day window"
    )
    assert registry.why_no_champion(uri, "acme", "conversion") == (
        "no model: not enough data (conversion: fewer than 10 users who converted in a 30-day window)"
    )
    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    logged = log_run(clf_tm, uri, root)
    registry.record_decision(
        uri,
        logged,
        Decision(
            promote=False,
            beats_baselines=False,
            reason="model roc_auc 0.55 does not beat rule 0.58",
            primary_metric="roc_auc",
            new_value=0.55,
            champion_value=None,
        ),
    )
    assert registry.why_no_champion(uri, "acme", "conversion") == (
        "no champion: no candidate beat the one-feature rule on the test set "
        "(model roc_auc 0.55 does not beat rule 0.58)"
    )
