"""The uploader against a real S3 server (moto): windows, keys and bodies,
dedup, fetch, crashes between upload and commit, an unreachable store,
the lease, bad configs."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from typing import Any

import fsfeed
import pytest
from conftest import AK, SK, Env

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
KEY = re.compile(r"^zone-a/(\d{4})/(\d\d)/(\d\d)/(\d{6})-(\d{20})-(\d{20})\.json\.gz$")


def put(env: Env, key: str, i: int, bucket: str = "photos") -> int:
    return env.ledger.append(
        fsfeed.Op.commit("vol1", bucket, key, size=i + 1).at(T0 + i * 1_000_000)
    )


def test_windows_keys_and_bodies(env: Env) -> None:
    env.write_config("max_events_per_object = 10", '[[sources]]\nbucket = "photos"')
    for i in range(35):
        put(env, f"k{i:02}", i)
    put(env, "elsewhere", 35, bucket="other")
    assert env.once() == {"objects": 4, "events": 35, "not_leader": False}
    keys = env.object_keys()
    assert len(keys) == 4
    seen: list[int] = []
    for k in keys:
        m = KEY.match(k)
        assert m, k
        b = env.body(k)
        assert set(b) == {
            "version",
            "job",
            "first_seq",
            "last_seq",
            "first_time",
            "last_time",
            "count",
            "dedup",
            "gap",
            "records",
        }
        assert (
            b["version"] == 1
            and b["job"] == "changelog"
            and b["dedup"] == "none"
            and b["gap"] is None
        )
        assert (int(m.group(5)), int(m.group(6))) == (b["first_seq"], b["last_seq"])
        assert b["count"] == len(b["records"]) <= 10
        first_us = min(r["time_us"] for r in b["records"])
        assert b["first_time"] == f"2026-01-01T00:00:{(first_us - T0) // 1_000_000:02}.000Z"
        seen.extend(r["seq"] for r in b["records"])
    assert seen == list(range(1, 36))
    # Windows are contiguous and cover every seq, the other bucket's too.
    bodies = [env.body(k) for k in keys]
    assert bodies[0]["first_seq"] == 1 and bodies[-1]["last_seq"] == 36
    for a, b in zip(bodies, bodies[1:]):
        assert b["first_seq"] == a["last_seq"] + 1
    # Nothing new: nothing written.
    assert env.once() == {"objects": 0, "events": 0, "not_leader": False}
    assert env.object_keys() == keys
    # Only the other bucket moved: the window is empty, committed, not written.
    put(env, "elsewhere2", 36, bucket="other")
    assert env.once()["objects"] == 0
    st = env.status()
    assert st["committed"] == 38 and st["lag"] == 0 and st["objects"] == 4 and st["events"] == 35
    assert st["lease"]["holder"] == st["holder"]


def test_per_object_dedup_against_a_model(env: Env) -> None:
    env.write_config('dedup = "per_object"\nmax_events_per_object = 1000')
    rng = random.Random(5)
    model: dict[str, tuple[str, int]] = {}
    for i in range(200):
        key = f"k{rng.randint(0, 9)}"
        if rng.random() < 0.3:
            seq = env.ledger.append(fsfeed.Op.delete("vol1", "photos", key).at(T0 + i))
            model.pop(key, None)
            model[key] = ("delete", seq)
        else:
            seq = env.ledger.append(fsfeed.Op.commit("vol1", "photos", key, size=i).at(T0 + i))
            model.pop(key, None)
            model[key] = ("commit", seq)
    env.once()
    (k,) = env.object_keys()
    recs = env.body(k)["records"]
    assert [(r["key"], r["kind"], r["seq"]) for r in recs] == [
        (k2, kind, seq) for k2, (kind, seq) in model.items()
    ]


def test_fetch_a_time_range_and_net_changes(env: Env) -> None:
    env.write_config("max_events_per_object = 7")
    for i in range(30):
        put(env, f"k{i:02}", i)  # one second apart from T0
    env.ledger.append(fsfeed.Op.delete("vol1", "photos", "k03").at(T0 + 30_000_000))
    env.ledger.append(fsfeed.Op.commit("vol1", "photos", "k04", size=99).at(T0 + 31_000_000))
    env.once()

    def fetch(a: str, b: str, *extra: str) -> list[dict]:
        p = env.run("fetch", "--config", str(env.config), "--from", a, "--to", b, *extra)
        assert p.returncode == 0, p.stderr
        return [json.loads(line) for line in p.stdout.splitlines()]

    got = fetch("2026-01-01T00:00:05Z", "2026-01-01T00:00:20Z")  # straddles windows
    assert [r["key"] for r in got] == [f"k{i:02}" for i in range(5, 20)]
    assert fetch("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z") == []
    net = fetch("2026-01-01T00:00:29Z", "2026-01-01T00:01:00Z", "--net")
    assert net == [
        {"bucket": "photos", "change": "DELETE", "key": "k03"},
        {"bucket": "photos", "change": "MODIFY", "key": "k04"},
        {"bucket": "photos", "change": "NEW", "key": "k29"},
    ]
    p = env.run(
        "fetch", "--config", str(env.config), "--from", "yesterday", "--to", "2026-01-01T00:00:00Z"
    )
    assert p.returncode == 2 and "RFC 3339" in p.stderr


def test_a_crash_between_upload_and_commit_reuploads_the_same_key(env: Env) -> None:
    env.write_config('max_events_per_object = 5\n[lease]\nttl = "1s"')
    for i in range(12):
        put(env, f"k{i:02}", i)
    p = env.run_once(env={"FSFEED_CHANGELOG_DIE_AFTER_UPLOAD": "1"})
    assert p.returncode != 0
    first = env.object_keys()
    assert len(first) == 1
    # More events arrive before the restart: the planned window stays as it was.
    for i in range(12, 15):
        put(env, f"k{i:02}", i)
    time.sleep(1.2)  # the killed run's lease expires
    env.once()
    keys = env.object_keys()
    assert keys[0] == first[0]
    bodies = [env.body(k) for k in keys]
    seqs = [r["seq"] for b in bodies for r in b["records"]]
    assert seqs == list(range(1, 16))  # no gap, no duplicate
    assert all(b["gap"] is None for b in bodies)


def test_an_unreachable_store_fails_the_run_and_commits_nothing(env: Env) -> None:
    env.write_config('retry_for = "2s"\nmax_events_per_object = 5')
    for i in range(8):
        put(env, f"k{i:02}", i)
    env.once()
    before = env.object_keys()
    for i in range(8, 16):
        put(env, f"k{i:02}", i)
    env.moto.pause()
    try:
        t = time.monotonic()
        p = env.run_once(timeout=120)
        elapsed = time.monotonic() - t
    finally:
        env.moto.resume()
    assert p.returncode == 1 and "store_failed" in p.stderr, p.stderr
    assert elapsed < 60
    assert SK not in p.stderr and AK not in p.stderr
    assert env.object_keys() == before
    assert env.status()["committed"] == 9
    env.once()
    seqs = [r["seq"] for k in env.object_keys() for r in env.body(k)["records"]]
    assert seqs == list(range(1, 17))


def wait_for_records(env: Env, n: int, within: float) -> None:
    """Until the objects hold `n` records, for at most `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and sum(env.body(k)["count"] for k in env.object_keys()) < n:
        time.sleep(0.2)


def lease_object(env: Env) -> dict[str, Any]:
    body = env.s3.get_object(Bucket=env.bucket, Key="zone-a/_lease.json")["Body"].read()
    return dict(json.loads(body))


def test_the_lease(env: Env) -> None:
    env.write_config('interval = "200ms"\nmax_events_per_object = 3\n[lease]\nttl = "2s"')
    cmd = env.run_cmd()
    a = subprocess.Popen(cmd, env=env.environ(), stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    b = subprocess.Popen(cmd, env=env.environ(), stderr=subprocess.DEVNULL)
    try:
        for i in range(20):
            put(env, f"k{i:02}", i)
            time.sleep(0.05)
        wait_for_records(env, 20, within=20)
        lease = lease_object(env)
        assert lease["epoch"] == 1
        # The holder dies; the other takes over after the expiry and loses nothing.
        holder_pid = int(lease["holder"].split(":")[1])
        (dead, alive) = (a, b) if holder_pid == a.pid else (b, a)
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        for i in range(20, 30):
            put(env, f"k{i:02}", i)
        wait_for_records(env, 30, within=30)
        lease = lease_object(env)
        assert lease["epoch"] == 2 and int(lease["holder"].split(":")[1]) == alive.pid
        # A holder whose epoch was taken commits nothing.
        stolen = {
            "holder": "elsewhere:1:1",
            "epoch": 99,
            "expires_ms": int(time.time() * 1000) + 600_000,
        }
        env.s3.put_object(
            Bucket=env.bucket, Key="zone-a/_lease.json", Body=json.dumps(stolen).encode()
        )
        time.sleep(1.0)
        committed = env.status()["committed"]
        for i in range(30, 33):
            put(env, f"k{i:02}", i)
        time.sleep(2.0)
        assert env.status()["committed"] == committed
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
    seqs = [r["seq"] for k in env.object_keys() for r in env.body(k)["records"]]
    assert seqs == list(range(1, 31))  # exactly once each: one writer at a time
    assert alive.returncode == 0


@pytest.mark.parametrize(
    "text",
    [
        "colour = 1\n",
        "part_size = 1000\n",
        "[lease]\nttl = 'forever'\n",
        "dedup = 'maybe'\n",
    ],
)
def test_bad_configs_exit_2_without_secrets(env: Env, text: str) -> None:
    env.config.write_text(
        text
        + f"[dest]\nendpoint = '{env.moto.url}'\nbucket = 'b'\naccess_key = '{AK}'\nsecret_key = '{SK}'\n"
    )
    p = env.run_once()
    assert p.returncode == 2 and "invalid_config" in p.stderr
    assert SK not in p.stderr


def test_multipart_and_a_killed_multipart_upload(env: Env) -> None:
    env.write_config(f"part_size = {5 << 20}\nmultipart_threshold = {5 << 20}\n[lease]\nttl = '1s'")
    rng = random.Random(9)
    ops = [
        fsfeed.Op.commit("vol1", "photos", rng.randbytes(120).hex(), size=i).at(T0 + i)
        for i in range(40_000)
    ]
    for i in range(0, len(ops), 5000):
        env.ledger.append_batch(ops[i : i + 5000])
    p = env.run_once(env={"FSFEED_CHANGELOG_DIE_AFTER_PART": "1"})
    assert p.returncode != 0
    assert env.object_keys() == []
    assert len(env.s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", [])) == 1
    time.sleep(1.2)  # the killed run's lease expires
    assert env.once()["objects"] == 1
    assert env.s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", []) == []
    (key,) = env.object_keys()
    head = env.s3.head_object(Bucket=env.bucket, Key=key)
    assert head["ContentLength"] > 5 << 20 and "-" in head["ETag"]  # a multipart object
    b = env.body(key)
    assert b["count"] == 40_000 and b["first_seq"] == 1 and b["last_seq"] == 40_000


def test_a_gap_is_carried_by_the_next_object_and_counted(env: Env) -> None:
    for i in range(5):
        put(env, f"k{i:02}", i)
    env.once()  # committed at 6
    env.ledger.close()
    env.ledger = fsfeed.Ledger.open(
        env.dir / "ledger", durability="sync", retention={"maxEvents": 10}
    )
    for i in range(5, 55):
        put(env, f"k{i:02}", i)
    first = env.ledger.first_seq
    assert first > 6
    env.once()
    key = env.object_keys()[-1]
    b = env.body(key)
    assert b["gap"] == {"expected": 6, "actual": first}
    assert b["first_seq"] == first and [r["seq"] for r in b["records"]] == list(range(first, 56))
    assert env.status()["gaps"] == 1


def test_sigterm_finishes_the_object_in_flight(env: Env) -> None:
    env.write_config('interval = "100ms"\nmax_events_per_object = 50')
    ops = [fsfeed.Op.commit("vol1", "photos", f"k{i:05}", size=i).at(T0 + i) for i in range(20_000)]
    env.ledger.append_batch(ops)
    p = subprocess.Popen(env.run_cmd(), env=env.environ(), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(env.object_keys()) < 3:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    keys = env.object_keys()
    assert 3 <= len(keys) < 400  # stopped before the end
    last = env.body(keys[-1])["last_seq"]
    assert env.status()["committed"] == last + 1  # every object written is committed, nothing more
    lease = lease_object(env)
    assert lease["expires_ms"] <= time.time() * 1000  # given up
