"""Where the pipeline keeps its state, and the customers it serves.

Everything the pipeline writes lives under ``GROWTH_HOME`` (default ``.growth/`` at the repository root).
Customers are declared in ``customers.yaml`` (another file through ``GROWTH_CUSTOMERS``); adding one needs no
code change. This module has no Dagster import: Dagster code and the CLI both read it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from growth_pipeline.config_errors import describe_validation_error, yaml_problem
from growth_pipeline.lib.ingest.mixpanel_export.endpoint import (
    CONNECT_TIMEOUT_S,
    DEADLINE_S,
    READ_TIMEOUT_S,
    base_url_problem,
    project_id_problem,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = REPO_ROOT / "sql"

# The first day partition of a customer that does not declare `history_start`.
DEFAULT_FIRST_DAY = date(2024, 1, 1)
FIRST_DAY_ENV = "GROWTH_FIRST_DAY"

# Dagster partition keys may not contain | , [ ] ; slugs also make safe file names. Matched whole (fullmatch):
# "acme\n" or "acme " is not a slug.
CUSTOMER_ID_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")
# The NAME of an environment variable (upper case by convention: a pasted secret rarely is).
ENV_NAME_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")


def growth_home() -> Path:
    """The folder that holds all pipeline state (warehouses, Dagster home, MLflow store, exports, reports)."""
    raw = os.environ.get("GROWTH_HOME")
    return Path(raw).expanduser().resolve() if raw else REPO_ROOT / ".growth"


def customers_file() -> Path:
    raw = os.environ.get("GROWTH_CUSTOMERS")
    return Path(raw).expanduser().resolve() if raw else REPO_ROOT / "customers.yaml"


class Paths:
    """The layout of GROWTH_HOME. One DuckDB file per customer keeps customers' data isolated."""

    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else growth_home()

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    def warehouse(self, customer: str) -> Path:
        return self.warehouse_dir / f"{customer}.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    def landing(self, customer: str) -> Path:
        """Where day files downloaded from the Mixpanel Export API land."""
        return self.home / "landing" / customer

    def exports(self, customer: str) -> Path:
        return self.home / "exports" / customer

    def reports(self, customer: str) -> Path:
        return self.home / "reports" / customer

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"


class ConfigError(ValueError):
    """A wrong entry in customers.yaml; the message names the file, the customer and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalFolderSource(_Strict):
    """Daily export files ``<YYYY-MM-DD>.jsonl`` or ``.jsonl.gz``, as the Export API returns one day."""

    kind: Literal["local_folder"]
    path: str


def _project_id(v: object) -> str:
    """A Mixpanel project id: digits only (YAML may give it as a number). The message never repeats the value."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        v = str(v)
    problem = project_id_problem(v)
    if problem:
        raise ValueError(problem)
    return v


class ObjectStorageSource(_Strict):
    """Mixpanel's data-pipeline layout ``<project_id>/mp_master_event/YYYY/MM/DD/*.json[.gz]``."""

    kind: Literal["object_storage"]
    path: str
    project_id: str

    @field_validator("project_id", mode="before")
    @classmethod
    def _numeric_project(cls, v: object) -> str:
        return _project_id(v)


class MixpanelApiSource(_Strict):
    """Mixpanel's Raw Export API; each day is streamed to the customer's landing folder first.

    Credentials are never written here: only the names of the environment variables that hold them.
    """

    kind: Literal["mixpanel_api"]
    project_id: str
    region: Literal["us", "eu", "in"] = "us"
    username_env: str = "MIXPANEL_SERVICE_ACCOUNT_USERNAME"
    secret_env: str = "MIXPANEL_SERVICE_ACCOUNT_SECRET"
    base_url: str | None = None  # override the regional host (a proxy, or a test server)
    # How long one day's download may take before the day fails (a dead or stalled endpoint): opening a
    # connection, the longest silence while reading, and everything for the day (retries and their waits
    # included; queueing behind Mixpanel's rate limit is not counted).
    connect_timeout_s: float = Field(default=CONNECT_TIMEOUT_S, gt=0, le=300)
    read_timeout_s: float = Field(default=READ_TIMEOUT_S, gt=0, le=3600)
    deadline_s: float = Field(default=DEADLINE_S, gt=0, le=86400)

    @field_validator("project_id", mode="before")
    @classmethod
    def _numeric_project(cls, v: object) -> str:
        return _project_id(v)

    @field_validator("username_env", "secret_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not ENV_NAME_PATTERN.fullmatch(v):
            raise ValueError(
                "must be the NAME of an environment variable (upper-case letters, digits and '_', e.g. "
                "MIXPANEL_SERVICE_ACCOUNT_SECRET), never the credential itself"
            )
        return v

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, v: str | None) -> str | None:
        problem = base_url_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v


Source = Annotated[LocalFolderSource | ObjectStorageSource | MixpanelApiSource, Field(discriminator="kind")]


class EventMeaning(_Strict):
    """What the customer's events mean: the vocabulary labels and analytics are written in."""

    signup: str
    conversion: list[str] = Field(min_length=1)
    revenue_property: str | None = None
    goal: list[str] = Field(default_factory=list)
    goal_condition: dict[str, str | int | float | bool] | None = None
    churn_event: str | None = None
    channel_properties: list[str] = Field(default_factory=lambda: ["utm_source", "$initial_referring_domain"])
    channel_default: str = "direct"
    category_property: str | None = None


class IngestSettings(_Strict):
    max_rejected_share: float = Field(default=0.01, ge=0.0, le=1.0)
    # A share is noise on a small day (3 bad lines of 40 is 7.5%): the check fails only when at least this
    # many records were rejected as well.
    min_rejected_to_fail: int = Field(default=10, ge=1)
    allow_empty_days: bool = False
    allow_incomplete_days: bool = Field(
        default=False,
        description=(
            "Whether a day whose export file broke off (a truncated or corrupt gzip) may pass the blocking "
            "day_complete check of raw_events. Either way the records before the break are loaded and "
            "raw.day_loads.incomplete names the file and the byte offset of the break. false (the default): the "
            "check fails, so nothing downstream uses the day until the file is fetched again and the day reloaded; "
            "true: the partial day is accepted."
        ),
    )


class ModelSettings(_Strict):
    """One model's label as configuration: who is in the population, what counts as the outcome, how far
    ahead. Defaults per model are in growth_pipeline/lib/models/labels.py; anything set here overrides them."""

    enabled: bool = True
    horizon_days: int | None = Field(default=None, ge=7, le=365)
    active_days: int | None = Field(default=None, ge=1, le=365)
    # conversion: recent_signups (default) or all_known users not yet converted; repeat_buyers: users who bought
    # before and were active in the last active_days, the target a purchase in the horizon ("buys again")
    population: Literal["active", "recent_signups", "all_known", "not_yet_reached", "repeat_buyers"] | None = None
    signup_window_days: int | None = Field(default=None, ge=1, le=365)
    use_churn_event: bool | None = None


class ReferenceScores(_Strict):
    """Scores each model's test set is also judged with, for comparison only (the demo's oracles): ``hook``
    (``module:function``) is called with ``file`` (relative to the customer's source folder). See
    growth_pipeline/lib/models/reference_scores.py."""

    hook: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    file: str


class ModelsSettings(_Strict):
    churn: ModelSettings = ModelSettings()
    conversion: ModelSettings = ModelSettings()
    goal: ModelSettings = ModelSettings()
    ltv: ModelSettings = ModelSettings()
    snapshot_step_days: int = Field(default=7, ge=1, le=90)  # days between training as-of dates
    max_train_snapshots: int = Field(default=26, ge=1, le=104)
    hyperparameter_search: bool = False  # bounded Optuna search (off in the demo)
    search_trials: int = Field(default=20, ge=1, le=200)
    reference_scores: ReferenceScores | None = None  # demo data only: the generator's hidden truth


class ScoringSettings(_Strict):
    """Daily scoring: bands by percentile within the customer's scored population of each model."""

    high_band_percentile: float = Field(default=90.0, gt=0.0, lt=100.0)  # top 10% -> "high"
    medium_band_percentile: float = Field(default=70.0, gt=0.0, lt=100.0)  # next 20% -> "medium", rest "low"

    @model_validator(mode="after")
    def _ordered(self) -> ScoringSettings:
        if self.medium_band_percentile >= self.high_band_percentile:
            raise ValueError("medium_band_percentile must be below high_band_percentile")
        return self


class MonitoringSettings(_Strict):
    """Drift and realised-performance thresholds. The defaults follow common practice (PSI 0.1 = watch,
    0.25 = act) and ignore what small populations make noisy: a feature counts as drifted only when its PSI is
    over the threshold AND a distribution test rejects "same distribution" after a Bonferroni correction, and
    nothing is judged on fewer than ``min_rows`` users."""

    psi_threshold: float = Field(default=0.25, gt=0.0)  # a feature's PSI from this value on is drift...
    p_value: float = Field(default=0.01, gt=0.0, lt=1.0)  # ...when its KS / chi-square test agrees
    drifted_importance_share: float = Field(default=0.3, gt=0.0, le=1.0)  # retrain when drifted features carry
    # this share of SHAP importance...
    severe_psi_threshold: float = Field(default=0.5, gt=0.0)  # ...or any input the model uses shifted this
    # much (a product change, a tracking change)...
    prediction_psi_threshold: float = Field(default=0.25, gt=0.0)  # ...or the scores themselves moved this much
    min_rows: int = Field(default=300, ge=10)  # fewer scored users: no drift verdict
    performance_margin: float = Field(default=0.05, ge=0.0, le=1.0)  # realised AUC/Gini this far under test: retrain
    min_outcomes: int = Field(default=30, ge=5)  # positives and negatives needed for realised AUC
    cooldown_days: int = Field(default=7, ge=0, le=365)  # at most one retrain request per model per cooldown
    retrain_wait_horizons: float = Field(default=2.0, ge=0.0, le=10.0)  # after a shift begins, wait this many
    # label horizons before retraining (2: a post-drift training snapshot's labels mature before a post-drift test)
    min_post_drift_users: int = Field(default=200, ge=0)  # ...and until this many post-drift users are labelled


class AnalyticsSettings(_Strict):
    """The classic growth analytics: how many top users to list, and the two campaigns to compare."""

    top_users: int = Field(default=20, ge=1, le=1000)
    campaign_a: list[str] | None = None  # channels of the campaign under test (default: the biggest channel)
    campaign_b: list[str] | None = None  # channels of the baseline campaign (default: the second biggest)
    response_days: int = Field(default=30, ge=1, le=365)  # days after sign-up in which a purchase is a response


class Customer(_Strict):
    id: str
    name: str | None = None
    timezone: str
    # "utc": `time` is UTC epoch (projects created since 2023); "project_timezone": `time` is the project's
    # local wall-clock encoded as epoch (older projects) and is converted with `timezone`.
    timestamps: Literal["utc", "project_timezone"] = "utc"
    # The first day of the customer's data (e.g. 1997-01-01 for an old retailer's history); the day partitions
    # of every customer start at the earliest history_start (see first_partition_day). Default 2024-01-01.
    history_start: date | None = None
    source: Source
    events: EventMeaning
    ingest: IngestSettings = IngestSettings()
    models: ModelsSettings = ModelsSettings()
    scoring: ScoringSettings = ScoringSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not CUSTOMER_ID_PATTERN.fullmatch(v):
            hint = next(
                (
                    f" (this one {what})"
                    for what, bad in (
                        ("has spaces or a line break before or after it", v != v.strip()),
                        ("has spaces inside", any(ch.isspace() for ch in v.strip())),
                        ("has upper-case letters", v.lower() != v),
                        ("is empty", not v),
                        ("is longer than 63 characters", len(v) > 63),
                        ("does not start with a letter", not v[:1].isalpha()),
                    )
                    if bad
                ),
                " (this one has another character)",
            )
            raise ValueError(
                "must be a slug: lowercase letters, digits, '-' or '_', starting with a letter, at most 63 "
                f"characters (it becomes a Dagster partition key and a file name){hint}"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA timezone (e.g. 'Asia/Kolkata', 'UTC')") from None
        return v

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source_path(self, paths: Paths) -> Path:
        """The folder day files are read from (the landing folder for API customers)."""
        if isinstance(self.source, MixpanelApiSource):
            return paths.landing(self.id)
        return resolve_path(self.source.path, paths)


class CustomerRegistry(_Strict):
    customers: list[Customer]

    @model_validator(mode="after")
    def _unique(self) -> CustomerRegistry:
        seen: set[str] = set()
        for c in self.customers:
            if c.id in seen:
                raise ValueError(f"customer {c.id!r}, field 'id': declared twice")
            seen.add(c.id)
        return self

    def get(self, customer_id: str) -> Customer:
        for c in self.customers:
            if c.id == customer_id:
                return c
        known = ", ".join(c.id for c in self.customers) or "none"
        raise ConfigError(f"unknown customer {customer_id!r} (customers.yaml declares: {known})")

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.customers]


def resolve_path(raw: str, paths: Paths) -> Path:
    """Expand ``${GROWTH_HOME}``, other environment variables and ``~``; relative paths are from the repo root."""
    expanded = os.path.expanduser(raw.replace("${GROWTH_HOME}", str(paths.home)))
    expanded = os.path.expandvars(expanded)
    p = Path(expanded)
    return p if p.is_absolute() else REPO_ROOT / p


def parse_customers(text: str, source: str = "customers.yaml") -> CustomerRegistry:
    """The customers of ``text`` (the file ``source``), or :class:`ConfigError`: one line per problem naming the
    file, the customer and the field, never the offending value."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict) or "customers" not in raw:
        raise ConfigError(f"{source}: expected a mapping with a 'customers' list")
    try:
        return CustomerRegistry.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, raw, source)) from None


def load_customers(path: Path | None = None) -> CustomerRegistry:
    path = path or customers_file()
    if not path.exists():
        raise ConfigError(f"{path}: customers file not found (set GROWTH_CUSTOMERS or create customers.yaml)")
    return parse_customers(path.read_text(), str(path))


def first_partition_day(registry: CustomerRegistry | None = None) -> date:
    """The first day of the day partitions: ``GROWTH_FIRST_DAY`` when set, else the earliest customer's first day
    (its ``history_start``, or DEFAULT_FIRST_DAY for a customer without one). Without a readable customers file,
    DEFAULT_FIRST_DAY (the file's error surfaces where customers are used)."""
    raw = os.environ.get(FIRST_DAY_ENV, "").strip()
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ConfigError(f"{FIRST_DAY_ENV}={raw!r} is not a date (YYYY-MM-DD)") from None
    if registry is None:
        try:
            registry = load_customers()
        except ConfigError:
            return DEFAULT_FIRST_DAY
    return min((c.history_start or DEFAULT_FIRST_DAY for c in registry.customers), default=DEFAULT_FIRST_DAY)


# How long a run may take before Dagster's run monitoring cancels it and marks it failed (its `dagster/max_runtime`
# tag, in seconds), sized by what the run does: every run gets the base, a (customer, day) run the per-day budget
# for each day of its range, a run that trains models the models budget on top. Each is an environment variable.
RUN_LIMIT_ENV = {
    "base_s": "GROWTH_MAX_RUNTIME_BASE_S",
    "per_day_s": "GROWTH_MAX_RUNTIME_PER_DAY_S",
    "models_s": "GROWTH_MAX_RUNTIME_MODELS_S",
}


@dataclass(frozen=True)
class RunLimits:
    """The maximum runtime of a run, by its size (docs/configuration.md, "Run limits"). The defaults leave room
    for a 300-day backfill of an API customer (Mixpanel's 60 exports an hour: at least a minute a day, plus
    retries on a slow endpoint) and a Powerplay-size retrain with hyperparameter search."""

    base_s: int = 3600  # every run: start-up, a customer-wide stage (identities, features, the report)
    per_day_s: int = 600  # each day of a (customer, day) range: download, load, daily activity, scoring
    models_s: int = 12 * 3600  # a run that trains models

    @classmethod
    def from_env(cls) -> RunLimits:
        values = {}
        for field, env in RUN_LIMIT_ENV.items():
            raw = os.environ.get(env, "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) <= 0:
                raise ConfigError(f"{env}={raw!r} is not a whole number of seconds above 0")
            values[field] = int(raw)
        return cls(**values)

    def seconds(self, *, days: int = 0, trains: bool = False) -> int:
        """The maximum runtime of a run covering ``days`` days of (customer, day) partitions (0 for a
        customer-wide run) that trains models or not."""
        return self.base_s + self.per_day_s * max(days, 0) + (self.models_s if trains else 0)


def customer_like(base: Customer, customer_id: str, source_path: str | Path, **models: dict) -> Customer:
    """A copy of ``base`` (its timezone and event meanings) under another id, reading day files from a local
    folder, with model settings overridden, e.g. ``ltv={"horizon_days": 14}``. For tests and benchmarks."""
    data = base.model_dump(mode="json", exclude_none=True)
    data.update(id=customer_id, source={"kind": "local_folder", "path": str(source_path)})
    for name, settings in models.items():
        data.setdefault("models", {}).setdefault(name, {}).update(settings)
    return Customer.model_validate(data)


def customers_yaml(customers: list[Customer]) -> str:
    return yaml.safe_dump(
        {"customers": [c.model_dump(mode="json", exclude_none=True) for c in customers]}, sort_keys=False
    )
