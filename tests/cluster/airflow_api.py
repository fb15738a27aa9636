"""A small client of the Airflow 3 REST API (``/api/v2``) for the cluster test: trigger
runs, unpause DAGs, wait for runs, read task instances."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

FINISHED = {"success", "failed"}


@dataclass
class AirflowApi:
    base_url: str
    user: str
    password: str = field(repr=False)
    _token: str = field(default="", repr=False)

    def _headers(self) -> dict[str, str]:
        if not self._token:
            response = requests.post(
                f"{self.base_url}/auth/token",
                json={"username": self.user, "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(5):
            try:
                response = requests.request(
                    method, f"{self.base_url}/api/v2{path}", headers=self._headers(),
                    timeout=60, **kwargs,
                )  # fmt: skip
            except requests.ConnectionError:
                if attempt == 4:
                    raise
                time.sleep(5)
                continue
            if response.status_code == 401:
                self._token = ""
                continue
            response.raise_for_status()
            return response.json() if response.content else None
        raise RuntimeError(f"{method} {path}: still unauthorised")

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.request("GET", f"/dags/{dag_id}")
                return
            except requests.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None,
                                                                      "conf": conf})  # fmt: skip
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=500")
        return list(data["task_instances"])

    def wait_finished(self, dag_id: str, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
            time.sleep(5)
