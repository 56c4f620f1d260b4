"""Where MLflow state lives and how this package talks to the store: the tracking URI and artifact root, run
and experiment names, the client, the process-wide URI switch, retries on a locked SQLite store, and redaction of
credentials from what is logged. No Dagster import.

Where things go
    :func:`tracking_uri` is ``MLFLOW_TRACKING_URI`` when set, else a SQLite store under ``paths.mlflow_dir``;
    experiments created here on a local store keep their artifacts under ``<mlflow_dir>/artifacts``. Nothing is
    ever written to the working directory (MLflow's own default is ``./mlflow.db`` and ``./mlruns``).

The fluent MLflow API (``mlflow.catboost.log_model`` and ``mlflow.register_model`` need it) reads a process-wide
tracking URI; :func:`mlflow_uris` sets it for the duration of one call and restores the previous value and the
``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` environment variables afterwards, under a lock.

SQLite stores written by several processes at once can fail with "database is locked"; store calls go through
:func:`retry` (5 tries, exponential backoff with jitter). An ``mlflow server`` or Postgres in front avoids it.

The rest of MLflow's use is split by job: :mod:`~growth_pipeline.lib.models.run_logging` (a training run),
:mod:`~growth_pipeline.lib.models.model_artifacts` (the model in its flavour, plots, the drift reference) and
:mod:`~growth_pipeline.lib.models.registry` (loading, champion and challenger aliases).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from growth_pipeline.config import Paths

log = logging.getLogger(__name__)
# MLflow draws a progress bar for every artifact download (a model, a drift reference): noise in run logs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DEFAULT_UI_URL = "http://127.0.0.1:5000"
MAX_TAG_VALUE = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH
MAX_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
LOCK_RETRIES = 5
LOCK_BACKOFF_SECONDS = 0.25
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. :/]")
_URI_LOCK = threading.RLock()

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


def retry(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
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


def mlflow_client(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def mlflow_uris(uri: str) -> Iterator[None]:
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


def secret_values() -> list[str]:
    """Values of environment variables whose names look like credentials (long enough to be unambiguous)."""
    return sorted({v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def valid_key(name: str) -> str:
    """A valid MLflow param/tag key: unsupported characters become ``_``."""
    return _BAD_KEY_CHARS.sub("_", str(name))[:MAX_KEY]


# ------------------------------------------------------------------------------------------------- experiments


def ensure_experiment(client: MlflowClient, customer: str, model_name: str, artifact_root: str | None) -> str:
    """Id of the experiment ``<customer>/<model_name>``, created (tags customer, model) or restored if needed.

    A new experiment on a local store gets ``<artifact_root>/<customer>/<model_name>`` as artifact location;
    with ``artifact_root=None`` the tracking server chooses.
    """
    from mlflow.exceptions import MlflowException

    name = experiment_name(customer, model_name)
    exp = retry(client.get_experiment_by_name, name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            retry(client.restore_experiment, exp.experiment_id)
        return exp.experiment_id
    location = f"{artifact_root.rstrip('/')}/{customer}/{model_name}" if artifact_root else None
    try:
        return retry(
            client.create_experiment, name, artifact_location=location, tags={"customer": customer, "model": model_name}
        )
    except MlflowException as exc:  # another process created it between our lookup and create
        exp = retry(client.get_experiment_by_name, name)
        if exp is None:
            raise
        log.info("experiment %s was created concurrently (%s)", name, exc.error_code)
        return exp.experiment_id
