"""`fsfeed watch` against Watchman, on the same tree and workloads, in one run.

Both follow one temporary tree: Watchman 4.9 (Debian's, a private server on its
own socket) and `fsfeed watch` (the CLI, a separate process appending to a
ledger). For each workload the script records Watchman's clock and the
ledger's head, runs the workload, waits for both, then compares:

- the set of changed paths: Watchman's `since` the clock (files, links and
  created or removed directories) against fsfeed's net changes since the seq
  (`Ledger.changes`; a directory's delete or rename stands for every path
  below it, as the namespace had them). They must be equal: a difference is
  an error (exit 1);
- CPU seconds of each process over the workload (/proc/PID/stat).

Then the latency from a write to an event: each of `--writes` single-file
writes is timed until Watchman's subscription reports it and until a
separate fsfeed reader (a read-only opener, woken by the writer's beacon)
reads its commit. And, as root, the recovery after an overflow: both are
restarted with `fs.inotify.max_queued_events` shrunk (restored at once), a
workload runs while both are stopped (SIGSTOP) so that both queues overflow, and Watchman's fresh-instance file list is set
beside fsfeed's diff (its `resync` ops).

`make bench-watch` runs it on 10,000 files; `make test-watch` on 2,000, to
check the path sets. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fsfeed

TICK = os.sysconf("SC_CLK_TCK")
MARK = ".bench-mark-"


def log(msg: str) -> None:
    print(f"watch bench: {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Watchman:
    """A private Watchman server watching `root`."""

    def __init__(self, state: Path, root: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        self.sock = str(state / "sock")
        self.root = str(root)
        self.proc = subprocess.Popen(
            [
                "watchman",
                f"--sockname={self.sock}",
                f"--statefile={state / 'state'}",
                f"--logfile={state / 'log'}",
                f"--pidfile={state / 'pid'}",
                "--foreground",
                "--no-save-state",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("watchman did not start")
            time.sleep(0.05)
        self.cmd(["watch", self.root])

    def cmd(self, args: list[Any]) -> dict[str, Any]:
        out = subprocess.run(
            ["watchman", f"--sockname={self.sock}", "--no-spawn", "--no-pretty", "-j"],
            input=json.dumps(args),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        reply: dict[str, Any] = json.loads(out.stdout)
        if "error" in reply:
            raise RuntimeError(f"watchman {args[0]}: {reply['error']}")
        return reply

    def clock(self) -> str:
        return str(self.cmd(["clock", self.root, {"sync_timeout": 60000}])["clock"])

    def since(self, clock: str) -> dict[str, Any]:
        return self.cmd(
            [
                "query",
                self.root,
                {
                    "since": clock,
                    "fields": ["name", "exists", "type", "new"],
                    "sync_timeout": 60000,
                },
            ]
        )

    def stop(self) -> None:
        try:
            self.cmd(["shutdown-server"])
        except (subprocess.SubprocessError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Fsfeed:
    """`fsfeed watch ROOT --ledger LEDGER` as a process, and a reader of its ledger."""

    def __init__(self, binary: str, root: Path, ledger: Path) -> None:
        self.proc = subprocess.Popen(
            # Watchman's own cookie files in the root are not the workload's.
            [binary, "watch", str(root), "--ledger", str(ledger), "--ignore", ".watchman-cookie-*"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("watching "):
            raise RuntimeError(f"fsfeed watch did not start: {line!r}")
        self.bucket = line.rsplit(" ", 1)[1].strip()
        self.ledger = fsfeed.Ledger.open(ledger, read_only=True)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        self.ledger.close()
        counters: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return counters


def wait_for_mark(f: Fsfeed, w: Watchman, root: Path, n: int) -> None:
    """Both have seen everything before now: a mark file reached each."""
    name = f"{MARK}{n}"
    (root / name).write_bytes(b"")
    deadline = time.monotonic() + 120
    cur = f.ledger.cursor(start="earliest" if f.ledger.head_seq == 0 else f.ledger.head_seq)
    seen = False
    while not seen:
        if time.monotonic() > deadline:
            raise RuntimeError("fsfeed did not see the mark")
        for r in cur.read(max=10_000, timeout=1).records:
            if r.get("key") == name and r.get("kind") == "commit":
                seen = True
    w.clock()  # a clock query syncs Watchman with a cookie of its own


def fsfeed_paths(f: Fsfeed, since: int) -> set[str]:
    """Net changes since `since`, with directories expanded as the namespace had them."""
    led = f.ledger
    head = led.head_seq
    before = {e["path"]: e["is_dir"] for e in led.tree(f.bucket, seq=since - 1)}
    after = {e["path"]: e["is_dir"] for e in led.tree(f.bucket, seq=head)}

    def below(tree: dict[str, bool], p: str) -> set[str]:
        return {k for k in tree if k.startswith(p + "/")}

    out: set[str] = set()
    for c in led.changes(since=since):
        key, change = c["key"], c["change"]
        if change == "DELETE":
            out.add(key)
            if before.get(key):
                out |= below(before, key)
        elif change == "RENAME":
            out |= {key, c["from_key"]}
            if after.get(key):
                out |= below(after, key) | below(before, c["from_key"])
        else:
            out.add(key)
    # Watchman lists directories only when created or removed.
    return {p for p in out if not (p in before and p in after and before[p] and after[p])}


def watchman_paths(w: Watchman, clock: str) -> set[str]:
    r = w.since(clock)
    if r.get("is_fresh_instance"):
        raise RuntimeError("watchman answered a fresh instance outside the overflow step")
    out = set()
    for e in r["files"]:
        if e["type"] == "d" and e["exists"] and not e["new"]:
            continue  # a directory whose entries changed
        out.add(e["name"])
    return out


WORKLOADS = [
    ("untar", "tar -xf ../proj.tar"),
    (
        "rename directories at several depths",
        (
            "mv proj/d00/e01 proj/d00/e01-r; mv proj/d03 proj/d03-r; mv proj/d04 proj/d00/d04-down; "
            "mv proj/d00/e02 proj/e02-up"
        ),
    ),
    ("rm -rf a subtree", "rm -rf proj/d05"),
    (
        "rewrite files in place",
        "for f in proj/d06/e00/*.txt; do printf 'rewritten %s' $f > $f; done",
    ),
    ("move out of the tree", "mv proj/d08 ../out-d08"),
    ("move into the tree", "mv ../src/proj/d09 moved-in"),
    ("chmod and touch", "chmod -R go-r proj/d07; touch -d 2001-02-03 proj/d10/e00/*"),
]


def make_tree(dir: Path, files: int, dirs: int = 25) -> None:
    for i in range(files):
        d = dir / f"d{i % dirs:02}" / f"e{(i // dirs) % 4:02}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05}.txt").write_bytes(b"x" * (i % 2048))


def latency(f: Fsfeed, w: Watchman, root: Path, writes: int) -> dict[str, Any]:
    """Time from a write (close) to Watchman's subscription and to fsfeed's reader."""
    # The JSON protocol on Watchman's socket (its CLI buffers what it prints).
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(w.sock)
    query = {"fields": ["name"], "expression": ["match", "lat-*", "basename"]}
    conn.sendall((json.dumps(["subscribe", str(root), "lat", query]) + "\n").encode())
    stream = conn.makefile("r", encoding="utf-8")
    seen_w: dict[str, float] = {}
    first = stream.readline()  # the subscribe reply
    assert "subscribe" in first, first

    def pump() -> None:
        for line in stream:
            t = time.monotonic()
            msg = json.loads(line)
            for name in msg.get("files", []):
                seen_w.setdefault(name, t)

    th = threading.Thread(target=pump, daemon=True)
    th.start()
    time.sleep(0.5)  # the subscription's initial answer
    seen_w.clear()
    cur = f.ledger.cursor(start=f.ledger.head_seq + 1)
    lat_f, lat_w = [], []
    for i in range(writes):
        name = f"lat-{i:05}"
        t0 = time.monotonic()
        with open(root / name, "wb") as fh:
            fh.write(b"payload")
        t_f = None
        while t_f is None:
            for r in cur.read(max=100, timeout=10).records:
                if r.get("key") == name and r.get("kind") == "commit":
                    t_f = time.monotonic()
            if time.monotonic() - t0 > 30:
                raise RuntimeError(f"fsfeed did not report {name}")
        while name not in seen_w:
            if time.monotonic() - t0 > 30:
                raise RuntimeError(f"watchman did not report {name}")
            time.sleep(0.0005)
        lat_f.append((t_f - t0) * 1000)
        lat_w.append((seen_w[name] - t0) * 1000)
        time.sleep(0.02)
    conn.close()

    def pct(v: list[float]) -> dict[str, float]:
        q = statistics.quantiles(v, n=100, method="inclusive")
        return {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2)}

    return {"writes": writes, "fsfeed": pct(lat_f), "watchman": pct(lat_w)}


def overflow(
    binary: str, base: Path, root: Path, ledger: Path, files: int
) -> dict[str, Any] | None:
    if os.geteuid() != 0:
        return None
    q = Path("/proc/sys/fs/inotify/max_queued_events")
    old = q.read_text().strip()
    q.write_text("64")
    try:
        w = Watchman(base / "wm-overflow", root)
        f = Fsfeed(binary, root, ledger)
    finally:
        q.write_text(old)
    try:
        wait_for_mark(f, w, root, 10_000)
        clock, seq = w.clock(), f.ledger.head_seq + 1
        cpu0 = (cpu_seconds(w.proc.pid), cpu_seconds(f.proc.pid))
        # Neither reads while the workload runs (stopped), so both queues overflow.
        for p in (w.proc.pid, f.proc.pid):
            os.kill(p, signal.SIGSTOP)
        try:
            subprocess.run(
                [
                    "bash",
                    "-euc",
                    f"for i in $(seq 1 {files // 4}); do echo $i > proj/d01/burst-$i; done; mv proj/d02 proj/d02-r",
                ],
                cwd=root,
                check=True,
            )
        finally:
            for p in (w.proc.pid, f.proc.pid):
                os.kill(p, signal.SIGCONT)
        wait_for_mark(f, w, root, 10_001)
        r = w.since(clock)
        cpu1 = (cpu_seconds(w.proc.pid), cpu_seconds(f.proc.pid))
        recs = f.ledger.cursor(start=seq).read(max=1_000_000, timeout=0).records
        counters = f.stop()
        return {
            "workload": f"{files // 4} new files and a directory rename while both are stopped, queue of 64 events",
            "watchman_fresh_instance": bool(r.get("is_fresh_instance")),
            "watchman_files_listed": len(r["files"]),
            "watchman_warning": r.get("warning"),
            "fsfeed_overflows": counters["overflows"],
            "fsfeed_ops": len(recs),
            "fsfeed_resync_ops": sum(1 for x in recs if x.get("source") == "resync"),
            "fsfeed_resync_paths": len({x["key"] for x in recs if x.get("source") == "resync"}),
            "cpu_s": {
                "watchman": round(cpu1[0] - cpu0[0], 2),
                "fsfeed": round(cpu1[1] - cpu0[1], 2),
            },
        }
    finally:
        w.stop()
        if f.proc.poll() is None:
            f.stop()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--fsfeed", default=os.environ.get("FSFEED_BIN", "fsfeed"))
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--writes", type=int, default=300)
    args = ap.parse_args()
    if shutil.which("watchman") is None:
        print("watchman is not installed (Debian: apt-get install watchman)", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="fsfeed-watch-bench-"))
    report: dict[str, Any] = {"files": args.files, "workloads": []}
    ok = True
    try:
        src, root, ledger = base / "src", base / "tree", base / "ledger"
        make_tree(src / "proj", args.files)
        subprocess.run(["tar", "-C", str(src), "-cf", str(base / "proj.tar"), "proj"], check=True)
        root.mkdir()
        w = Watchman(base / "wm", root)
        f = Fsfeed(args.fsfeed, root, ledger)
        try:
            mark = 0
            for name, script in WORKLOADS:
                log(name)
                wait_for_mark(f, w, root, mark)
                mark += 1
                clock, seq = w.clock(), f.ledger.head_seq + 1
                cpu0 = (cpu_seconds(w.proc.pid), cpu_seconds(f.proc.pid))
                subprocess.run(["bash", "-euc", script], cwd=root, check=True)
                wait_for_mark(f, w, root, mark)
                mark += 1
                cpu1 = (cpu_seconds(w.proc.pid), cpu_seconds(f.proc.pid))
                wp = {p for p in watchman_paths(w, clock) if not p.startswith(MARK)}
                fp = {p for p in fsfeed_paths(f, seq) if not p.startswith(MARK)}
                same = wp == fp
                ok &= same
                row: dict[str, Any] = {
                    "workload": name,
                    "paths": len(wp),
                    "same_paths": same,
                    "cpu_s": {
                        "watchman": round(cpu1[0] - cpu0[0], 2),
                        "fsfeed": round(cpu1[1] - cpu0[1], 2),
                    },
                }
                if not same:
                    row["only_watchman"] = sorted(wp - fp)[:20]
                    row["only_fsfeed"] = sorted(fp - wp)[:20]
                report["workloads"].append(row)
            log("latency")
            report["latency"] = latency(f, w, root, args.writes)
            report["counters"] = f.stop()
        finally:
            w.stop()
            if f.proc.poll() is None:
                f.stop()
        log("overflow")
        report["overflow"] = overflow(args.fsfeed, base, root, ledger, args.files)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(report, indent=2))
    if not ok:
        print("the changed paths differ (see only_watchman / only_fsfeed)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
