"""The one module that owns the MLflow tracking and registry API (STYLE 5).

Registry policy: aliases, never stages. Every newly registered version becomes ``challenger``
and carries ``validation_status=pending_approval`` until a promotion gate and a person approve it;
only promotion moves ``champion``. The first model ever registered is no exception. Alias moves
are serialised with a file lock (concurrent ``set_registered_model_alias`` calls collide in the
SQL store).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field

from seqops.core.settings import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
PENDING = "pending_approval"


def model_name(dataset: str) -> str:
    return f"seqops-forecaster-{dataset}"


def experiment_name(dataset: str) -> str:
    return f"seqops-{dataset}"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class Registry:
    """MLflow tracking + registry for one platform home."""

    def __init__(self, settings: Settings) -> None:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow
        from mlflow.tracking import MlflowClient

        self.settings = settings
        self.tracking_uri = settings.tracking_uri
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, dataset: str, *, name: str | None = None) -> str:
        """The dataset's experiment (or the one ``name``d), created up front with an explicit artifact
        location."""
        name = name or experiment_name(dataset)
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.settings.artifact_root.rstrip('/')}/{name}"
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:  # created concurrently by another process: use theirs
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    @contextmanager
    def _alias_lock(self):
        """Alias moves one at a time, across machines in production (``seqops.core.locks``)."""
        from seqops.core.locks import named_lock

        with named_lock(self.settings, "registry-aliases"):
            yield

    def register(self, dataset: str, run_id: str, source: str, tags: dict[str, str]) -> RegisteredVersion:
        """Register a logged model (``source``: its model URI) as a new version; it becomes challenger."""
        from mlflow.exceptions import MlflowException

        name = model_name(dataset)
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(
                name,
                description=f"Global LSTM forecaster for dataset {dataset!r} (seqops).",
                tags={"dataset": dataset},
            )
        all_tags = {**{k: str(v) for k, v in tags.items()}, "validation_status": PENDING}
        version = self.client.create_model_version(name, source, run_id=run_id, tags=all_tags)
        with self._alias_lock():
            self.client.set_registered_model_alias(name, CHALLENGER, version.version)
        return self.get(name, version.version)

    def get(self, name: str, version: str) -> RegisteredVersion:
        mv = self.client.get_model_version(name, version)
        return RegisteredVersion(
            name=name, version=str(mv.version), run_id=mv.run_id, aliases=list(mv.aliases), tags=dict(mv.tags)
        )

    def by_alias(self, dataset: str, alias: str) -> RegisteredVersion | None:
        from mlflow.exceptions import MlflowException

        name = model_name(dataset)
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return self.get(name, str(mv.version))

    def versions(self, dataset: str) -> list[RegisteredVersion]:
        """All versions, newest first, aliases read per version (search drops them)."""
        name = model_name(dataset)
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((self.get(name, str(mv.version)) for mv in found), key=lambda v: -int(v.version))

    def set_alias(self, dataset: str, alias: str, version: str) -> None:
        with self._alias_lock():
            self.client.set_registered_model_alias(model_name(dataset), alias, version)

    def set_tags(self, dataset: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name(dataset), version, key, str(value))


# ---- routing: the serving mode lives on the registered model, where promotion sets it --------------
ROUTE_MODE_TAG = "seqops.route.mode"
ROUTE_SHARE_TAG = "seqops.route.canary_share"
ROUTE_MODES = ("champion", "shadow", "canary")


@dataclass(frozen=True)
class Route:
    """How the router serves a dataset: champion only, champion + shadow challenger, or a canary."""

    mode: str = "champion"
    canary_share: float = 0.1


def get_route(registry: Registry, dataset: str) -> Route:
    """The dataset's routing, from its registered model's tags (champion only when unset)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = registry.client.get_registered_model(model_name(dataset)).tags
    except MlflowException:
        return Route()
    return Route(
        mode=tags.get(ROUTE_MODE_TAG, "champion"), canary_share=float(tags.get(ROUTE_SHARE_TAG, "0.1"))
    )


def set_route(registry: Registry, dataset: str, route: Route) -> None:
    """Set the dataset's routing (the promotion flow's switch); the router picks it up on refresh."""
    if route.mode not in ROUTE_MODES:
        raise ValueError(f"route mode {route.mode!r} is not one of {', '.join(ROUTE_MODES)}")
    if not 0.0 <= route.canary_share <= 1.0:
        raise ValueError(f"canary share {route.canary_share} is not between 0 and 1")
    name = model_name(dataset)
    registry.client.set_registered_model_tag(name, ROUTE_MODE_TAG, route.mode)
    registry.client.set_registered_model_tag(name, ROUTE_SHARE_TAG, str(route.canary_share))


# ---- promotion: the only moves of `champion` --------------------------------------------------------
PREVIOUS = "previous_champion"
APPROVED, REJECTED, ROLLED_BACK = "approved", "rejected", "rolled_back"


def promote(
    registry: Registry, dataset: str, version: str, *, approved_by: str, evidence_run_id: str
) -> None:
    """Make ``version`` the champion, as one move under the alias lock.

    The version gets ``validation_status=approved``, ``approved_by``, ``approved_at`` and the
    evidence run; the old champion keeps the ``previous_champion`` alias for a rollback; the router
    goes back to champion only. Refuses a version that is not the pending challenger.
    """
    from datetime import UTC, datetime

    name = model_name(dataset)
    target = registry.get(name, version)
    if target.tags.get("validation_status") not in ("pending_approval", APPROVED):
        raise ValueError(
            f"{name} version {version} is {target.tags.get('validation_status')!r}, not pending approval"
        )
    with registry._alias_lock():
        old = registry.by_alias(dataset, CHAMPION)
        for key, value in {
            "validation_status": APPROVED,
            "approved_by": approved_by,
            "approved_at": datetime.now(UTC).isoformat(),
            "evidence_run_id": evidence_run_id,
        }.items():
            registry.client.set_model_version_tag(name, version, key, value)
        if old is not None and old.version != version:
            registry.client.set_registered_model_alias(name, PREVIOUS, old.version)
        registry.client.set_registered_model_alias(name, CHAMPION, version)
        challenger = registry.by_alias(dataset, CHALLENGER)
        if challenger is not None and challenger.version == version:
            registry.client.delete_registered_model_alias(name, CHALLENGER)
    set_route(registry, dataset, Route(mode="champion"))


def reject(registry: Registry, dataset: str, version: str, *, reason: str) -> None:
    """Archive a challenger with the reason: it loses the alias, the router serves the champion only."""
    name = model_name(dataset)
    registry.set_tags(dataset, version, {"validation_status": REJECTED, "rejected_reason": reason})
    with registry._alias_lock():
        challenger = registry.by_alias(dataset, CHALLENGER)
        if challenger is not None and challenger.version == version:
            registry.client.delete_registered_model_alias(name, CHALLENGER)
    set_route(registry, dataset, Route(mode="champion"))


def last_approved(registry: Registry, dataset: str, *, before: str | None = None) -> RegisteredVersion | None:
    """The newest approved version older than ``before`` (never merely "the previous version number")."""
    for version in registry.versions(dataset):
        if before is not None and int(version.version) >= int(before):
            continue
        if version.tags.get("validation_status") == APPROVED:
            return version
    return None


def rollback(registry: Registry, dataset: str, *, reason: str) -> RegisteredVersion:
    """Put the last approved champion back; record why on the version rolled back from.

    Raises:
        LookupError: there is no earlier approved version to go back to.
    """
    name = model_name(dataset)
    with registry._alias_lock():
        current = registry.by_alias(dataset, CHAMPION)
        back_to = last_approved(registry, dataset, before=current.version if current else None)
        if back_to is None:
            raise LookupError(f"{name}: no earlier approved version to roll back to")
        if current is not None:
            registry.set_tags(
                dataset, current.version, {"validation_status": ROLLED_BACK, "rollback_reason": reason}
            )
        registry.client.set_registered_model_alias(name, CHAMPION, back_to.version)
    set_route(registry, dataset, Route(mode="champion"))
    return registry.get(name, back_to.version)
