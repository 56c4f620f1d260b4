"""Resources: where state lives, the customers, their warehouses, and Mixpanel's Export API."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from growth_pipeline.config import Customer, CustomerRegistry, MixpanelApiSource, Paths, load_customers
from growth_pipeline.lib.models.mlflow_store import artifact_root, is_local_store, tracking_uri
from growth_pipeline.lib.warehouse.connection import Warehouses


class GrowthResource(dg.ConfigurableResource):
    """The deployment: GROWTH_HOME, customers.yaml, and each customer's DuckDB warehouse.

    Both fields default to the environment (GROWTH_HOME, GROWTH_CUSTOMERS), so one Definitions object
    serves the demo, tests and production alike.
    """

    growth_home: str | None = None
    customers_file: str | None = None
    duckdb_threads: int = 2
    # None: GROWTH_DUCKDB_MEMORY_LIMIT or a fifth of the machine's memory per connection (docs/deployment.md)
    duckdb_memory_limit: str | None = None
    # None: GROWTH_DUCKDB_TEMP_DIRECTORY or GROWTH_HOME/tmp/duckdb; each customer spills into <root>/<customer>
    duckdb_temp_directory: str | None = None
    model_threads: int = 2  # CatBoost thread_count: explicit, sized for the 2-core machines we run on

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.growth_home) if self.growth_home else None)

    @property
    def code_version(self) -> str:
        return code_version()

    def registry(self) -> CustomerRegistry:
        return load_customers(Path(self.customers_file) if self.customers_file else None)

    def customer(self, customer_id: str) -> Customer:
        return self.registry().get(customer_id)

    @property
    def warehouses(self) -> Warehouses:
        """Every customer's DuckDB file (what the steps in lib/ are handed)."""
        return Warehouses(
            self.paths,
            self.duckdb_threads,
            memory_limit=self.duckdb_memory_limit,
            temp_directory=Path(self.duckdb_temp_directory) if self.duckdb_temp_directory else None,
        )

    @contextmanager
    def warehouse(self, customer_id: str, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The customer's own DuckDB file; other processes queue behind this one."""
        with self.warehouses.open(customer_id, read_only=read_only) as con:
            yield con


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry. Defaults to a SQLite store under GROWTH_HOME/mlflow (or
    ``MLFLOW_TRACKING_URI`` when set: an ``mlflow server`` with a PostgreSQL backend in production)."""

    tracking_uri: str | None = None

    def uri(self, paths: Paths) -> str:
        return self.tracking_uri or tracking_uri(paths)

    def artifacts(self, paths: Paths) -> str | None:
        uri = self.uri(paths)
        return artifact_root(paths) if is_local_store(uri) else None


def code_version() -> str:
    """The package version and, when run from a git checkout, the commit (tags every MLflow run)."""
    import subprocess

    from growth_pipeline.config import REPO_ROOT

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("growth-pipeline")
    except PackageNotFoundError:
        v = "0"
    return f"{v}+{sha}" if sha else v


class MixpanelExportResource(dg.ConfigurableResource):
    """Downloads one day of a customer's Mixpanel project through the Raw Export API.

    The service account is read at run time from the environment variables the customer's entry names
    (``source.username_env`` / ``source.secret_env``) through Dagster's ``EnvVar``; it is never part of run
    config, logs, metadata or customers.yaml.
    """

    max_retries: int = 6

    def download_day(self, customer: Customer, day: date, paths: Paths, log) -> dict:
        from growth_pipeline.lib.ingest.mixpanel_export.client import export_day
        from growth_pipeline.lib.ingest.mixpanel_export.rate_limit import RateLimiter
        from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount

        src = customer.source
        assert isinstance(src, MixpanelApiSource)
        username = dg.EnvVar(src.username_env).get_value()
        secret = dg.EnvVar(src.secret_env).get_value()
        missing = [name for name, value in ((src.username_env, username), (src.secret_env, secret)) if not value]
        if missing:
            raise dg.Failure(
                f"customer {customer.id!r}: Mixpanel service account not configured; set environment "
                f"variable(s) {', '.join(missing)}"
            )
        limiter = RateLimiter(paths.state_dir / "mixpanel_rate" / f"{src.project_id}.json")
        result = export_day(
            project_id=src.project_id,
            day=day,
            account=ServiceAccount(username, secret),
            dest_dir=paths.landing(customer.id),
            region=src.region,
            base_url=src.base_url,
            max_retries=self.max_retries,
            connect_timeout_s=src.connect_timeout_s,
            timeout_s=src.read_timeout_s,
            deadline_s=src.deadline_s,
            rate_limiter=limiter,
            customer=customer.id,
        )
        if result.terminated_early:
            log.warning(f"{customer.id} {day}: Mixpanel ended the export with 'terminated early'")
        return {
            "file": str(result.path),
            "bytes": result.bytes_written,
            "lines": result.lines,
            "attempts": result.attempts,
            "terminated_early": result.terminated_early,
        }
