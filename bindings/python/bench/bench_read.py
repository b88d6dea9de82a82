"""Python read throughput against the Rust core, side by side in one run.

    python bindings/python/bench/bench_read.py [--events N] [--rounds R]

Fills a temporary ledger with N realistic ops (the CLI's `workload`
generator through `fsfeed append`), then, for each format, reads everything
R times through (a) `cursor.read()` in Python, records as dicts, and (b) the
same cursor kind read and rendered by the Rust core alone (`_read_core`, no
Python objects). Rounds alternate (a) and (b), so machine noise hits both;
the ratio uses the best round of each. Also times `ledger.history()` into a
pyarrow table, and what a stored columnar copy would cost and give (the
history as Arrow IPC, lz4 and zstd: bytes per event, read rate). Prints a
table and a JSON line with every figure.
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
        best = 0.0
        for _ in range(args.rounds):
            t = time.perf_counter()
            table = pa.table(led.history())
            best = max(best, table.num_rows / (time.perf_counter() - t))
        out["history_to_pyarrow_per_s"] = round(best)
        # What a stored columnar copy of the history would cost and give (not
        # built: a decision for the team): the same table as an Arrow IPC
        # stream of 65,536-row batches, its size and how fast pyarrow reads it.
        for codec in ("lz4", "zstd"):
            sink = pa.BufferOutputStream()
            opts = pa.ipc.IpcWriteOptions(compression=codec)
            with pa.ipc.new_stream(sink, table.schema, options=opts) as w:
                for b in table.to_batches(max_chunksize=65_536):
                    w.write_batch(b)
            buf = sink.getvalue()
            best = 0.0
            for _ in range(args.rounds):
                t = time.perf_counter()
                rows = pa.ipc.open_stream(buf).read_all().num_rows
                best = max(best, rows / (time.perf_counter() - t))
            out[f"ipc_{codec}_bytes_per_event"] = round(buf.size / table.num_rows, 1)
            out[f"ipc_{codec}_to_pyarrow_per_s"] = round(best)
    shutil.rmtree(tmp)
    print(f"{'figure':32} value")
    for k, v in out.items():
        print(f"{k:32} {v:,}")
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
