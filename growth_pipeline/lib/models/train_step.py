"""One model of one customer trained, logged and judged: the step behind each ``<model>_model`` asset.

:func:`train_and_register`

1. reads the customer's activity from its warehouse and trains every candidate family
   (:func:`~growth_pipeline.lib.models.training.train_model`; with the customer's reference scores, if any:
   :mod:`~growth_pipeline.lib.models.reference_scores`);
2. scores the current champion on the challenger's test set (``champion.*`` metrics and
   ``champion.new_win_rate``, the paired-bootstrap share of resamples the new model wins);
3. logs the run to MLflow and registers the new version as ``challenger``
   (:mod:`~growth_pipeline.lib.models.run_logging`), with the test set's top reasons as a CSV;
4. lets the promotion gate decide (:func:`~growth_pipeline.lib.models.promotion.decide`) and moves ``champion``
   when it says so (:func:`~growth_pipeline.lib.models.registry.record_decision`).

A model the customer disabled is not trained (outcome ``disabled``); data that cannot support the model gives
outcome ``not enough data`` and a run of its own in MLflow that says why. No Dagster import: the asset turns the
returned :class:`TrainingResult` into metadata and its ``beats_baselines`` check.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from growth_pipeline.lib.features.user_features import read_customer_activity
from growth_pipeline.lib.models import registry, run_logging
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.metrics import classifier_metrics, paired_bootstrap_win_rate, regression_metrics
from growth_pipeline.lib.models.mlflow_store import registered_model_name
from growth_pipeline.lib.models.promotion import Decision, decide
from growth_pipeline.lib.models.reference_scores import reference_oracle
from growth_pipeline.lib.models.split import DriftSplitTooEarly, NotEnoughData
from growth_pipeline.lib.models.training import train_model

if TYPE_CHECKING:
    import duckdb

    from growth_pipeline.config import Customer, Paths
    from growth_pipeline.lib.models.model_types import TrainedModel

DISABLED, NOT_ENOUGH_DATA = "disabled", "not enough data"


@dataclass(frozen=True)
class TrainingResult:
    """What one training of one model came to. ``outcome``: ``disabled``, ``not enough data``, or the gate's
    ``promoted`` / ``kept`` / ``refused``; ``reason``: why not trained, or the gate's reason."""

    customer: str
    model_name: str
    outcome: str
    reason: str = ""
    trained: TrainedModel | None = None  # the candidates, metrics, charts and reasons of the training
    logged: run_logging.LoggedRun | None = None  # the MLflow run and the registered version
    decision: Decision | None = None
    trigger: dict[str, str] = field(default_factory=dict)  # why it ran: trigger, trigger.reason

    @property
    def version(self) -> str | None:
        return self.logged.version if self.logged is not None else None

    @property
    def run_url(self) -> str | None:
        return self.logged.run_url if self.logged is not None else None

    @property
    def family(self) -> str | None:
        """The candidate family serving (catboost, logistic, linear, btyd)."""
        return self.trained.family if self.trained is not None else None

    @property
    def metrics(self) -> dict[str, float]:
        return self.trained.metrics if self.trained is not None else {}


def score_champion(tm: TrainedModel, champion: registry.LoadedModel) -> dict[str, float]:
    """The champion's metrics on the challenger's test set (``champion.*``) and the share of paired bootstrap
    resamples on which the challenger is better (``champion.new_win_rate``)."""
    y = tm.test_frame["label"].to_numpy()
    scored = champion.predict(tm.test_frame)
    m = classifier_metrics(y, scored) if tm.kind == "classifier" else regression_metrics(y, scored)
    out = {f"champion.{k}": v for k, v in m.items()}
    out["champion.new_win_rate"] = paired_bootstrap_win_rate(y, tm.test_predictions["model"], scored, tm.kind)
    return out


def drift_shift_start(trigger: dict[str, str]) -> date | None:
    """When the shift began, for a drift retrain (``trigger`` is drift and carries ``trigger.shift_start``): the
    training then uses the drift split (:func:`~growth_pipeline.lib.models.split.split_dates`); None otherwise."""
    value = trigger.get("trigger.shift_start")
    if trigger.get("trigger") != "drift" or not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"trigger.shift_start: {value!r} is not a date (YYYY-MM-DD)") from None


def train_and_register(
    customer: Customer,
    model_name: str,
    *,
    warehouse: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    paths: Paths,
    tracking_uri: str,
    artifact_root: str | None,
    run_id: str = "",
    code_version: str = "",
    trigger: dict[str, str] | None = None,
    thread_count: int = 2,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> TrainingResult:
    """Train ``model_name`` of ``customer``, log it to MLflow, register it and let the gate decide (see the module
    text). ``warehouse`` opens the customer's warehouse read-only; ``run_id`` is the orchestrator's run (a tag of
    the MLflow run); ``trigger`` (why the training happened, e.g. ``{"trigger": "drift", "trigger.reason": ...,
    "trigger.shift_start": "2026-09-01"}``) is added to the run's tags; a drift trigger with a shift start trains
    on the drift split, and the champion is judged on its post-drift test set."""
    trigger = dict(trigger or {})
    shift_start = drift_shift_start(trigger)
    spec = label_specs(customer).get(model_name)
    if spec is None:
        return TrainingResult(customer.id, model_name, DISABLED, trigger=trigger)
    with warehouse() as con:
        act = read_customer_activity(con, customer)
    settings = customer.models

    def train(shift_start: date | None) -> TrainedModel:
        return train_model(
            act,
            spec,
            customer.id,
            thread_count=thread_count,
            step_days=settings.snapshot_step_days,
            max_train=settings.max_train_snapshots,
            search=settings.hyperparameter_search,
            search_trials=settings.search_trials,
            oracle=reference_oracle(customer, paths),
            log=log,
            shift_start=shift_start,
        )

    try:
        try:
            tm = train(shift_start)
        except DriftSplitTooEarly as exc:
            # asked before post-drift labels matured (by hand, or with retrain_wait_horizons below 2): the normal
            # split still gives the gate an honest comparison on the latest matured test set
            warn(f"{customer.id}/{model_name}: {exc}; trained on the normal split instead")
            trigger["trigger.drift_split"] = "not yet: trained on the normal split"
            tm = train(None)
    except NotEnoughData as exc:
        warn(f"{customer.id}/{model_name}: not enough data: {exc}")
        run_logging.log_not_enough_data(
            tracking_uri, artifact_root, customer.id, model_name, str(exc), dagster_run_id=run_id
        )
        return TrainingResult(customer.id, model_name, NOT_ENOUGH_DATA, str(exc), trigger=trigger)
    champion = registry.load_model(tracking_uri, registered_model_name(customer.id, model_name), registry.CHAMPION)
    if champion is not None:  # the champion, scored on the same test set as the challenger
        tm.metrics.update(score_champion(tm, champion))
    logged = run_logging.log_training_run(
        tm,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        dagster_run_id=run_id,
        code_version=code_version,
        partition=customer.id,
        extra_tags=trigger,
    )
    if tm.reasons is not None:
        run_logging.log_table_csv(tracking_uri, logged.run_id, tm.reasons, "reasons_test_set.csv")
    decision = decide(tm.kind, tm.metrics, has_champion=champion is not None)
    registry.record_decision(tracking_uri, logged, decision)
    log(f"{customer.id}/{model_name}: v{logged.version} {decision.outcome}: {decision.reason}")
    return TrainingResult(customer.id, model_name, decision.outcome, decision.reason, tm, logged, decision, trigger)
