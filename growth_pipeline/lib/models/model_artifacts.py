"""What a training run stores besides its metrics and parameters, and how it is read back: the serving estimator
in its MLflow flavour (CatBoost, scikit-learn, a pyfunc for buy-till-you-die) with a typed signature and pinned
requirements, what loading needs besides it (``model_meta.json``'s estimator part), the SHAP summary plot and the
drift reference. Called by :mod:`~growth_pipeline.lib.models.run_logging` and
:mod:`~growth_pipeline.lib.models.registry`; no Dagster import."""

from __future__ import annotations

import logging
import tempfile
import threading
from typing import Any

import numpy as np
import polars as pl

from growth_pipeline.lib.models import candidates
from growth_pipeline.lib.models.mlflow_store import mlflow_client, mlflow_uris, retry
from growth_pipeline.lib.models.model_types import TrainedModel, model_input

log = logging.getLogger(__name__)

SHAP_MAX_ROWS = 2000
REFERENCE_MAX_ROWS = 20000  # the drift reference: a sample of the test population with its scores
REFERENCE_ARTIFACT = "drift_reference.parquet"
SIGNATURE_ROWS = 5
_PLOT_LOCK = threading.Lock()


def shap_summary_png(tm: TrainedModel) -> tuple[bytes | None, str | None]:
    """The SHAP summary (beeswarm) as PNG bytes, or ``(None, reason)`` when it cannot be drawn."""
    if tm.shap_values is None:
        return None, "no SHAP values: shap_summary.png not logged"
    sv = np.asarray(tm.shap_values, dtype=np.float64)
    n_feat = len(tm.feature_names)
    if sv.ndim == 2 and sv.shape[1] == n_feat + 1:  # CatBoost's expected-value column left in
        sv = sv[:, :n_feat]
    if sv.ndim != 2 or sv.shape != (tm.test_frame.height, n_feat):
        return None, (
            f"SHAP values have shape {sv.shape}, expected ({tm.test_frame.height}, {n_feat}): "
            f"shap_summary.png not logged"
        )
    idx = np.arange(sv.shape[0])
    if len(idx) > SHAP_MAX_ROWS:
        idx = np.sort(np.random.default_rng(0).choice(len(idx), SHAP_MAX_ROWS, replace=False))
    sv = sv[idx]
    x = model_input(tm.test_frame[idx.tolist()], tm.feature_names, tm.cat_features).to_pandas()

    import io

    import matplotlib

    with _PLOT_LOCK:
        import sys

        if "matplotlib.pyplot" not in sys.modules:
            matplotlib.use("Agg")  # headless; never opens a window
        import matplotlib.pyplot as plt
        import shap

        def draw(features) -> bytes:
            existing = set(plt.get_fignums())  # the caller's figures (a notebook's) are left alone
            try:
                plt.figure()
                shap.summary_plot(sv, features, feature_names=tm.feature_names, show=False, rng=0)
                buf = io.BytesIO()
                plt.gcf().savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
                return buf.getvalue()
            finally:
                for num in set(plt.get_fignums()) - existing:
                    plt.close(num)

        try:
            return draw(x), None
        except (TypeError, ValueError) as exc:  # categorical strings: plot their category codes instead
            log.info("shap.summary_plot refused string columns (%s); using category codes", exc)
            coded = x.copy()
            for c in tm.cat_features:
                coded[c] = coded[c].astype("category").cat.codes
            try:
                return draw(coded), None
            except Exception as exc2:  # a plot must never fail the training run
                return None, f"shap summary plot failed ({type(exc2).__name__}: {exc2}): not logged"


def signature_and_example(tm: TrainedModel):
    from mlflow.models import infer_signature

    sample = model_input(tm.test_frame.head(SIGNATURE_ROWS), tm.feature_names, tm.cat_features).to_pandas()
    # object columns for strings: MLflow maps them to "string" on every pandas version
    for c in tm.cat_features:
        sample[c] = sample[c].astype(object)
    if tm.family == "catboost":
        output = tm.model.predict(sample)  # what the catboost pyfunc flavour returns (class labels / values)
    else:
        output = candidates.raw_scores(
            tm.family, tm.kind, tm.model, tm.feature_names, tm.cat_features, tm.test_frame.head(SIGNATURE_ROWS)
        )
    return infer_signature(sample, output), sample


def _pip_requirements(family: str = "catboost") -> list[str]:
    """Pinned requirements of a logged model (MLflow adds ``mlflow==<version>`` itself).

    Given explicitly: MLflow's inference either exports the whole uv project when the working directory holds
    one (143 packages, and it depends on where the process runs) or loads the model in a subprocess
    (~10 s per model). What a CatBoost pyfunc needs is known."""
    from importlib.metadata import version

    packages = {
        "catboost": ("catboost", "numpy", "pandas"),
        "logistic": ("scikit-learn", "numpy", "pandas"),
        "linear": ("scikit-learn", "numpy", "pandas"),
        "btyd": ("numpy", "scipy", "polars"),
    }[family]
    return [f"{pkg}=={version(pkg)}" for pkg in packages]


def _btyd_pyfunc(params: dict):
    """A buy-till-you-die candidate as an MLflow pyfunc model: its parameters in the pickled object, predicting
    from the same feature columns the pipeline scores with (growth_pipeline must be importable to load it)."""
    import mlflow.pyfunc

    from growth_pipeline.lib.models.purchase_models import BtydPredictor

    class BtydModel(mlflow.pyfunc.PythonModel):
        def __init__(self, params: dict):
            self.params = params

        def predict(self, context, model_input, params=None):
            return BtydPredictor.from_dict(self.params).predict(pl.from_pandas(model_input))

    return BtydModel(params)


def log_estimator(tm: TrainedModel, signature, example):
    """Log the serving family's estimator as an MLflow model in its own flavour."""
    import mlflow.catboost
    import mlflow.pyfunc
    import mlflow.sklearn

    common = dict(
        name="model", signature=signature, input_example=example, pip_requirements=_pip_requirements(tm.family)
    )
    if tm.family == "catboost":
        return mlflow.catboost.log_model(tm.model, **common)
    if tm.family in ("logistic", "linear"):
        return mlflow.sklearn.log_model(tm.model.pipeline, serialization_format="cloudpickle", **common)
    if tm.family == "btyd":
        return mlflow.pyfunc.log_model(python_model=_btyd_pyfunc(tm.model.to_dict()), **common)
    raise ValueError(f"unknown model family {tm.family!r}")


def drift_reference(tm: TrainedModel, max_rows: int = REFERENCE_MAX_ROWS) -> pl.DataFrame:
    """What drift is measured against: the model's inputs on its test snapshot (the latest matured population,
    the same shape as a day's scoring population) and the model's scores, at most ``max_rows`` rows."""
    frame = model_input(tm.test_frame, tm.feature_names, tm.cat_features)
    score = tm.test_predictions.get("model")
    if score is None:
        score = tm.predict(tm.test_frame)
    frame = frame.with_columns(pl.Series("__score__", np.asarray(score, dtype=np.float64)))
    if frame.height > max_rows:
        frame = frame.sample(n=max_rows, seed=0)
    return frame


def importance_share(tm: TrainedModel) -> dict[str, float]:
    if tm.shap_values is None or len(tm.shap_values) == 0:
        return {}
    mean_abs = np.abs(np.asarray(tm.shap_values)).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    return {f: float(v / total) for f, v in zip(tm.feature_names, mean_abs, strict=False)}


def estimator_meta(tm: TrainedModel) -> dict | None:
    """What loading needs besides the MLflow model: a linear model's column owners and training means (for its
    explanations), a buy-till-you-die model's parameters."""
    if tm.family in ("logistic", "linear"):
        return {"owner": tm.model.owner.tolist(), "reference": tm.model.reference.tolist()}
    if tm.family == "btyd":
        return tm.model.to_dict()
    return None


def load_estimator(tracking_uri: str, model_uri: str, family: str, estimator_meta: dict | None) -> Any:
    """The serving family's estimator, as training built it (see TrainedModel.model)."""
    import mlflow.catboost
    import mlflow.sklearn

    from growth_pipeline.lib.models.purchase_models import BtydPredictor

    with mlflow_uris(tracking_uri):
        if family == "catboost":
            return mlflow.catboost.load_model(model_uri)
        if family in ("logistic", "linear"):
            pipeline = mlflow.sklearn.load_model(model_uri)
            return candidates.LinearModel(
                pipeline,
                np.asarray(estimator_meta["owner"], dtype=np.int64),
                np.asarray(estimator_meta["reference"], dtype=np.float64),
            )
    if family == "btyd":
        return BtydPredictor.from_dict(estimator_meta)
    raise ValueError(f"{model_uri}: unknown model family {family!r}")


def load_reference(tracking_uri: str, run_id: str) -> pl.DataFrame | None:
    """The drift reference artifact of a run, or None when the run has none."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
        try:
            path = retry(client.download_artifacts, run_id, REFERENCE_ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        return pl.read_parquet(path)
