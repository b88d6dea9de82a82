"""The change log's test harness: a real S3-compatible server (moto's
`moto_server`) on a free loopback port, a ledger written by this process,
and the `fsfeed changelog` commands run as processes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import fsfeed
import pytest

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fsfeed/target"))
FSFEED = os.environ.get("FSFEED_BIN", str(TARGET / "debug" / "fsfeed"))
AK = "AKCHANGELOGTEST"
SK = "changelog-secret-key-never-printed"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Moto:
    def __init__(self) -> None:
        exe = shutil.which("moto_server")
        if exe is None:
            pytest.fail("moto_server is missing: make setup installs moto[server]")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    m = Moto()
    yield m
    m.stop()


@dataclass
class Env:
    moto: Moto
    dir: Path
    ledger: fsfeed.Ledger
    bucket: str
    config: Path
    s3: Any

    def write_config(self, extra: str = "", sources: str = "", prefix: str = "zone-a") -> None:
        self.config.write_text(
            f"""{extra}
{sources}
[dest]
endpoint = "{self.moto.url}"
bucket = "{self.bucket}"
prefix = "{prefix}"
access_key = "{AK}"
secret_key = "env:FSFEED_TEST_SK"
"""
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FSFEED, "changelog", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self.environ(env),
        )

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the commands run with (the secret key in FSFEED_TEST_SK)."""
        return {**os.environ, "FSFEED_TEST_SK": SK, **(extra or {})}

    def run_cmd(self) -> list[str]:
        """`fsfeed changelog run` on this ledger and config (it loops)."""
        return [
            FSFEED,
            "changelog",
            "run",
            "--ledger",
            str(self.dir / "ledger"),
            "--config",
            str(self.config),
        ]

    def run_once(self, **kw: Any) -> subprocess.CompletedProcess[str]:
        """`fsfeed changelog run --once`, whatever it exits with."""
        return self.run(*self.run_cmd()[2:], "--once", **kw)

    def once(self, **kw: Any) -> dict[str, Any]:
        p = self.run_once(**kw)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def object_keys(self) -> list[str]:
        out: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(k for k in out if k.endswith(".json.gz"))

    def body(self, key: str) -> dict[str, Any]:
        raw = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return json.loads(gzip.decompress(raw))

    def status(self) -> dict[str, Any]:
        p = self.run(
            "status", "--ledger", str(self.dir / "ledger"), "--config", str(self.config), "--json"
        )
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)


@pytest.fixture
def env(moto: Moto, tmp_path: Path) -> Iterator[Env]:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.url,
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        region_name="us-east-1",
    )
    bucket = "cl-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=bucket)
    led = fsfeed.Ledger.open(tmp_path / "ledger", durability="sync")
    e = Env(moto, tmp_path, led, bucket, tmp_path / "changelog.toml", s3)
    e.write_config()
    try:
        yield e
    finally:
        led.close()
