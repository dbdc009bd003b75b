"""Typed platform settings: the one place that decides embedded defaults vs the production profile.

Every path the platform writes derives from ``Settings.home`` (``SEQOPS_HOME``), so two homes never
mix. Nothing is read or created at import time: call :func:`get_settings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from seqops.core.datasets import DatasetSpec, WindowSpec, read_table, spec_from_table

Profile = Literal["embedded", "production"]


class UnknownDatasetError(ValueError):
    """A dataset name that the datasets file does not declare."""


def _default_home() -> Path:
    return Path.home() / ".seqops"


class Settings(BaseSettings):
    """Platform settings, read from ``SEQOPS_*`` environment variables.

    The embedded profile (default) keeps all state in SQLite databases and local files under
    ``home``. The production profile takes server URLs for the same roles; it refuses to start
    when one is missing rather than silently falling back to a local file.
    """

    model_config = SettingsConfigDict(env_prefix="SEQOPS_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Root of all platform state (~/.seqops).")
    datasets_file: Path | None = Field(
        None, description="Per-dataset facts (policy and window geometry); None = the shipped datasets.toml."
    )
    features_datasets: Annotated[list[str] | None, NoDecode] = Field(
        None, description="Datasets that get Feast views (comma list); None = every dataset in the file."
    )
    max_batch_mb: float = Field(500.0, gt=0, description="Largest batch file accepted, in megabytes.")
    bench_data_dir: Path | None = Field(
        None, description="Folder holding the public benchmark datasets (m4_hourly/, ETTh1/)."
    )
    profile: Profile = "embedded"
    host: str = Field("127.0.0.1", description="Interface every local web surface binds to.")
    airflow_port: int = 8080
    mlflow_port: int = 5000
    serving_port: int = 8000
    serving_refresh_s: float = Field(
        30.0, gt=0, description="How often the service checks for moved aliases."
    )
    serving_workers: int = Field(
        1,
        ge=1,
        description="Worker processes of the prediction service: one uses about one core (Python's "
        "GIL); each loads the models.",
    )
    replay_days: int = Field(14, ge=0, description="Days of the PJM demo held back for `seqops replay`.")
    serving_token: SecretStr | None = Field(
        None,
        description="Bearer token of the prediction service; generated into home on first start if unset.",
    )
    prediction_log_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the prediction log (PostgreSQL in production); None = SQLite in home.",
    )
    admin_user: str = "admin"
    approvers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["admin"],
        description="Airflow users who may approve a promotion (comma list, SEQOPS_APPROVERS).",
    )
    airflow_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More Airflow users as name:role (comma list, SEQOPS_AIRFLOW_USERS); approvers not "
        "listed get the op role. Passwords are generated into home/secrets.",
    )
    train_max_epochs: int = Field(
        30, gt=0, description="train_forecaster's default epoch cap (its max_epochs param)."
    )
    train_time_budget_s: int = Field(
        900, ge=10, description="train_forecaster's default training wall-time budget (time_budget_s)."
    )
    training_pod_template: Path | None = Field(
        None,
        description="On Kubernetes: a pod template (e.g. infra/k8s/training-pod.yaml, a GPU node) in which "
        "train_forecaster's train step runs as a KubernetesPodOperator pod; unset: it runs in the worker.",
    )
    promotion_min_pairs: int = Field(
        48, gt=0, description="Paired live forecasts with actuals a live gate needs."
    )
    promotion_poke_s: int = Field(
        300, ge=1, description="How often the shadow and canary waits look for new actuals (seconds)."
    )
    promotion_canary_share: float = Field(0.1, gt=0, le=1, description="Share of series the canary serves.")
    promotion_approval_hours: float = Field(
        72, gt=0, description="Approval window; then the default: reject."
    )
    admin_password: SecretStr | None = Field(
        None, description="Login for the web surfaces; generated into home on first start if unset."
    )
    drift_period_days: int = Field(7, gt=0, description="Length of the period each drift check judges.")
    drift_fdr: float = Field(
        0.05, gt=0, lt=1, description="False-discovery rate across series (Benjamini-Hochberg)."
    )
    drift_min_effect: float = Field(
        0.05, ge=0, description="Smallest move worth an alarm, as a share of the expected level or error."
    )
    drift_method: str = Field(
        "wasserstein", description="Evidently's pinned method for the pooled columns (see monitoring.drift)."
    )
    drift_threshold: float = Field(0.1, gt=0, description="Threshold of the pinned Evidently method.")
    drift_persist_hours: float = Field(
        24, ge=0, description="Drift must be seen by checks spanning this much data time before a retrain."
    )
    drift_cooldown_hours: float = Field(
        72, ge=0, description="No new retrain request within this much data time of the last one."
    )
    evidently_port: int = Field(8001, description="The Evidently UI behind its login proxy.")
    # Production profile: external services (all required there, unused when embedded).
    airflow_db_url: SecretStr | None = None
    airflow_executor: Literal["LocalExecutor", "CeleryExecutor", "KubernetesExecutor"] = "LocalExecutor"
    celery_broker_url: SecretStr | None = Field(
        None, description="Broker of the CeleryExecutor, e.g. redis://host:6379/0 (required with it)."
    )
    celery_workers: int = Field(
        2,
        ge=0,
        le=32,
        description="Celery workers `seqops platform up` starts on this machine with the CeleryExecutor "
        "(0: the workers run on other machines, `airflow celery worker` there).",
    )
    celery_worker_concurrency: int = Field(2, ge=1, description="Task slots of each Celery worker.")
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_root: str | None = None
    feast_registry_url: SecretStr | None = None
    feast_offline_pg_url: SecretStr | None = None
    feast_online_redis: str | None = Field(None, description="host:port[,db=N] of the Redis online store.")
    object_store_root: str | None = Field(
        None,
        description="s3://bucket/prefix: the curated Delta tables live at <prefix>/curated/<dataset>; "
        "credentials and endpoint come from the standard AWS_* variables (AWS_ENDPOINT_URL for an "
        "S3-compatible server). Unset: the tables are under home.",
    )

    @field_validator("object_store_root")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?", value):
            raise ValueError("must be an s3://bucket/prefix URI (S3 or an S3-compatible server)")
        return value

    @field_validator("features_datasets", "approvers", "airflow_users", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _production_is_complete(self) -> Settings:
        if self.profile == "production":
            required = {
                "SEQOPS_AIRFLOW_DB_URL": self.airflow_db_url,
                "SEQOPS_MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
                "SEQOPS_FEAST_REGISTRY_URL": self.feast_registry_url,
                "SEQOPS_FEAST_OFFLINE_PG_URL": self.feast_offline_pg_url,
                "SEQOPS_FEAST_ONLINE_REDIS": self.feast_online_redis,
            }
            if self.airflow_executor == "CeleryExecutor":
                required["SEQOPS_CELERY_BROKER_URL"] = self.celery_broker_url
            missing = [name for name, value in required.items() if not value]
            if missing:
                raise ValueError(
                    "production profile needs "
                    + ", ".join(missing)
                    + " (see README, 'Settings'); or set SEQOPS_PROFILE=embedded"
                )
        return self

    def airflow_roles(self) -> dict[str, str]:
        """Every Airflow user and role: the admin, the extra users, and each approver (op)."""
        roles = {self.admin_user: "admin"}
        for entry in self.airflow_users:
            name, _, role = entry.partition(":")
            roles.setdefault(name, role or "viewer")
        for approver in self.approvers:
            roles.setdefault(approver, "op")
        return roles

    # ---- layout under home -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def landing_dir(self) -> Path:
        """Where batches arrive: ``landing/<dataset>/incoming/*.csv|parquet`` (+ optional .meta.json)."""
        return self.data_dir / "landing"

    @property
    def raw_dir(self) -> Path:
        """Immutable, content-addressed copy of every batch ever landed."""
        return self.data_dir / "raw"

    @property
    def curated_dir(self) -> Path:
        """Validated rows only, Parquet partitioned by dataset and series."""
        return self.data_dir / "curated"

    @property
    def quarantine_dir(self) -> Path:
        """Rejected batches with their validation reports (JSON + Data Docs HTML)."""
        return self.data_dir / "quarantine"

    @property
    def features_dir(self) -> Path:
        """Feast's runtime state: window tables, registry and online store (embedded)."""
        return self.home / "features"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def run_dir(self) -> Path:
        """Pid files and logs of the processes `seqops platform up` started."""
        return self.home / "run"

    @property
    def serving_dir(self) -> Path:
        """The prediction service's state (the embedded prediction log)."""
        return self.home / "serving"

    @property
    def drift_dir(self) -> Path:
        """Drift reports (``<dataset>/<check id>/``) and the Evidently workspace (``workspace/``)."""
        return self.home / "monitoring"

    @property
    def prediction_log_uri(self) -> str:
        if self.prediction_log_url is not None:
            return self.prediction_log_url.get_secret_value()
        return f"sqlite:///{(self.serving_dir / 'predictions.db').resolve()}"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    # ---- per-dataset facts ---------------------------------------------------------------------
    def _datasets_table(self) -> dict[str, dict]:
        from seqops.core.resources import datasets_file

        return read_table(self.datasets_file or datasets_file())

    def dataset_names(self) -> list[str]:
        """The datasets declared in the datasets file (``default`` excluded)."""
        return sorted(name for name in self._datasets_table() if name != "default")

    def dataset(self, name: str) -> DatasetSpec:
        """The facts of dataset ``name``: its section laid over ``[default]``.

        Raises:
            UnknownDatasetError: ``name`` is not declared in the datasets file (``default`` is: the
                defaults alone, for data with no policy of its own).
        """
        table = self._datasets_table()
        if name not in table:
            known = sorted(table)
            close = [k for k in known if k.lower() == str(name).lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownDatasetError(
                f"unknown dataset {name!r}{hint}: declared are {', '.join(known)}. Add a section "
                f"[{name}] to {self.datasets_file or 'the datasets file'} (SEQOPS_DATASETS_FILE) "
                "to give it a policy."
            )
        return spec_from_table(table, name)

    def window(self, name: str) -> WindowSpec:
        """The window geometry of dataset ``name``."""
        return self.dataset(name).window

    def feature_datasets(self) -> list[str]:
        """Datasets that get Feast views: ``features_datasets`` or every declared dataset."""
        return list(self.features_datasets) if self.features_datasets is not None else self.dataset_names()

    @property
    def max_batch_bytes(self) -> int:
        return int(self.max_batch_mb * 1024 * 1024)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking store: a SQLite file when embedded, the server otherwise."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.mlflow_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> str:
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        return (self.mlflow_dir / "artifacts").resolve().as_uri()


def get_settings() -> Settings:
    """Settings read from the environment now (cheap; not cached so tests can switch homes)."""
    return Settings()
