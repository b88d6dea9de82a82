"""`fsfeed export --parquet s3://...` against a real S3 server (moto): the
files read back with pyarrow's and polars' S3 support, incremental exports
with a cursor, a killed run's leftovers, a failing store, bad arguments."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import fsfeed
import pytest
from conftest import AK, FSFEED, SK, Env

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def fill(env: Env, start: int, n: int) -> None:
    env.ledger.append_batch(
        [
            fsfeed.Op.commit("vol1", ("photos", "logs")[i % 2], f"k{i}", size=i).at(T0 + i)
            for i in range(start, start + n)
        ]
    )


def store_file(env: Env, secret: str = "env:FSFEED_TEST_SK", endpoint: str = "") -> Path:
    path = env.dir / "store.toml"
    path.write_text(
        f'endpoint = "{endpoint or env.moto.url}"\naccess_key = "{AK}"\nsecret_key = "{secret}"\n'
    )
    return path


def export(env: Env, *args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [FSFEED, "export", "--ledger", str(env.dir / "ledger"), *args]
    if store is not None:
        cmd += ["--store", str(store)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env=env.environ()
    )


def ok(p: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert p.returncode == 0, p.stderr
    report: dict[str, Any] = json.loads(p.stdout)
    return report


def keys(env: Env, prefix: str) -> list[str]:
    out = env.s3.list_objects_v2(Bucket=env.bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in out)


def read_back(env: Env, prefix: str) -> Any:
    """The exported objects as one table, through pyarrow's S3 filesystem."""
    import pyarrow.dataset as ds
    from pyarrow import fs

    s3 = fs.S3FileSystem(
        access_key=AK,
        secret_key=SK,
        endpoint_override=env.moto.url,
        scheme="http",
        region="us-east-1",
    )
    return ds.dataset(f"{env.bucket}/{prefix}", format="parquet", filesystem=s3).to_table()


def test_an_export_to_s3_reads_back_as_history_and_keeps_up_with_a_cursor(env: Env) -> None:
    fill(env, 0, 3_000)
    store = store_file(env)
    dest = f"s3://{env.bucket}/lake/history"
    r1 = ok(export(env, "--parquet", dest, "--cursor", "lake", store=store))
    assert r1["dest"] == dest
    assert r1["files"] == ["00000000000000000001-00000000000000003000.parquet"]
    assert r1["committed"] == {"seq": 3001, "sub": 0}
    assert keys(env, "lake/") == ["lake/history/" + f for f in r1["files"]]
    history = env.ledger.history().to_arrow().combine_chunks()
    assert read_back(env, "lake/history").sort_by("seq").equals(history)
    # Only the new range the second time.
    fill(env, 3_000, 700)
    r2 = ok(export(env, "--parquet", dest, "--cursor", "lake", store=store))
    assert r2["files"] == ["00000000000000003001-00000000000000003700.parquet"]
    assert (r2["first_seq"], r2["last_seq"]) == (3001, 3700)
    history = env.ledger.history().to_arrow().combine_chunks()
    assert read_back(env, "lake/history").sort_by("seq").equals(history)
    # polars reads the same objects with its own S3 client.
    import polars as pl

    df = pl.read_parquet(
        f"s3://{env.bucket}/lake/history/*.parquet",
        storage_options={
            "aws_access_key_id": AK,
            "aws_secret_access_key": SK,
            "aws_endpoint_url": env.moto.url,
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        },
    )
    assert (df.height, df["seq"].sum()) == (3700, sum(range(1, 3701)))
    # A killed run's object, stored but never committed, is removed first.
    fill(env, 3_700, 50)
    stray = "lake/history/00000000000000003701-00000000000000003720.parquet"
    env.s3.put_object(Bucket=env.bucket, Key=stray, Body=b"not committed")
    r3 = ok(export(env, "--parquet", dest, "--cursor", "lake", store=store))
    assert r3["removed"] == [stray.rsplit("/", 1)[1]]
    assert stray not in keys(env, "lake/")
    assert read_back(env, "lake/history").num_rows == 3750


def test_a_failing_store_commits_nothing_and_prints_no_secret(env: Env) -> None:
    fill(env, 0, 100)
    dest = f"s3://{env.bucket}/x"
    # A bucket that is not there (moto checks no signature, so a wrong key
    # would pass): the server refuses the listing.
    missing = "s3://no-such-bucket-" + env.bucket + "/x"
    p = export(env, "--parquet", missing, "--cursor", "c", store=store_file(env, "a-secret-xyz"))
    assert p.returncode == 1, p.stderr
    assert "store_failed" in p.stderr
    assert "a-secret-xyz" not in p.stderr + p.stdout
    # Nothing listens there.
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    p = export(env, "--parquet", dest, "--cursor", "c", store=store_file(env, endpoint=dead))
    assert p.returncode == 1 and "store_failed" in p.stderr, p.stderr
    assert all(c["name"] != "c" for c in env.ledger.stats()["cursors"])
    assert keys(env, "x/") == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--parquet", "s3://b/x"], "--store"),
        (["--parquet", "gs://b/x"], "directory or s3://"),
        (["--parquet", "out", "--since", "latest"], "--since"),
        (["--parquet", "out", "--until", "soon"], "until"),
        (["--parquet", "out", "--cursor", "bad name"], "cursor"),
        (["--parquet", "out", "--since", "1", "--bogus"], "--bogus"),
    ],
)
def test_bad_export_arguments_exit_2(env: Env, args: list[str], needle: str) -> None:
    fill(env, 0, 10)
    args = [a if a != "out" else str(env.dir / "out") for a in args]
    p = export(env, *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr
    assert not (env.dir / "out").exists()


def test_a_progress_bar_only_on_a_terminal(env: Env, tmp_path: Path) -> None:
    fill(env, 0, 2_000)
    args = ["export", "--ledger", str(env.dir / "ledger"), "--parquet"]
    # Not a terminal: stdout is the report alone, stderr is empty.
    p = subprocess.run(
        [FSFEED, *args, str(tmp_path / "a")], capture_output=True, text=True, check=True
    )
    assert p.stderr == ""
    assert json.loads(p.stdout)["rows"] == 2_000
    # On a terminal (script(1) gives it a pty): the bar is drawn on stderr.
    cmd = " ".join([FSFEED, *args, str(tmp_path / "b")])
    p = subprocess.run(
        ["script", "-q", "-e", "-c", cmd, "/dev/null"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "seqs exported" in p.stdout, p.stdout
    assert (tmp_path / "b" / "00000000000000000001-00000000000000002000.parquet").exists()
