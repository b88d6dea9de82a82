"""End to end: objects written to a source bucket with boto3 and the
matching ops appended to the ledger (creates, overwrites, deletes, a
directory rename in an FSO bucket), the uploader, then the backup tool
(examples/backup/backup.py): the backup bucket equals the source bucket,
key for key and byte for byte, over three windows."""

from __future__ import annotations

import datetime
import random
import subprocess
import sys
from pathlib import Path

import fsfeed
from conftest import Env

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "examples" / "backup" / "backup.py"


def contents(env: Env, bucket: str) -> dict[str, bytes]:
    out = {}
    for page in env.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = env.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def test_backup_over_three_windows(env: Env) -> None:
    env.write_config("max_events_per_object = 25", '[[sources]]\nbucket = "src"')
    env.s3.create_bucket(Bucket="src")
    env.s3.create_bucket(Bucket="bak")
    env.ledger.append(fsfeed.Op.bucket_create("vol1", "src").with_layout("fso"))
    rng = random.Random(11)
    live: set[str] = set()

    def put(key: str) -> None:
        body = rng.randbytes(rng.randint(1, 2000))
        env.s3.put_object(Bucket="src", Key=key, Body=body)
        env.ledger.append(fsfeed.Op.commit("vol1", "src", key, size=len(body)).with_layout("fso"))
        live.add(key)

    def delete(key: str) -> None:
        env.s3.delete_object(Bucket="src", Key=key)
        env.ledger.append(fsfeed.Op.delete("vol1", "src", key).with_layout("fso"))
        live.discard(key)

    for r in range(3):
        # Each backup covers the changes since the previous one started.
        since = datetime.datetime.now(datetime.timezone.utc).isoformat()
        d = f"dir{r}"
        env.ledger.append(fsfeed.Op.create_directory("vol1", "src", d).with_layout("fso"))
        for i in range(12):
            put(f"{d}/f{i}")
        for key in rng.sample(sorted(live), 5):
            put(key)  # overwrite
        for key in rng.sample(sorted(live), 3):
            delete(key)
        if r == 1:
            # A directory rename: one op in the ledger, every object moved in the store.
            moved = sorted(k for k in live if k.startswith("dir0/"))
            for key in moved:
                new = "moved/" + key.removeprefix("dir0/")
                env.s3.copy_object(Bucket="src", Key=new, CopySource={"Bucket": "src", "Key": key})
                env.s3.delete_object(Bucket="src", Key=key)
                live.discard(key)
                live.add(new)
            env.ledger.append(fsfeed.Op.rename("vol1", "src", "dir0", "moved").with_layout("fso"))
        assert env.once()["objects"] >= 1
        args = [
            sys.executable,
            str(BACKUP),
            "--config",
            str(env.config),
            "--source",
            "src",
            "--dest",
            "bak",
            "--since",
            since,
        ]
        p = subprocess.run(args, capture_output=True, text=True, check=False, env=env.environ())
        assert p.returncode == 0, p.stderr
        assert contents(env, "bak") == contents(env, "src"), f"window {r}"
        # Idempotent: again, nothing changes.
        p = subprocess.run(args, capture_output=True, text=True, check=False, env=env.environ())
        assert p.returncode == 0 and contents(env, "bak") == contents(env, "src")
    assert len(env.object_keys()) >= 3
