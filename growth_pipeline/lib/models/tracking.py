"""MLflow tracking and model registry of trained models (MLflow called directly; no Dagster import).

One MLflow experiment per customer and model (``<customer>/<model_name>``), one run per training, one registered
model per customer and model (``<customer>-<model_name>``). Promotion uses registry **aliases** (stages are
deprecated): every new version gets ``challenger``; :func:`record_decision` moves ``champion`` when the rule of
:mod:`growth_pipeline.lib.models.promotion` says so.

Where things go
    :func:`tracking_uri` is ``MLFLOW_TRACKING_URI`` when set, else a SQLite store under ``paths.mlflow_dir``;
    experiments created here on a local store keep their artifacts under ``<mlflow_dir>/artifacts``. Nothing is
    ever written to the working directory (MLflow's own default is ``./mlflow.db`` and ``./mlruns``).

The fluent MLflow API (``mlflow.catboost.log_model`` and ``mlflow.register_model`` need it) reads a process-wide
tracking URI; :func:`_mlflow_uris` sets it for the duration of one call and restores the previous value and the
``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` environment variables afterwards, under a lock.

SQLite stores written by several processes at once can fail with "database is locked"; store calls go through
:func:`_retry` (5 tries, exponential backoff with jitter). An ``mlflow server`` or Postgres in front avoids it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl

from growth_pipeline.lib.models import candidates
from growth_pipeline.lib.models.model_types import TrainedModel, model_input

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from growth_pipeline.config import Paths
    from growth_pipeline.lib.models.promotion import Decision

log = logging.getLogger(__name__)
# MLflow draws a progress bar for every artifact download (a model, a drift reference): noise in run logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_UI_URL = "http://127.0.0.1:5000"
CHAMPION, CHALLENGER = "champion", "challenger"
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
MAX_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
SHAP_MAX_ROWS = 2000
REFERENCE_MAX_ROWS = 20000  # the drift reference: a sample of the test population with its scores
REFERENCE_ARTIFACT = "drift_reference.parquet"
SIGNATURE_ROWS = 5
LOCK_RETRIES = 5
LOCK_BACKOFF_SECONDS = 0.25
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")
_URI_LOCK = threading.RLock()
_PLOT_LOCK = threading.Lock()

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- locations


def tracking_uri(paths: Paths) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<paths.mlflow_dir>/mlflow.db`` (the folder is created)."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    folder = Path(paths.mlflow_dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'mlflow.db').as_posix()}"


def artifact_root(paths: Paths) -> str:
    """File URI of ``<paths.mlflow_dir>/artifacts``: the artifact location of experiments created on a local store."""
    folder = Path(paths.mlflow_dir).expanduser().resolve() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def is_local_store(uri: str) -> bool:
    """True for stores this process writes itself (sqlite, other databases, file): artifacts are ours to place.
    False for a tracking server (http/https/databricks), which decides where artifacts go."""
    return not uri.lower().startswith(("http://", "https://", "databricks"))


def run_url(experiment_id: str, run_id: str) -> str:
    ui = os.environ.get("MLFLOW_UI_URL", "").strip() or DEFAULT_UI_URL
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def registered_model_name(customer: str, model_name: str) -> str:
    return f"{customer}-{model_name}"


def experiment_name(customer: str, model_name: str) -> str:
    return f"{customer}/{model_name}"


# ------------------------------------------------------------------------------------------------------ helpers


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(exc).lower()


def _retry(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``; on "database is locked" (SQLite with concurrent writers) try again, at most 5 times."""
    for attempt in range(LOCK_RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_locked(exc) or attempt == LOCK_RETRIES - 1:
                raise
            delay = LOCK_BACKOFF_SECONDS * (2**attempt) * (1 + random.random())
            log.warning(
                "MLflow store is locked (%s); retry %d/%d in %.2fs",
                getattr(fn, "__name__", fn),
                attempt + 1,
                LOCK_RETRIES - 1,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def _client(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def _mlflow_uris(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking and registry URIs at ``uri`` for the block, then restore them."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    env_keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    with _URI_LOCK:
        saved_env = {k: os.environ.get(k) for k in env_keys}
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved_tracking)  # None unsets MLFLOW_TRACKING_URI: restored just below
            registry_utils._registry_uri = saved_registry
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _secret_values() -> list[str]:
    """Values of environment variables whose names look like credentials (long enough to be unambiguous)."""
    return sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def _key(name: str) -> str:
    """A valid MLflow param/tag key: unsupported characters become ``_``."""
    return _BAD_KEY_CHARS.sub("_", str(name))[:MAX_KEY]


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict), default=str)
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _chunks(value: str, limit: int, sep: str | None = None) -> list[str]:
    """Split ``value`` into pieces of at most ``limit`` characters, at ``sep`` boundaries when possible."""
    if len(value) <= limit:
        return [value]
    if sep:
        out, cur = [], ""
        for part in value.split(sep):
            cand = part if not cur else cur + sep + part
            if len(cand) <= limit:
                cur = cand
                continue
            if cur:
                out.append(cur)
            while len(part) > limit:  # a single item longer than the limit: hard split
                out.append(part[:limit])
                part = part[limit:]
            cur = part
        if cur:
            out.append(cur)
        return out
    return [value[i : i + limit] for i in range(0, len(value), limit)]


def _put_param(params: dict[str, str], key: str, value: Any, sep: str | None = None) -> None:
    """``params[key] = value``, or ``key.1``, ``key.2``, ... when the value is longer than MLflow allows."""
    text = _stringify(value)
    pieces = _chunks(text, MAX_PARAM_VALUE, sep)
    if len(pieces) == 1:
        params[_key(key)] = pieces[0]
    else:
        for i, piece in enumerate(pieces, start=1):
            params[_key(f"{key}.{i}")] = piece


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


# ------------------------------------------------------------------------------------------------- experiments


def ensure_experiment(client: MlflowClient, customer: str, model_name: str, artifact_root: str | None) -> str:
    """Id of the experiment ``<customer>/<model_name>``, created (tags customer, model) or restored if needed.

    A new experiment on a local store gets ``<artifact_root>/<customer>/<model_name>`` as artifact location;
    with ``artifact_root=None`` the tracking server chooses.
    """
    from mlflow.exceptions import MlflowException

    name = experiment_name(customer, model_name)
    exp = _retry(client.get_experiment_by_name, name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            _retry(client.restore_experiment, exp.experiment_id)
        return exp.experiment_id
    location = f"{artifact_root.rstrip('/')}/{customer}/{model_name}" if artifact_root else None
    try:
        return _retry(
            client.create_experiment, name, artifact_location=location, tags={"customer": customer, "model": model_name}
        )
    except MlflowException as exc:  # another process created it between our lookup and create
        exp = _retry(client.get_experiment_by_name, name)
        if exp is None:
            raise
        log.info("experiment %s was created concurrently (%s)", name, exc.error_code)
        return exp.experiment_id


# ----------------------------------------------------------------------------------------------------- logging


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    experiment_id: str
    run_name: str
    run_url: str
    model_uri: str  # models:/<registered_name>/<version>
    registered_name: str
    version: str


def _run_name(tm: TrainedModel) -> str:
    return f"{tm.customer}-{tm.model_name}-{tm.split.test.isoformat()}"


def _params(tm: TrainedModel) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in sorted((tm.catboost_params or {}).items()):
        _put_param(params, f"catboost.{name}", value)
    for name, value in sorted((tm.family_params or {}).items()):
        _put_param(params, f"{tm.family}.{name}", value)
    for name, value in sorted((tm.label_definition or {}).items()):
        _put_param(params, f"label.{name}", value)
    params["family"] = tm.family
    params["training.user_weights"] = str(tm.weights).lower()
    params["features.count"] = str(len(tm.feature_names))
    _put_param(params, "features.list", ",".join(tm.feature_names), sep=",")
    _put_param(params, "features.categorical", ",".join(tm.cat_features), sep=",")
    split = tm.split.as_dict()
    _put_param(params, "split.train", ",".join(split["train"]), sep=",")
    params["split.valid"] = split["valid"]
    _put_param(params, "split.valid_all", ",".join(split["valid_all"]), sep=",")
    params["split.test"] = split["test"]
    params["split.step_days"] = str(split["step_days"])
    return params


def _metrics(tm: TrainedModel) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (tm.metrics or {}).items():
        if value is None or not _is_number(value) or math.isnan(float(value)):
            continue
        out[name] = float(value)
    for split, n in (tm.rows or {}).items():
        if n is not None and _is_number(n):
            out[f"rows.{split}"] = float(n)
    return out


def _description(tm: TrainedModel, extra_notes: list[str]) -> str:
    primary = tm.primary_metric
    val = tm.metrics.get(f"model.{primary}") if tm.metrics else None
    val_txt = f"{val:.4f}" if _is_number(val) and not math.isnan(float(val)) else "n/a"
    train = [d.isoformat() for d in tm.split.train]
    train_txt = f"{train[0]} to {train[-1]} ({len(train)} snapshots)" if train else "no snapshots"
    label = ", ".join(f"{k}={_stringify(v)}" for k, v in sorted((tm.label_definition or {}).items()))
    rows = ", ".join(f"{k} {v}" for k, v in (tm.rows or {}).items())
    text = (
        f"{candidates.describe_family(tm.family, tm.kind)} serving '{tm.model_name}' for customer "
        f"'{tm.customer}' on {len(tm.feature_names)} features "
        f"({len(tm.cat_features)} categorical); label: {label or 'n/a'}. Trained on as-of dates {train_txt}, "
        f"validated on {tm.split.valid.isoformat()}, tested on {tm.split.test.isoformat()}; rows: {rows or 'n/a'}. "
        f"Test {primary} of the model: {val_txt}; every candidate (catboost, logistic/linear, btyd), the rule "
        f"and historical-average baselines and the champion are in this run's metrics, with 90% intervals."
    )
    notes = [*(tm.notes or []), *extra_notes]
    if notes:
        text += " Notes: " + " ".join(n.rstrip(".") + "." for n in notes)
    return text


def _shap_png(tm: TrainedModel) -> tuple[bytes | None, str | None]:
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


def _signature_and_example(tm: TrainedModel):
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


def _log_estimator(tm: TrainedModel, signature, example):
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


def _importance_share(tm: TrainedModel) -> dict[str, float]:
    if tm.shap_values is None or len(tm.shap_values) == 0:
        return {}
    mean_abs = np.abs(np.asarray(tm.shap_values)).mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    return {f: float(v / total) for f, v in zip(tm.feature_names, mean_abs, strict=False)}


def _estimator_meta(tm: TrainedModel) -> dict | None:
    """What loading needs besides the MLflow model: a linear model's column owners and training means (for its
    explanations), a buy-till-you-die model's parameters."""
    if tm.family in ("logistic", "linear"):
        return {"owner": tm.model.owner.tolist(), "reference": tm.model.reference.tolist()}
    if tm.family == "btyd":
        return tm.model.to_dict()
    return None


def log_training_run(
    tm: TrainedModel,
    *,
    tracking_uri: str,
    artifact_root: str | None,
    dagster_run_id: str,
    code_version: str,
    partition: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> LoggedRun:
    """Log ``tm`` as one MLflow run, register its model as a new version with alias ``challenger``.

    ``extra_tags`` (e.g. why the run was started: ``trigger=drift``, the drift reason) are added to the run.

    The run ends FINISHED, or FAILED when anything raises (the exception propagates).
    """
    import mlflow
    import mlflow.catboost

    if artifact_root and not is_local_store(tracking_uri):
        log.info(
            "tracking server %s decides artifact locations; ignoring artifact_root %s", tracking_uri, artifact_root
        )
        artifact_root = None
    client = _client(tracking_uri)
    exp_id = ensure_experiment(client, tm.customer, tm.model_name, artifact_root)
    name = _run_name(tm)
    reg_name = registered_model_name(tm.customer, tm.model_name)
    secrets = _secret_values()

    shap_png, shap_note = _shap_png(tm)
    extra_notes = [shap_note] if shap_note else []
    train_dates = sorted(tm.split.train)
    tags = {
        "customer": tm.customer,
        "model": tm.model_name,
        "kind": tm.kind,
        "as_of_train_first": train_dates[0].isoformat() if train_dates else "",
        "as_of_train_last": train_dates[-1].isoformat() if train_dates else "",
        "as_of_valid": tm.split.valid.isoformat(),
        "as_of_test": tm.split.test.isoformat(),
        "dagster_run_id": dagster_run_id,
        "code_version": code_version,
        "primary_metric": tm.primary_metric,
        "family": tm.family,
        "mlflow.note.content": _description(tm, extra_notes)[:MAX_TAG_VALUE],
    }
    if partition is not None:
        tags["partition"] = partition
    tags.update(extra_tags or {})
    if shap_note:
        tags["shap_summary"] = "skipped"
    tags = {k: _redact(str(v), secrets) for k, v in tags.items()}
    params = {k: _redact(v, secrets) for k, v in _params(tm).items()}
    metrics = _metrics(tm)

    with _mlflow_uris(tracking_uri):
        run = _retry(mlflow.start_run, experiment_id=exp_id, run_name=name, tags=tags)
        with run:  # ends the run: FINISHED, or FAILED on an exception
            run_id = run.info.run_id
            from mlflow.entities import Metric, Param

            now = int(time.time() * 1000)
            _retry(
                client.log_batch,
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )

            with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
                tmpdir = Path(tmp)
                if tm.charts:
                    charts = tmpdir / "charts"
                    charts.mkdir()
                    for fname, data in tm.charts.items():
                        (charts / Path(fname).name).write_bytes(data)
                    mlflow.log_artifacts(str(charts), artifact_path="charts")
                if tm.importance is not None:
                    csv = tmpdir / "feature_importance.csv"
                    tm.importance.write_csv(csv)
                    mlflow.log_artifact(str(csv))
                    _retry(mlflow.log_table, data=tm.importance.to_pandas(), artifact_file="feature_importance.json")
                if shap_png is not None:
                    png = tmpdir / "shap_summary.png"
                    png.write_bytes(shap_png)
                    mlflow.log_artifact(str(png))
                ref = tmpdir / REFERENCE_ARTIFACT
                drift_reference(tm).write_parquet(ref)
                mlflow.log_artifact(str(ref))
            meta = {
                "feature_names": list(tm.feature_names),
                "cat_features": list(tm.cat_features),
                "kind": tm.kind,
                "model_name": tm.model_name,
                "customer": tm.customer,
                "label_definition": tm.label_definition,
                "split": tm.split.as_dict(),
                "calibrator": tm.calibrator.to_dict() if tm.calibrator is not None else None,
                "importance_share": _importance_share(tm),
                "family": tm.family,
                "estimator": _estimator_meta(tm),
            }
            mlflow.log_dict(json.loads(json.dumps(meta, default=str)), "model_meta.json")

            signature, example = _signature_and_example(tm)
            info = _log_estimator(tm, signature, example)
            # Registered separately from log_model (same effect as registered_model_name=...), so that a
            # "database is locked" retry re-registers without logging the model a second time.
            mv = _retry(
                mlflow.register_model,
                info.model_uri,
                reg_name,
                tags={
                    "run_id": run_id,
                    "as_of_test": tm.split.test.isoformat(),
                    "customer": tm.customer,
                    "model": tm.model_name,
                },
            )
            version = str(mv.version)
            _retry(client.set_registered_model_alias, reg_name, CHALLENGER, version)
            _retry(client.set_tag, run_id, "registered_model", f"{reg_name}/{version}")

    return LoggedRun(
        run_id=run_id,
        experiment_id=exp_id,
        run_name=name,
        run_url=run_url(exp_id, run_id),
        model_uri=f"models:/{reg_name}/{version}",
        registered_name=reg_name,
        version=version,
    )


# ----------------------------------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    registered_name: str
    version: str
    run_id: str
    kind: str
    model: Any  # native catboost model
    feature_names: list[str]
    cat_features: list[str]
    calibrator: Any | None
    label_definition: dict[str, Any]
    metrics: dict[str, float]
    split: dict[str, Any]
    importance_share: dict[str, float] | None = None  # feature -> share of mean |SHAP| on the test set
    tracking_uri: str = ""
    family: str = "catboost"  # catboost | logistic | linear | btyd

    def reference(self) -> pl.DataFrame | None:
        """The drift reference logged with this version (model inputs + ``__score__``), or None for versions
        logged before references existed."""
        return load_reference(self.tracking_uri, self.run_id)

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability (classifiers) or predicted value (ltv), as ``TrainedModel.predict``."""
        return candidates.predict(
            self.family, self.kind, self.model, self.feature_names, self.cat_features, self.calibrator, frame
        )

    def contributions(self, frame: pl.DataFrame, thread_count: int = 2) -> np.ndarray:
        """Rows x feature_names: what pushes each row's score up (see candidates.contributions)."""
        return candidates.contributions(
            self.family, self.kind, self.model, self.feature_names, self.cat_features, frame, thread_count=thread_count
        )


def _alias_version(client: MlflowClient, registered_name: str, alias: str) -> Any | None:
    """The model version behind ``alias``, or None when the registered model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return _retry(client.get_model_version_by_alias, registered_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def load_model(tracking_uri: str, registered_name: str, alias: str = CHAMPION) -> LoadedModel | None:
    """The model version behind ``registered_name@alias`` with its metadata; None if there is none."""
    from growth_pipeline.lib.models.calibration import Calibrator

    client = _client(tracking_uri)
    mv = _alias_version(client, registered_name, alias)
    if mv is None:
        return None
    run = _retry(client.get_run, mv.run_id)
    with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
        meta_path = _retry(client.download_artifacts, mv.run_id, "model_meta.json", tmp)
        meta = json.loads(Path(meta_path).read_text())
    family = meta.get("family", "catboost")  # versions logged before other families existed are CatBoost
    model = _load_estimator(tracking_uri, f"models:/{registered_name}/{mv.version}", family, meta.get("estimator"))
    cal = meta.get("calibrator")
    return LoadedModel(
        registered_name=registered_name,
        version=str(mv.version),
        run_id=mv.run_id,
        kind=meta["kind"],
        model=model,
        feature_names=list(meta["feature_names"]),
        cat_features=list(meta["cat_features"]),
        calibrator=Calibrator.from_dict(cal) if cal else None,
        label_definition=meta.get("label_definition") or {},
        metrics=dict(run.data.metrics),
        split=meta.get("split") or {},
        importance_share=dict(meta.get("importance_share") or {}),
        tracking_uri=tracking_uri,
        family=family,
    )


def _load_estimator(tracking_uri: str, model_uri: str, family: str, estimator_meta: dict | None) -> Any:
    """The serving family's estimator, as training built it (see TrainedModel.model)."""
    import mlflow.catboost
    import mlflow.sklearn

    from growth_pipeline.lib.models.purchase_models import BtydPredictor

    with _mlflow_uris(tracking_uri):
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

    client = _client(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="growth-mlflow-") as tmp:
        try:
            path = _retry(client.download_artifacts, run_id, REFERENCE_ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        return pl.read_parquet(path)


def version_metrics(tracking_uri: str, registered_name: str, version: str) -> dict[str, float]:
    """The test metrics of the run behind one registered version (what it promised when it was trained)."""
    client = _client(tracking_uri)
    mv = _retry(client.get_model_version, registered_name, str(version))
    return dict(_retry(client.get_run, mv.run_id).data.metrics)


def tag_run(tracking_uri: str, run_id: str, tags: dict[str, str]) -> None:
    client = _client(tracking_uri)
    for k, v in tags.items():
        _retry(client.set_tag, run_id, _key(k), str(v)[:MAX_TAG_VALUE])


# --------------------------------------------------------------------------------------------------- promotion


def champion_version(tracking_uri: str, registered_name: str) -> str | None:
    """The version the ``champion`` alias points at, or None."""
    mv = _alias_version(_client(tracking_uri), registered_name, CHAMPION)
    return str(mv.version) if mv is not None else None


def record_decision(tracking_uri: str, logged: LoggedRun, decision: Decision) -> None:
    """Move ``champion`` to the new version if ``decision.promote``; tag run and version with the decision."""
    client = _client(tracking_uri)
    mv_before = _alias_version(client, logged.registered_name, CHAMPION)
    before = str(mv_before.version) if mv_before is not None else "none"
    if decision.promote:
        _retry(client.set_registered_model_alias, logged.registered_name, CHAMPION, logged.version)
    outcome = "promoted" if decision.promote else ("kept" if decision.beats_baselines else "refused")
    tags = {
        "promotion.decision": outcome,
        "promotion.reason": decision.reason[:MAX_TAG_VALUE],
        "promotion.champion_version_before": before,
    }
    for k, v in tags.items():
        _retry(client.set_tag, logged.run_id, k, v)
        _retry(client.set_model_version_tag, logged.registered_name, logged.version, k, v)


def log_table_csv(tracking_uri: str, run_id: str, frame: pl.DataFrame, artifact_file: str) -> None:
    """Attach a table to an existing run as CSV (e.g. the test set's scores with their reasons)."""
    _retry(_client(tracking_uri).log_text, run_id, frame.write_csv(), artifact_file)


def log_not_enough_data(
    tracking_uri: str,
    artifact_root: str | None,
    customer: str,
    model_name: str,
    reason: str,
    *,
    dagster_run_id: str = "",
    extra_tags: dict[str, str] | None = None,
) -> str:
    """Record a training that stopped at "not enough data" as a run of its own (no model), so the MLflow UI and
    the report can say why a model has no champion. Returns the run id."""
    if artifact_root and not is_local_store(tracking_uri):
        artifact_root = None
    client = _client(tracking_uri)
    exp_id = ensure_experiment(client, customer, model_name, artifact_root)
    tags = {
        "customer": customer,
        "model": model_name,
        "dagster_run_id": dagster_run_id,
        "promotion.decision": "not enough data",
        "promotion.reason": reason[:MAX_TAG_VALUE],
        "mlflow.note.content": f"Not trained: {reason}"[:MAX_TAG_VALUE],
        **(extra_tags or {}),
    }
    secrets = _secret_values()
    run = _retry(
        client.create_run,
        exp_id,
        run_name=f"{customer}-{model_name}-not-enough-data",
        tags={k: _redact(str(v), secrets) for k, v in tags.items()},
    )
    _retry(client.set_terminated, run.info.run_id, "FINISHED")
    return run.info.run_id


def why_no_champion(tracking_uri: str, customer: str, model_name: str) -> str:
    """In words, why a model has no champion: the latest training run's decision and reason."""
    client = _client(tracking_uri)
    exp = _retry(client.get_experiment_by_name, experiment_name(customer, model_name))
    runs = (
        _retry(client.search_runs, [exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if exp is not None
        else []
    )
    if not runs:
        return "no champion: never trained"
    tags = runs[0].data.tags
    decision, reason = tags.get("promotion.decision", ""), tags.get("promotion.reason", "")
    if decision == "not enough data":
        return f"no model: not enough data ({reason})"
    if decision == "refused":
        return f"no champion: no candidate beat the one-feature rule on the test set ({reason})"
    return f"no champion yet (latest training: {decision or 'unfinished'}{'; ' + reason if reason else ''})"
