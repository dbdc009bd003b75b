"""A small client for the Airflow 3 REST API (``/api/v2``), authenticated like a user.

Used by ``seqops platform up`` (unpause, trigger, wait) and by people's scripts. Talks to the
api-server only: tasks never touch the metadata database (Airflow 3 forbids it).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import httpx


class AirflowError(RuntimeError):
    """A refused or failed API call; ``status`` is the HTTP status (0 when none came back)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = (username, password)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:  # not running, wrong port: say so, not a traceback
            raise AirflowError(
                f"cannot reach Airflow at {self.base_url} ({exc}); start the platform with `make up`"
            ) from None

    def _login(self) -> str:
        username, password = self._auth
        resp = self._send("POST", "/auth/token", json={"username": username, "password": password})
        if resp.status_code not in (200, 201):
            raise AirflowError(
                f"login to {self.base_url} as {username!r} failed ({resp.status_code}): {resp.text[:200]}"
            )
        return resp.json()["access_token"]

    def request(self, method: str, path: str, **kwargs) -> dict:
        if self._token is None:
            self._token = self._login()
        headers = {"Authorization": f"Bearer {self._token}"}
        resp = self._send(method, path, headers=headers, **kwargs)
        if resp.status_code == 401:  # token expired: log in once more
            self._token = self._login()
            headers = {"Authorization": f"Bearer {self._token}"}
            resp = self._send(method, path, headers=headers, **kwargs)
        if resp.status_code >= 400:
            raise AirflowError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}", resp.status_code)
        return resp.json() if resp.content else {}

    def healthy(self) -> bool:
        try:
            resp = self._http.get("/api/v2/monitor/health", timeout=5)
        except httpx.HTTPError:
            return False
        if resp.status_code != 200:
            return False
        data = resp.json()
        return all(data.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    # -- resources -------------------------------------------------------------------------------
    def dags(self) -> list[dict]:
        return self.request("GET", "/api/v2/dags", params={"limit": 100})["dags"]

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/api/v2/importErrors")["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        run = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return self.request("GET", path, params={"limit": 1000})["task_instances"]

    def dag_runs(self, dag_id: str, *, limit: int = 20) -> list[dict]:
        """The latest runs of ``dag_id``, newest first."""
        path = f"/api/v2/dags/{dag_id}/dagRuns"
        return self.request("GET", path, params={"limit": limit, "order_by": "-run_after"})["dag_runs"]

    def hitl_details(self, dag_id: str, run_id: str = "~", **filters) -> list[dict]:
        """Human-in-the-loop requests (approvals) of ``dag_id`` (all runs with ``~``)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='~')}/hitlDetails"
        return self.request("GET", path, params=filters)["hitl_details"]

    def respond(
        self, dag_id: str, run_id: str, task_id: str, options: list[str], map_index: int = -1
    ) -> dict:
        """Answer a waiting human-in-the-loop task as this client's user (403 if not assigned)."""
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/"
            f"{map_index}/hitlDetails"
        )
        return self.request("PATCH", path, json={"chosen_options": options})

    #: How long a human-in-the-loop task must have been waiting before it is answered: Airflow 3.3
    #: loses an answer given while the paused task's worker is still exiting (it retries the task,
    #: which then asks again).
    SETTLE_S = 3.0

    def settled_input(self, dag_id: str, run_id: str, task_id: str, *, timeout: float = 180) -> dict:
        """The task's open request once it has been awaiting input for :attr:`SETTLE_S` seconds."""
        import time

        from seqops.platform.waits import poll

        since: dict[int, float] = {}

        def settled() -> dict | None:
            found = self.hitl_details(dag_id, run_id, task_id=task_id, response_received=False)
            ti = found[0]["task_instance"] if found else {}
            if ti.get("state") != "awaiting_input":
                return None
            first = since.setdefault(ti["try_number"], time.monotonic())
            return found[0] if time.monotonic() - first >= self.SETTLE_S else None

        return poll(
            settled,
            timeout=timeout,
            every=1,
            timed_out=lambda: f"{task_id} did not settle into awaiting input",
        )

    def answer_lost(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> bool:
        """After an answer to ``try_number``: did Airflow drop it (the task restarts and asks again)?"""
        from seqops.platform.waits import poll

        def outcome() -> bool | None:
            ti = {t["task_id"]: t for t in self.task_instances(dag_id, run_id)}[task_id]
            if ti["try_number"] > try_number or ti["state"] == "up_for_retry":
                return True
            return False if ti["state"] in ("success", "skipped", "failed", "upstream_failed") else None

        try:
            return poll(outcome, timeout=60, every=2, timed_out=lambda: "")
        except TimeoutError:
            return False  # still resuming: the answer is recorded on this try

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 1800,
        poll: float = 3.0,
        progress: Callable[[str], None] | None = None,
    ) -> str:
        """Block until the run ends; return its final state. Reports task progress as it goes."""
        from seqops.platform.waits import poll as poll_until

        last = [""]

        def finished() -> str | None:
            state = self.dag_run(dag_id, run_id)["state"]
            if progress is not None:
                tis = self.task_instances(dag_id, run_id)
                done = sum(ti["state"] in {"success", "failed", "skipped", "upstream_failed"} for ti in tis)
                line = f"{dag_id} {state}: {done}/{len(tis)} task instances finished"
                if line != last[0]:
                    progress(line)
                    last[0] = line
            return state if state in {"success", "failed"} else None

        try:
            return poll_until(
                finished,
                timeout=timeout,
                every=poll,
                timed_out=lambda: f"{dag_id} run {run_id} did not finish within {timeout:.0f} s",
            )
        except TimeoutError as exc:
            raise AirflowError(str(exc)) from None
