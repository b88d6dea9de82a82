"""fsfeed against Redis Streams and NATS JetStream, side by side in one run.

    make bench-compare [EVENTS=N]
    python3 bench/compare.py --events N [--out DIR] [--bin PATH] [--cli PATH]

Starts Debian's `redis-server` (AOF on, automatic rewrites off) and
`nats-server` (JetStream, file storage) on loopback ports, each in its own
temporary directory, and stops them at the end, also on failure. Runs the
Rust harness (`bench/compare`, binary `fsfeed-bench-compare`: appends,
consumption, latency, disk bytes, raw RocksDB and disk limits), then the
Python consumer loop (the `fsfeed` package against redis-py on the same
events), computes the ratios fsfeed / peer and checks every figure is there.
Writes `DIR/latest.json` (default `bench/results`), and `bench/report.py`
turns it into the plots and `BENCHMARKS.md`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report

# name -> (numerator path, denominator path, target, "higher"/"lower" is better).
# The append targets are those of the append-path issue (#17): one sync
# append at a time waits for its own fsync, the physical limit, so its
# target is parity with Redis; the plain ledger (namespace off) is held
# to 0.8 of raw RocksDB batches of the same bytes.
RATIOS: dict[str, tuple[str, str, float | None, str]] = {
    "append_sync_vs_redis": ("append.fsfeed.sync.batch", "append.redis.sync.batch", 2.0, "higher"),
    "append_buffered_vs_redis": (
        "append.fsfeed.buffered.batch",
        "append.redis.buffered.batch",
        2.0,
        "higher",
    ),
    "append_sync_single_vs_redis": (
        "append.fsfeed.sync.single",
        "append.redis.sync.single",
        1.0,
        "higher",
    ),
    "append_buffered_single_vs_redis": (
        "append.fsfeed.buffered.single",
        "append.redis.buffered.single",
        2.0,
        "higher",
    ),
    "consume_vs_redis": ("consume.fsfeed", "consume.redis", 3.0, "higher"),
    "append_sync_vs_nats": ("append.fsfeed.sync.batch", "append.nats.sync.batch", None, "higher"),
    "append_buffered_vs_nats": (
        "append.fsfeed.buffered.batch",
        "append.nats.buffered.batch",
        None,
        "higher",
    ),
    "append_sync_single_vs_nats": (
        "append.fsfeed.sync.single",
        "append.nats.sync.single",
        None,
        "higher",
    ),
    "consume_vs_nats": ("consume.fsfeed", "consume.nats", None, "higher"),
    "p99_latency_vs_redis": (
        "latency_us.fsfeed.sync.p99",
        "latency_us.redis.sync.p99",
        1.0,
        "lower",
    ),
    "p99_latency_buffered_vs_redis": (
        "latency_us.fsfeed.buffered.p99",
        "latency_us.redis.buffered.p99",
        1.0,
        "lower",
    ),
    "p99_latency_vs_nats": (
        "latency_us.fsfeed.sync.p99",
        "latency_us.nats.sync.p99",
        None,
        "lower",
    ),
    "bytes_per_event_vs_redis": ("bytes_per_event.fsfeed", "bytes_per_event.redis", 1.0, "lower"),
    "bytes_per_event_vs_nats": ("bytes_per_event.fsfeed", "bytes_per_event.nats", None, "lower"),
    "buffered_batch_vs_raw_rocksdb": (
        "append.fsfeed.buffered.batch",
        "limits.raw_rocksdb_buffered_batch",
        0.7,
        "higher",
    ),
    "buffered_batch_no_namespace_vs_raw_rocksdb": (
        "append.fsfeed.buffered_no_namespace.batch",
        "limits.raw_rocksdb_buffered_batch",
        0.8,
        "higher",
    ),
    "append_buffered_no_namespace_vs_redis": (
        "append.fsfeed.buffered_no_namespace.batch",
        "append.redis.buffered.batch",
        None,
        "higher",
    ),
    "append_buffered_segments_on_vs_off": (
        "segments_cost.on_median",
        "segments_cost.off_median",
        0.9,
        "higher",
    ),
    "sync_batch_vs_raw_rocksdb": (
        "append.fsfeed.sync.batch",
        "limits.raw_rocksdb_sync_batch",
        None,
        "higher",
    ),
    "python_consume_vs_redis_py": (
        "python.fsfeed_consume",
        "python.redis_py_consume",
        None,
        "higher",
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{name} did not listen on {port} within 20 s:\n{log.read_text()[-2000:]}")


class Servers:
    """redis-server and nats-server on loopback, in `base`; stopped by `stop()`."""

    def __init__(self, base: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        for exe in ("redis-server", "nats-server"):
            if shutil.which(exe) is None:
                raise SystemExit(f"{exe} is not installed: run `make setup` first")
        self.redis_dir = base / "redis"
        self.redis_dir.mkdir()
        self.redis_port = free_port()
        log = base / "redis.log"
        # AOF on, fsync policy set per run by the harness (CONFIG SET),
        # no RDB snapshots and no automatic AOF rewrite: the AOF's growth
        # is what the appends wrote.
        args = [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.redis_port),
            "--dir", str(self.redis_dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--auto-aof-rewrite-percentage", "0",
            "--logfile", str(log),
        ]  # fmt: skip
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL))
        wait_port(self.redis_port, self.procs[-1], log, "redis-server")
        self.nats_dir = base / "nats"
        self.nats_dir.mkdir()
        self.nats_port = free_port()
        conf = base / "nats.conf"
        conf.write_text(
            f'listen: "127.0.0.1:{self.nats_port}"\njetstream {{ store_dir: "{self.nats_dir}" }}\n'
        )
        log = base / "nats.log"
        self.procs.append(
            subprocess.Popen(
                ["nats-server", "-c", str(conf), "-l", str(log)], stdout=subprocess.DEVNULL
            )
        )
        wait_port(self.nats_port, self.procs[-1], log, "nats-server")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def python_consume(cli: str, events: int, redis_port: int, work: Path) -> dict[str, float]:
    """The same consumer loop in Python: fsfeed's cursor against redis-py.

    Both see the same `events` workload ops. fsfeed: a named cursor,
    `read(max=1000)` (records as dicts) then `commit()`. Redis: the ops' JSON
    lines in a stream, `XREADGROUP COUNT 1000`, `json.loads` of each entry
    (dicts, as fsfeed hands out), `XACK` of the batch's ids.
    """
    import fsfeed
    import redis

    lines = subprocess.run(
        [cli, "workload", "--events", str(events), "--seed", "5", "--start-us", "1767225600000000"],
        check=True,
        capture_output=True,
    ).stdout.splitlines()
    path = work / "py-ledger"
    fsfeed.Ledger.open(path).close()
    subprocess.run(
        [cli, "append", "--ledger", str(path), "--durability", "buffered"],
        input=b"\n".join(lines) + b"\n",
        check=True,
        stdout=subprocess.DEVNULL,
    )
    r = redis.Redis(host="127.0.0.1", port=redis_port)
    key = "fsfeed-bench-py"
    r.delete(key)
    for i in range(0, len(lines), 1000):
        p = r.pipeline(transaction=False)
        for line in lines[i : i + 1000]:
            p.xadd(key, {"e": line})
        p.execute()
    r.xgroup_create(key, "g", id="0")

    def fsfeed_loop() -> float:
        with fsfeed.Ledger.open(path) as led:
            c = led.cursor("py", start="earliest")
            n, t = 0, time.perf_counter()
            while n < events:
                b = c.read(max=1000, timeout=5)
                if b.empty:
                    raise SystemExit(f"fsfeed Python consumer stalled at {n}")
                for rec in b.records:
                    n += 1 if rec["kind"] else 0
                c.commit()
            return n / (time.perf_counter() - t)

    def redis_loop() -> float:
        n, t = 0, time.perf_counter()
        while n < events:
            reply = r.xreadgroup("g", "c", {key: ">"}, count=1000)
            if not reply:
                raise SystemExit(f"redis-py consumer stalled at {n}")
            ids = []
            for entry_id, fields in reply[0][1]:
                rec = json.loads(fields[b"e"])
                n += 1 if rec["kind"] else 0
                ids.append(entry_id)
            r.xack(key, "g", *ids)
        return n / (time.perf_counter() - t)

    out = {
        "events": float(events),
        "fsfeed_consume": fsfeed_loop(),
        "redis_py_consume": redis_loop(),
    }
    r.delete(key)
    r.close()
    shutil.rmtree(path)
    return out


def machine(work: Path) -> dict[str, Any]:
    def first(path: str, prefix: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    fs = subprocess.run(
        ["df", "--output=source,fstype", str(work)], check=False, capture_output=True, text=True
    ).stdout.split()
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": first("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
        "filesystem": " ".join(fs[-2:]) if len(fs) >= 2 else "unknown",
        "python": platform.python_version(),
    }


def get(d: dict[str, Any], path: str) -> float:
    v: Any = d
    for part in path.split("."):
        v = v[part]
    return float(v)


def ratios(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    out: dict[str, float] = {}
    targets: dict[str, Any] = {}
    for name, (num, den, target, better) in RATIOS.items():
        if name.startswith("python_") and "python" not in results:
            continue
        value = get(results, num) / get(results, den)
        if not math.isfinite(value) or value <= 0:
            raise SystemExit(f"ratio {name} is {value}: a figure is missing or zero")
        out[name] = round(value, 3)
        if target is not None:
            met = value >= target if better == "higher" else value <= target
            targets[name] = {"target": target, "better": better, "met": met}
    return out, targets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--latency-samples", type=int, default=4000)
    ap.add_argument("--python-events", type=int, help="default: events / 5, at most 200,000")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    ap.add_argument("--bin", default=str(target / "fsfeed-bench-compare"))
    ap.add_argument("--cli", default=str(target / "fsfeed"))
    ap.add_argument("--no-python", action="store_true", help="skip the Python rows")
    args = ap.parse_args()
    if args.events < 1000:
        ap.error("--events must be at least 1000")
    if args.latency_samples < 2:
        ap.error("--latency-samples must be at least 2")
    for exe in (args.bin, args.cli):
        if not Path(exe).is_file():
            ap.error(f"{exe} is missing: `make bench-compare` builds it")
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="fsfeed-bench-"))
    servers = None
    try:
        servers = Servers(base)
        work = base / "work"
        cmd = [
            args.bin,
            "--events", str(args.events),
            "--latency-samples", str(args.latency_samples),
            "--redis-port", str(servers.redis_port),
            "--redis-dir", str(servers.redis_dir),
            "--nats-port", str(servers.nats_port),
            "--nats-dir", str(servers.nats_dir),
            "--work", str(work),
        ]  # fmt: skip
        results = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)
        if not args.no_python:
            n = args.python_events or max(1000, min(args.events // 5, 200_000))
            print(f"bench-compare: Python consumers, {n} events", file=sys.stderr)
            results["python"] = python_consume(args.cli, n, servers.redis_port, work)
        results["machine"] = machine(base)
    finally:
        if servers is not None:
            servers.stop()
        shutil.rmtree(base, ignore_errors=True)
    results["ratios"], results["targets"] = ratios(results)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, args.out)
    print(f"{'ratio (fsfeed / peer)':44} {'value':>8}  target")
    for name, value in results["ratios"].items():
        print(f"{name:44} {value:8.3f}  {report.verdict(results, name)}")
    print(f"wrote {args.out / 'latest.json'} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
