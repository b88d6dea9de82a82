"""The pub/sub service's test harness: a ledger written by this process, a
real `fsfeed serve` process reading it on a free loopback port, and clients
that sign requests with botocore's own v2 and v4 signers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import fsfeed
import pytest
import urllib3
from botocore.auth import HmacV1Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fsfeed/target"))
FSFEED = os.environ.get("FSFEED_BIN", str(TARGET / "debug" / "fsfeed"))

CONFIG = """
[zone]
zonegroup = "default"
events_retention_days = 7
[[users]]
uid = "alice"
access_key = "AKALICE"
secret_key = "alice-secret"
[[users]]
uid = "bob"
tenant = "t2"
access_key = "AKBOB"
secret_key = "bob-secret"
[[users]]
uid = "carol"
access_key = "AKCAROL"
secret_key = "carol-secret"
[buckets]
photos = "alice"
[push]
retry_initial_ms = 100
retry_max_ms = 400
"""

KEYS = {
    "alice": ("AKALICE", "alice-secret"),
    "bob": ("AKBOB", "bob-secret"),
    "carol": ("AKCAROL", "carol-secret"),
}

HTTP = urllib3.PoolManager(maxsize=32, retries=False, timeout=30)


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def query(pairs: list[tuple[str, str | None]]) -> str:
    out = []
    for k, v in pairs:
        k = urllib.parse.quote(k, safe="")
        out.append(k if v is None else f"{k}={urllib.parse.quote(v, safe='')}")
    return "&".join(out)


class Client:
    """Raw HTTP requests, signed by botocore's v4 (any service) or v2 signer."""

    def __init__(
        self, url: str, key: str, secret: str, sig: str = "v4", service: str = "s3"
    ) -> None:
        self.url = url
        self.creds = Credentials(key, secret)
        self.sig = sig
        self.service = service

    def call(
        self,
        method: str,
        path: str,
        q: list[tuple[str, str | None]] | str = "",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ) -> Reply:
        qs = q if isinstance(q, str) else query(q)
        url = self.url + path + ("?" + qs if qs else "")
        req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
        if sign:
            if self.sig == "v4":
                req.headers["X-Amz-Content-SHA256"] = __import__("hashlib").sha256(body).hexdigest()
                SigV4Auth(self.creds, self.service, "default").add_auth(req)
            else:
                HmacV1Auth(self.creds).add_auth(req)
        r = HTTP.request(method, url, body=body or None, headers=dict(req.headers.items()))
        return Reply(r.status, r.headers, r.data)


class Server:
    def __init__(self, ledger: Path, config: Path) -> None:
        self.ledger = ledger
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = config.parent / "serve.log"

    def start(self) -> None:
        with open(self.log, "a") as log:
            self._spawn(log)

    def _spawn(self, log: Any) -> None:
        self.proc = subprocess.Popen(
            [
                FSFEED,
                "serve",
                "--ledger",
                str(self.ledger),
                "--config",
                str(self.config),
                "--listen",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "RUST_LOG": "info"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on http://"), line + self.log.read_text()
        self.url = line.removeprefix("listening on ")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Env:
    ledger: fsfeed.Ledger
    dir: Path
    server: Server

    def client(self, who: str, sig: str = "v4", service: str = "s3") -> Client:
        k, s = KEYS[who]
        return Client(self.server.url, k, s, sig, service)

    def boto(self, kind: str, who: str) -> Any:
        k, s = KEYS[who]
        return boto3.client(
            kind,
            endpoint_url=self.server.url,
            aws_access_key_id=k,
            aws_secret_access_key=s,
            region_name="default",
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def put(self, key: str, bucket: str = "photos", size: int = 1, at: int | None = None) -> int:
        op = fsfeed.Op.commit("vol1", bucket, key, size=size)
        if at is not None:
            op = op.at(at)
        return self.ledger.append(op)

    def delete(self, key: str, bucket: str = "photos") -> int:
        return self.ledger.append(fsfeed.Op.delete("vol1", bucket, key))


def make_env(tmp_path: Path, config: str = CONFIG, retention: dict | None = None) -> Iterator[Env]:
    d = tmp_path / "ledger"
    led = fsfeed.Ledger.open(d, durability="sync", retention=retention)
    led.append(fsfeed.Op.bucket_create("vol1", "photos").by("nobody"))
    led.append(fsfeed.Op.bucket_create("vol1", "docs").by("alice"))
    led.append(fsfeed.Op.bucket_create("vol1", "t2stuff").by("t2$bob"))
    led.append(fsfeed.Op.bucket_create("vol1", "carols").by("carol"))
    cfg = tmp_path / "pubsub.toml"
    cfg.write_text(config)
    srv = Server(d, cfg)
    srv.start()
    try:
        yield Env(led, d, srv)
    finally:
        if srv.alive():
            srv.stop()
        led.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)


def wait_until(cond: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
