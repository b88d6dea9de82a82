"""`fsfeed.spark`: the ledger as a Spark data source, batch and streaming,
against a real PySpark 4 in local mode (executors are Python workers that
open the ledger read-only, as on a cluster with shared storage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsfeed
import fsfeed.spark
import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
COLUMNS = [f.name for f in fsfeed.spark.SCHEMA.fields]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    # Loopback only (the machine's name may resolve elsewhere).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    s = (
        SparkSession.builder.master("local[2]")
        .appName("fsfeed-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .getOrCreate()
    )
    fsfeed.spark.register(s)
    yield s
    s.stop()


def fill(led: fsfeed.Ledger, n: int) -> None:
    start = led.head_seq
    for s in range(start, start + n, 20_000):
        led.append_batch(
            [
                fsfeed.Op.commit(
                    "vol1", ("photos", "logs")[i % 2], f"k{i}", size=i % 977, etag="e"
                ).at(T0 + i)
                for i in range(s, min(start + n, s + 20_000))
            ]
        )


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts, unsigned columns as Python ints either way."""
    return table.select(COLUMNS).to_pylist()


def spark_rows(df: Any) -> list[dict[str, Any]]:
    return rows(df.orderBy("seq").toArrow())


def test_a_batch_read_is_history_one_segment_per_task(spark: SparkSession, tmp_path: Path) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="buffered")
    fill(led, 70_000)
    assert led.seal() == 65_536
    df = spark.read.format("fsfeed").option("ledger", str(tmp_path / "l")).load()
    assert df.schema == fsfeed.spark.SCHEMA
    # One task per segment run: the sealed one, and the tail.
    assert df.rdd.getNumPartitions() == 2
    assert spark_rows(df) == rows(led.history().to_arrow())
    led.close()


def test_batch_options_since_until_filter_and_partitions(
    spark: SparkSession, tmp_path: Path
) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="buffered")
    fill(led, 5_000)
    flt = {"buckets": ["photos"]}
    df = (
        spark.read.format("fsfeed")
        .option("ledger", str(tmp_path / "l"))
        .option("since", "1001")
        .option("until", "3999")
        .option("filter", json.dumps(flt))
        .option("partitionSeqs", "1000")
        .load()
    )
    assert df.rdd.getNumPartitions() == 3
    want = rows(led.history(since=1001, until=3999, filter=flt).to_arrow())
    assert len(want) == 1_500
    assert spark_rows(df) == want
    # The ledger as load()'s path.
    assert spark.read.format("fsfeed").load(str(tmp_path / "l")).count() == 5_000
    # Times: an RFC 3339 `since` is the core's time lookup.
    df = (
        spark.read.format("fsfeed")
        .option("ledger", str(tmp_path / "l"))
        .option("since", "2026-01-01T00:00:00.004Z")
        .load()
    )
    assert df.count() == 1_000
    led.close()


def test_a_stream_resumes_exactly_once_and_moves_its_cursor(
    spark: SparkSession, tmp_path: Path
) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="buffered")
    fill(led, 1_000)
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"

    def run(checkpoint: Path, cursor: str = "lake", out: Path = out) -> Any:
        q = (
            spark.readStream.format("fsfeed")
            .option("ledger", str(tmp_path / "l"))
            .option("cursor", cursor)
            .option("maxEventsPerTrigger", "300")
            .load()
            .writeStream.format("parquet")
            .option("path", str(out))
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
        q.awaitTermination(120)
        assert q.exception() is None, q.exception()
        return q

    q = run(ckpt)
    assert sum(p["numInputRows"] for p in q.recentProgress) == 1_000
    assert len([p for p in q.recentProgress if p["numInputRows"]]) == 4  # 300 a trigger
    # Spark reports a batch done when the next starts: the cursor stands at
    # the end of one of them, never past what the sink holds.
    assert cursor(led) in (901, 1_001)
    fill(led, 500)
    run(ckpt)
    got = spark.read.parquet(str(out)).orderBy("seq")
    seqs = [r["seq"] for r in got.select("seq").collect()]
    assert seqs == list(range(1, 1_501))  # every event, once
    assert rows(got.toArrow()) == rows(led.history().to_arrow())
    # A new query (no checkpoint) with the cursor starts where it stands.
    at = cursor(led)
    assert at in (1_301, 1_501)
    fill(led, 40)
    q = run(tmp_path / "ckpt2", out=tmp_path / "out2")
    assert sum(p["numInputRows"] for p in q.recentProgress) == 1_541 - at
    led.close()


def cursor(led: fsfeed.Ledger, name: str = "lake") -> int:
    (pos,) = [c["position"] for c in led.stats()["cursors"] if c["name"] == name]
    assert pos["sub"] == 0
    return int(pos["seq"])


def test_bad_options_and_gaps_fail_with_fsfeeds_text(spark: SparkSession, tmp_path: Path) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="buffered", retention={"max_events": 100})
    fill(led, 300)
    path = str(tmp_path / "l")

    def load(**opts: str) -> Any:
        r = spark.read.format("fsfeed")
        for k, v in opts.items():
            r = r.option(k, v)
        return r.load().collect()

    for opts, text in [
        ({}, "needs option"),
        ({"ledger": path, "bogus": "1"}, "unknown fsfeed option"),
        ({"ledger": path, "since": "latest"}, "since must be a seq"),
        ({"ledger": path, "filter": "{not json"}, "filter is not JSON"),
        ({"ledger": path, "filter": "[1]"}, "JSON object"),
        ({"ledger": path, "filter": '{"kinds": ["nope"]}'}, "nope"),
        ({"ledger": path, "partitionSeqs": "0"}, "partitionSeqs"),
        ({"ledger": str(tmp_path / "missing")}, "no ledger"),
        ({"ledger": path, "since": "1"}, "gap"),
    ]:
        with pytest.raises(Exception, match=text):
            load(**opts)
    with pytest.raises(Exception, match="startingOffsets"):
        spark.readStream.format("fsfeed").option("ledger", path).option(
            "since", "5"
        ).load().writeStream.format("memory").queryName("bad").start().awaitTermination(60)
    led.close()


ROUNDS = 1_500  # batches of 20 the writer appends, 10 ms apart

WRITER = """
import sys, time, fsfeed
led = fsfeed.Ledger.open(sys.argv[1], durability="buffered")
for i in range(int(sys.argv[2])):
    led.append_batch([
        fsfeed.Op.commit("vol1", "photos", f"w{i}-{j}", size=j).at(1_767_225_600_000_000 + i)
        for j in range(20)
    ])
    time.sleep(0.01)
led.close()
"""


def test_a_stream_stopped_and_restarted_while_another_process_appends_gets_every_event_once(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "l"
    fsfeed.Ledger.open(path, durability="buffered").close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ROUNDS)])
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"

    def start() -> Any:
        return (
            spark.readStream.format("fsfeed")
            .option("ledger", str(path))
            .option("cursor", "live")
            .load()
            .writeStream.format("parquet")
            .option("path", str(out))
            .option("checkpointLocation", str(ckpt))
            .trigger(processingTime="200 milliseconds")
            .start()
        )

    try:
        q = start()
        deadline = time.monotonic() + 90
        while not sum(p["numInputRows"] for p in q.recentProgress):
            assert time.monotonic() < deadline, "the stream read nothing"
            time.sleep(0.1)
        q.stop()
        assert q.exception() is None, q.exception()
        # Stopped midway: some events in, the writer still going.
        first = spark.read.parquet(str(out)).count()
        assert 0 < first < ROUNDS * 20 and writer.poll() is None, first
        q = start()
        assert writer.wait(timeout=120) == 0
        q.processAllAvailable()
        q.stop()
        assert q.exception() is None, q.exception()
    finally:
        if writer.poll() is None:
            writer.kill()
    seqs = [r["seq"] for r in spark.read.parquet(str(out)).select("seq").collect()]
    assert sorted(seqs) == list(range(1, ROUNDS * 20 + 1))  # every event, exactly once


def test_filters_on_seq_bucket_kind_and_key_are_pushed_down(
    spark: SparkSession, tmp_path: Path
) -> None:
    from pyspark.sql.functions import col

    led = fsfeed.Ledger.open(tmp_path / "l", durability="buffered")
    fill(led, 1000)
    # A rename whose target matches the key prefix but whose key does not:
    # the core's prefix reads it, Spark's check drops it.
    led.append(fsfeed.Op.rename("vol1", "photos", "x/old", "k9-renamed").at(T0 + 2000))
    path = str(tmp_path / "l")
    base = spark.read.format("fsfeed").option("ledger", path).option("partitionSeqs", "100").load()
    assert base.rdd.getNumPartitions() == 11
    q = base.filter(
        (col("seq") > 900)
        & (col("bucket") == "photos")
        & col("key").startswith("k9")
        & col("kind").isin("commit", "rename")
    )
    # The seq bound is pushed: only the last two runs of 100 seqs are read.
    assert q.rdd.getNumPartitions() == 2
    want = [
        r
        for r in rows(led.history().to_arrow())
        if r["seq"] > 900 and r["bucket"] == "photos" and r["key"].startswith("k9")
    ]
    assert want and spark_rows(q) == want
    # What Spark still checks after the scan: only the key prefix.
    plan = q._jdf.queryExecution().executedPlan().toString()
    (checked,) = [line for line in plan.splitlines() if "Filter " in line]
    assert "StartsWith(key" in checked, plan
    for pushed in ("seq#", "bucket#", "kind#"):
        assert pushed not in checked, plan
    # Contradictions and kinds the core does not know give no rows, not errors.
    assert base.filter(col("bucket") == "nope").count() == 0
    assert base.filter(col("kind") == "no-such-kind").count() == 0
    assert base.filter((col("seq") > 10) & (col("seq") < 5)).count() == 0
    # With the option's filter, pushed values only narrow it.
    opt = (
        spark.read.format("fsfeed")
        .option("ledger", path)
        .option("filter", json.dumps({"buckets": ["logs"]}))
        .load()
    )
    assert opt.filter(col("bucket") == "photos").count() == 0
    assert opt.filter(col("bucket").isin("logs", "photos")).count() == 500
    led.close()
