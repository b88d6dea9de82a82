"""Back up a bucket from the fsfeed change log, without crawling it.

    backup.py --config CHANGELOG.toml --source BUCKET --dest BUCKET [--since T] [--until T]

It reads the net changes of the time range with ``fsfeed.ChangeLog`` (the
change-log objects the uploader wrote, read back from the bucket in the
config's ``[dest]`` table), and brings each touched key of the backup bucket
to the source bucket's current state: new and changed objects are copied,
removed ones deleted, a renamed object is copied to its new key and deleted
at the old one. It reaches the store with the endpoint and keys of the same
``[dest]`` table. It is idempotent: running it again over the same range
changes nothing.

Run it incrementally, with ``--since`` at the previous run's start: net
changes over a range hide an object created and removed inside it, so a
range that starts before the previous backup would not delete a copy that
backup made of such an object.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

import boto3
import fsfeed
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError


def s3_client(log: fsfeed.ChangeLog) -> Any:
    dest, keys = log.dest, log.dest_keys()
    return boto3.client(
        "s3",
        endpoint_url=dest["endpoint"],
        region_name=dest["region"],
        aws_access_key_id=keys["access_key"],
        aws_secret_access_key=keys["secret_key"],
        verify=dest["verify_tls"],
        config=BotoConfig(s3={"addressing_style": "path" if dest["path_style"] else "virtual"}),
    )


def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def sync_key(s3: Any, source: str, dest: str, key: str) -> str:
    """Make ``dest/key`` what ``source/key`` is now; returns what it did."""
    if exists(s3, source, key):
        s3.copy_object(Bucket=dest, Key=key, CopySource={"Bucket": source, "Key": key})
        return "copied"
    s3.delete_object(Bucket=dest, Key=key)
    return "deleted"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the change log's TOML config")
    p.add_argument("--source", required=True, help="the bucket the ledger records")
    p.add_argument("--dest", required=True, help="the backup bucket")
    p.add_argument("--since", default="1970-01-01T00:00:00Z", help="RFC 3339 (inclusive)")
    p.add_argument("--until", default=None, help="RFC 3339 (exclusive; default: a day from now)")
    a = p.parse_args(argv)
    until = (
        a.until
        or (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).isoformat()
    )
    log = fsfeed.ChangeLog(a.config)
    s3 = s3_client(log)
    done = {"copied": 0, "deleted": 0}
    for row in log.fetch(a.since, until, net=True):
        if row["bucket"] != a.source:
            continue
        done[sync_key(s3, a.source, a.dest, row["key"])] += 1
        if row["change"] == "RENAME" and row.get("from_key"):
            done[sync_key(s3, a.source, a.dest, row["from_key"])] += 1
    print(f"copied {done['copied']}, deleted {done['deleted']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
