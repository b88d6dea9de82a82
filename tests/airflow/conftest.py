"""The Airflow tests' harness: Apache Airflow 3.3 from PyPI, in its own
virtualenv (scripts/airflow-venv.sh) with the wheel of `make dist` installed,
on SQLite in a temporary AIRFLOW_HOME, with its components as processes.

The ledger is written by this process (the system Python's fsfeed), as a
storage system would write it; Airflow reads it read-only from its own."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PY = os.environ.get("FSFEED_AIRFLOW_PY", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class Airflow:
    """One Airflow installation: a home, a SQLite database, its processes."""

    def __init__(self, home: Path) -> None:
        if not PY:
            pytest.fail("FSFEED_AIRFLOW_PY is not set: run these tests with `make test-airflow`")
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True)
        self.db = home / "airflow.db"
        api = free_port()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api),
            "AIRFLOW__API_AUTH__JWT_SECRET": "fsfeed-airflow-tests-" + "0" * 64,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
        self.api_port = api
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.airflow = str(Path(PY).parent / "airflow")
        r = subprocess.run(
            [self.airflow, "db", "migrate"],
            check=False,
            env=self.env,
            capture_output=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-4000:]

    def run_py(self, code: str, timeout: float = 300, **extra_env: str) -> str:
        """Runs `code` in Airflow's virtualenv; fails the test with its output if it fails."""
        r = subprocess.run(
            [PY, "-c", textwrap.dedent(code)],
            check=False,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if r.returncode != 0:
            raise AssertionError(f"exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}")
        return r.stdout

    def start(self, component: str, *args: str) -> None:
        log = open(self.home / f"{component}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.procs[component] = subprocess.Popen(
            [self.airflow, component, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self, component: str, sig: int = signal.SIGTERM) -> None:
        p = self.procs.pop(component)
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def log(self, component: str) -> str:
        return (self.home / f"{component}.log").read_text(errors="replace")

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=30) as c:
            return list(c.execute(sql, args))

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture
def airflow(tmp_path: Path) -> Iterator[Airflow]:
    af = Airflow(tmp_path / "airflow")
    try:
        yield af
    finally:
        af.close()
