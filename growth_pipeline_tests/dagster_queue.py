"""The one adapter to Dagster's private API in this project: queueing a run as the webserver would and asking
the queued-run daemon which runs it would launch now. Dagster offers no public way to do either in a test, and
the run queue per customer (dagster.yaml) is behaviour we must pin."""

from __future__ import annotations

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

_ORIGIN = RemoteJobOrigin(
    repository_origin=RemoteRepositoryOrigin(
        code_location_origin=InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name="growth_pipeline.definitions"), location_name="growth_pipeline"
        ),
        repository_name="__repository__",
    ),
    job_name="__ASSET_JOB",
)


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, **tags: str) -> str:
    """A run of the asset job in ``status`` with ``tags``, stored in ``instance``; its run id."""
    return create_run_for_test(
        instance, job_name="__ASSET_JOB", status=status, tags=tags, remote_job_origin=_ORIGIN
    ).run_id


def dequeued(instance: dg.DagsterInstance) -> set[str]:
    """The ids of the queued runs the real queued-run daemon logic would launch now."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    runs = daemon._get_runs_to_dequeue(instance, instance.get_concurrency_config(), fixed_iteration_time=None)
    return {r.run_id for r in runs}
