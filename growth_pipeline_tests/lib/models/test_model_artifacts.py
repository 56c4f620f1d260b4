"""What is logged beside a model: its signature and SHAP summary (growth_pipeline.lib.models.model_artifacts)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from growth_pipeline.lib.models import mlflow_store, model_artifacts
from growth_pipeline_tests.lib.models.trained_models import CATS, FEATURES, log_run


def test_signature_is_typed(store, clf_tm):
    _, uri, root, _ = store
    logged = log_run(clf_tm, uri, root)
    from mlflow.models import get_model_info

    with mlflow_store.mlflow_uris(uri):
        info = get_model_info(logged.model_uri)
    inputs = {c["name"]: c["type"] for c in info.signature.inputs.to_dict()}
    assert inputs == {"sessions_7d": "double", "days_active_28d": "double", "plan": "string", "revenue_28d": "double"}
    assert info.signature.outputs is not None


def test_shap_plot_caps_rows_and_falls_back_to_category_codes(clf_tm, monkeypatch):
    import shap

    big = pl.concat([clf_tm.test_frame] * 11)  # 2,200 rows
    tm = replace(clf_tm, test_frame=big, shap_values=np.vstack([clf_tm.shap_values] * 11))
    real, seen = shap.summary_plot, []

    def picky(sv, features, **kw):  # a shap that refuses string columns
        seen.append((sv.shape, list(features.dtypes.astype(str))))
        if any(features[c].dtype == object or str(features[c].dtype) in ("str", "string") for c in CATS):
            raise TypeError("could not convert string to float: 'pro'")
        return real(sv, features, **kw)

    monkeypatch.setattr(shap, "summary_plot", picky)
    png, note = model_artifacts.shap_summary_png(tm)
    assert note is None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert [shape for shape, _ in seen] == [(model_artifacts.SHAP_MAX_ROWS, 4)] * 2
    assert seen[1][1][FEATURES.index("plan")].startswith("int")

    png, note = model_artifacts.shap_summary_png(replace(clf_tm, shap_values=clf_tm.shap_values[:, :2]))
    assert png is None and "shape" in note
