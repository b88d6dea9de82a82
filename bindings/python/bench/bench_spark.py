"""The Spark data source against the Python package, in one run.

    make bench-spark            # or: python3 bindings/python/bench/bench_spark.py [--events N]

- Batch: `spark.read.format("fsfeed")` of a sealed ledger of N workload
  events into Spark's `noop` sink (every row read and converted), against
  `pyarrow.table(ledger.history())` of the same events: rows per second of
  each, best of `--rounds`, and `spark_batch_vs_history` (local[2]: the
  executors are two Python workers on this machine's two cores).
- Streaming latency: a query with `trigger(processingTime="0 seconds")` and
  `foreachBatch`, while this process appends one op every 100 ms; the time
  from before each append to the batch holding its seq reaching
  `foreachBatch` (p50, p99, max over `--samples`).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fsfeed
import fsfeed.spark
import pyarrow as pa
from bench_read import fill
from pyspark.sql import SparkSession


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=100)
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    tmp = Path(tempfile.mkdtemp(prefix="fsfeed-bench-spark-"))
    out: dict[str, Any] = {"events": args.events}
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.pyspark.python", sys.executable)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    fsfeed.spark.register(spark)
    try:
        fill(tmp / "ledger", args.events)
        with fsfeed.Ledger.open(tmp / "ledger", durability="buffered") as led:
            out["sealed_events"] = led.seal()
            arrow = spark_best = 0.0
            for _ in range(args.rounds):
                t = time.perf_counter()
                n = pa.table(led.history()).num_rows
                arrow = max(arrow, n / (time.perf_counter() - t))
                t = time.perf_counter()
                df = spark.read.format("fsfeed").option("ledger", str(tmp / "ledger")).load()
                df.write.format("noop").mode("overwrite").save()
                spark_best = max(spark_best, n / (time.perf_counter() - t))
            out["history_to_pyarrow_per_s"] = round(arrow)
            out["spark_batch_per_s"] = round(spark_best)
            out["spark_batch_vs_history"] = round(spark_best / arrow, 3)
            out.update(latency(spark, led, tmp, args.samples))
    finally:
        spark.stop()
        shutil.rmtree(tmp)
    print(json.dumps(out))
    return 0


def latency(spark: SparkSession, led: fsfeed.Ledger, tmp: Path, samples: int) -> dict[str, float]:
    appended: dict[int, float] = {}
    arrived: dict[int, float] = {}
    lock = threading.Lock()

    def on_batch(df: Any, _batch_id: int) -> None:
        now = time.perf_counter()
        seqs = [r["seq"] for r in df.select("seq").collect()]
        with lock:
            for s in seqs:
                arrived.setdefault(s, now)

    q = (
        spark.readStream.format("fsfeed")
        .option("ledger", str(tmp / "ledger"))
        .option("startingOffsets", "latest")
        .load()
        .writeStream.foreachBatch(on_batch)
        .option("checkpointLocation", str(tmp / "ckpt"))
        .trigger(processingTime="0 seconds")
        .start()
    )
    time.sleep(5)  # the first (empty) batches: planning, workers
    for i in range(samples):
        t = time.perf_counter()
        seq = led.append(fsfeed.Op.commit("vol1", "latency", f"k{i}", size=1))
        appended[seq] = t
        time.sleep(0.1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with lock:
            if all(s in arrived for s in appended):
                break
        time.sleep(0.05)
    q.stop()
    lat = sorted((arrived[s] - t) * 1000 for s, t in appended.items() if s in arrived)
    if len(lat) != len(appended):
        raise SystemExit(f"only {len(lat)} of {len(appended)} events arrived")
    return {
        "stream_latency_ms_p50": round(lat[len(lat) // 2], 1),
        "stream_latency_ms_p99": round(lat[min(len(lat) - 1, len(lat) * 99 // 100)], 1),
        "stream_latency_ms_max": round(lat[-1], 1),
    }


if __name__ == "__main__":
    sys.exit(main())
