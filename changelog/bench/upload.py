"""The change-log uploader against a plain boto3 loop, side by side in one run.

    python changelog/bench/upload.py [--events N] [--rounds R]

Fills a temporary ledger with N realistic ops (`fsfeed workload` through
`fsfeed append`), starts moto's S3 server on loopback, then alternates R
rounds of three writers, each uploading everything under a fresh job and
prefix (windows of 10,000 events, gzip, the lease taken, checked before
every commit and given up, a commit per window):

(a) the uploader in process: `fsfeed.ChangeLog(config, ledger=L).run_once()`
    on a ledger this process opened once (read-only, as `changelog run`
    holds it while it loops);
(b) the command, `fsfeed changelog run --once` (release build), which also
    opens the ledger (replaying its write-ahead log) each time;
(c) a boto3 loop PUTting the bytes of (a)'s objects (downloaded first)
    under another prefix.

Events/s of each: events / wall time. Prints the medians and the ratios
against (c); the target is (a) at least 80% of (c).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import boto3
import fsfeed

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/fsfeed/target"))
FSFEED = os.environ.get("FSFEED_BIN", str(TARGET / "release" / "fsfeed"))
AK, SK = "AKBENCHCHANGELOG", "bench-changelog-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fsfeed-changelog-bench-"))
    port = free_port()
    moto = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client(
            "s3",
            endpoint_url=url,
            aws_access_key_id=AK,
            aws_secret_access_key=SK,
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="bench")
        ledger = work / "ledger"
        subprocess.run([FSFEED, "init", "--ledger", str(ledger)], check=True, capture_output=True)
        gen = subprocess.Popen(
            [FSFEED, "workload", "--events", str(a.events), "--seed", "3"], stdout=subprocess.PIPE
        )
        subprocess.run(
            [FSFEED, "append", "--ledger", str(ledger), "--durability", "buffered"],
            stdin=gen.stdout,
            check=True,
            capture_output=True,
        )
        gen.wait()
        uploader: list[float] = []
        command: list[float] = []
        plain: list[float] = []
        opened = fsfeed.Ledger.open(ledger, read_only=True)

        def config(job: str) -> str:
            return (
                f'job = "{job}"\nmax_events_per_object = 10000\n[dest]\nendpoint = "{url}"\n'
                f'bucket = "bench"\nprefix = "{job}"\naccess_key = "{AK}"\nsecret_key = "{SK}"\n'
            )

        for r in range(a.rounds):
            log = fsfeed.ChangeLog(config(f"in{r}"), ledger=opened)
            t = time.perf_counter()
            done = log.run_once()
            uploader.append(done["events"] / (time.perf_counter() - t))
            cfg = work / f"r{r}.toml"
            cfg.write_text(config(f"cli{r}"))
            t = time.perf_counter()
            p = subprocess.run(
                [
                    FSFEED,
                    "changelog",
                    "run",
                    "--ledger",
                    str(ledger),
                    "--config",
                    str(cfg),
                    "--once",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - t
            assert p.returncode == 0, p.stderr
            assert json.loads(p.stdout)["events"] == done["events"]
            command.append(done["events"] / elapsed)
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket="bench", Prefix=f"in{r}/")["Contents"]
                if o["Key"].endswith(".json.gz")
            ]
            bodies = [s3.get_object(Bucket="bench", Key=k)["Body"].read() for k in keys]
            t = time.perf_counter()
            for k, b in zip(keys, bodies):
                s3.put_object(Bucket="bench", Key="plain/" + k, Body=b)
            plain.append(done["events"] / (time.perf_counter() - t))
        u, c, pl = (statistics.median(x) for x in (uploader, command, plain))
        print(
            f"events: {done['events']}, rounds: {a.rounds}, objects per round: {len(keys)}, "
            f"bytes: {sum(map(len, bodies))}"
        )
        print("| writer | events/s (median) | against the boto3 loop |")
        print("|---|---:|---:|")
        print(f"| (a) the uploader in process (`ChangeLog.run_once`) | {u:,.0f} | {u / pl:.0%} |")
        print(f"| (b) `fsfeed changelog run --once` (opens the ledger) | {c:,.0f} | {c / pl:.0%} |")
        print(f"| (c) boto3 loop PUTting the same bytes | {pl:,.0f} | 100% |")
        print(f"ratio: {u / pl:.0%} (target 80%)")
        print(
            json.dumps(
                {
                    "events": done["events"],
                    "uploader_eps": uploader,
                    "command_eps": command,
                    "plain_eps": plain,
                    "ratio": u / pl,
                    "command_ratio": c / pl,
                }
            )
        )
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
