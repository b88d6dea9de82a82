"""Restarts: a SIGKILL mid-load loses no ack and returns every unacked
event; SIGTERM exits 0; the state survives, is in `fsfeed checkpoint`, and
each subscription's ledger cursor holds retention for its unacked events."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fsfeed
import pytest
from conftest import FSFEED, Env, Server, make_env, wait_until
from test_pull import ack, pull, pull_all


def test_sigkill_mid_load(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    appended: list[str] = []
    done = threading.Event()

    def appender() -> None:
        for i in range(400):
            appended.append(fsfeed.Position(env.put(f"k{i:04}")).event_id)
            time.sleep(0.002)
        done.set()

    t = threading.Thread(target=appender)
    t.start()
    acked: set[str] = set()
    rng = random.Random(3)
    killed = False
    rounds = 0
    while not done.is_set() or rounds < 3:
        rounds += 1
        page = pull(a, "s1", 40)
        ids = [e["id"] for e in page["events"]]
        # Never an acked event again.
        assert not (set(ids) & acked), sorted(set(ids) & acked)
        chosen = [i for i in ids if rng.random() < 0.6]
        if chosen and ack(a, "s1", *chosen) == 200:
            acked.update(chosen)
        if not killed and len(acked) > 60:
            env.server.stop(signal.SIGKILL)
            env.server.start()
            a = env.client("alice")
            killed = True
    t.join()
    assert killed
    rest = [e["id"] for e in pull_all(a, "s1", page=100)]
    assert rest == [i for i in appended if i not in acked]
    assert ack(a, "s1", *rest) == 200
    assert pull_all(a, "s1") == []


def test_sigterm_exits_0_and_the_state_survives(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1", [("push-endpoint", "http://127.0.0.1:9/x")])
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "n1",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    a.call("PUT", "/topics/t2")
    a.call("PUT", "/subscriptions/s2", [("topic", "t2")])
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t2"), ("events", "OBJECT_CREATE")])
    first = env.put("a")
    second = env.put("b")
    assert (
        ack(a, "s2", fsfeed.Position(second).event_id) == 200
    )  # out of order: kept above the watermark
    before = {
        p: a.call("GET", p).body
        for p in [
            "/topics",
            "/topics/t1",
            "/subscriptions/n1",
            "/subscriptions/s2",
            "/notifications/bucket/photos",
        ]
    }
    assert env.server.stop(signal.SIGTERM) == 0
    env.server.start()
    a = env.client("alice")
    s3 = env.boto("s3", "alice")  # the restarted server listens on a new port
    for p, body in before.items():
        assert a.call("GET", p).body == body, p
    assert [
        c["Id"]
        for c in s3.get_bucket_notification_configuration(Bucket="photos")["TopicConfigurations"]
    ] == ["n1"]
    assert [e["id"] for e in pull_all(a, "s2")] == [fsfeed.Position(first).event_id]


def test_checkpoint_copies_the_service_state(tmp_path: Path) -> None:
    gen = make_env(tmp_path)
    env = next(gen)
    try:
        a = env.client("alice")
        a.call("PUT", "/topics/t1")
        a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
        a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
        env.put("x")
        env.ledger.close()
        out = subprocess.run(
            [FSFEED, "checkpoint", "--ledger", str(env.dir), "--to", str(tmp_path / "snap")],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert '"pubsub":true' in out.stdout.replace(" ", "")
        copy = Server(tmp_path / "snap", env.server.config)
        copy.start()
        try:
            from conftest import Client

            c = Client(copy.url, "AKALICE", "alice-secret")
            assert c.call("GET", "/topics/t1").json()["subs"] == ["s1"]
            assert [
                e["info"]["key"]["name"]
                for e in c.call("GET", "/subscriptions/s1", [("events", None)]).json()["events"]
            ] == ["x"]
        finally:
            copy.stop()
        env.ledger = fsfeed.Ledger.open(env.dir)
    finally:
        for _ in gen:
            pass


@pytest.fixture
def small_env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, retention={"maxEvents": 10, "keepForCursors": True})


def test_a_subscription_cursor_holds_retention_for_unacked_events(small_env: Env) -> None:
    env = small_env
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    seqs = [env.put(f"k{i}") for i in range(50)]
    assert env.ledger.first_seq <= seqs[0]
    got = [e["id"] for e in pull_all(a, "s1", page=100)]
    assert got == [fsfeed.Position(s).event_id for s in seqs]
    assert ack(a, "s1", *got) == 200

    # Once the cursor is committed (within a second), retention moves on.
    def dropped() -> bool:
        env.put("more")
        return env.ledger.first_seq > seqs[-1]

    wait_until(dropped, timeout=10, what="retention to pass the acked events")
    assert a.call("GET", "/subscriptions/s1", [("events", None)]).status == 200
