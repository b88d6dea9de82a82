"""Python read throughput against the Rust core, side by side in one run.

    python bindings/python/bench/bench_read.py [--events N] [--rounds R]

Fills a temporary ledger with N realistic ops (the CLI's `workload`
generator through `fsfeed append`), then, for each format, reads everything
R times through (a) `cursor.read()` in Python, records as dicts, and (b) the
same cursor kind read and rendered by the Rust core alone (`_read_core`, no
Python objects). Rounds alternate (a) and (b), so machine noise hits both;
the ratio uses the best round of each. Also times `ledger.history()` into a
pyarrow table, from the sealed Parquet segments and from the row path (the
same ledger reopened with `segments=False`), against
`pyarrow.parquet.read_table` of the same events from one local zstd Parquet
file (`history_segments_vs_parquet`, target >= 0.5;
`history_rows_vs_parquet` beside it), and the segments' bytes per event.
Prints a table and a JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fsfeed
import pyarrow as pa
import pyarrow.parquet as pq


def fill(path: Path, events: int) -> None:
    cli = shutil.which("fsfeed") or os.environ.get("FSFEED_CLI")
    if cli is None:
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        cli = str(Path(target) / "release" / "fsfeed")
    fsfeed.Ledger.open(path).close()
    gen = subprocess.Popen(
        [cli, "workload", "--events", str(events), "--seed", "5", "--start-us", "1767225600000000"],
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        [cli, "append", "--ledger", str(path), "--durability", "buffered"],
        stdin=gen.stdout,
        check=True,
    )
    gen.wait()


def python_read(led: fsfeed.Ledger, fmt: str) -> tuple[int, float]:
    c = led.cursor(start="earliest", format=fmt)
    n, t = 0, time.perf_counter()
    while True:
        b = c.read(max=1000, timeout=0)
        if b.empty:
            break
        for rec in b.records:  # touch every record, as a consumer does
            n += 1 if rec else 0
    return n, time.perf_counter() - t


def core_read(led: fsfeed.Ledger, fmt: str) -> tuple[int, float]:
    c = led.cursor(start="earliest", format=fmt)
    t = time.perf_counter()
    n = c._read_core(1 << 62)
    return n, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    fill(tmp / "ledger", args.events)
    out: dict[str, float] = {"events": args.events}
    with fsfeed.Ledger.open(tmp / "ledger") as led:
        for fmt in ("native", "s3"):
            py_best = core_best = 0.0
            for _ in range(args.rounds):
                n, s = python_read(led, fmt)
                py_best = max(py_best, n / s)
                n2, s2 = core_read(led, fmt)
                assert n2 == n, (n, n2)
                core_best = max(core_best, n2 / s2)
            out[f"python_{fmt}_per_s"] = round(py_best)
            out[f"core_{fmt}_per_s"] = round(core_best)
            out[f"python_vs_core_{fmt}"] = round(py_best / core_best, 3)
        led.seal()
        sealed = led.sealed_seq
        seg_dir = tmp / "ledger" / "segments"
        seg_bytes = sum(f.stat().st_size for f in seg_dir.iterdir())
        out["sealed_events"] = sealed
        out["segments_bytes_per_event"] = round(seg_bytes / max(sealed, 1), 1)
        table = pa.table(led.history())
        # The same events as one local zstd Parquet file, as a user would
        # export them, read back by pyarrow.
        one = tmp / "history.parquet"
        pq.write_table(table, one, compression="zstd")
        rates: dict[str, float] = {"segments": 0.0, "parquet": 0.0}
        for _ in range(args.rounds):
            t = time.perf_counter()
            n = pa.table(led.history()).num_rows
            rates["segments"] = max(rates["segments"], n / (time.perf_counter() - t))
            t = time.perf_counter()
            n = pq.read_table(one).num_rows
            rates["parquet"] = max(rates["parquet"], n / (time.perf_counter() - t))
    # The row path: the same ledger without segments.
    with fsfeed.Ledger.open(tmp / "ledger", segments=False) as led:
        rates["rows"] = 0.0
        for _ in range(args.rounds):
            t = time.perf_counter()
            rows = pa.table(led.history())
            rates["rows"] = max(rates["rows"], rows.num_rows / (time.perf_counter() - t))
        assert rows.equals(table), "the row path and the segments disagree"
    out["history_segments_to_pyarrow_per_s"] = round(rates["segments"])
    out["history_rows_to_pyarrow_per_s"] = round(rates["rows"])
    out["parquet_read_table_per_s"] = round(rates["parquet"])
    out["history_segments_vs_parquet"] = round(rates["segments"] / rates["parquet"], 3)
    out["history_rows_vs_parquet"] = round(rates["rows"] / rates["parquet"], 3)
    shutil.rmtree(tmp)
    print(f"{'figure':32} value")
    for k, v in out.items():
        print(f"{k:32} {v:,}")
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
