"""Pull and ack: markers and pagination, acks in and out of order checked
against a model, what a subscription receives (event types, key rules,
creation time, expanded renames, deleted buckets), expiry."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import fsfeed
import pytest
from conftest import CONFIG, Client, Env, make_env


def pull(c: Client, sub: str, max_entries: int | None = None, marker: str | None = None) -> dict:
    q: list[tuple[str, str | None]] = [("events", None)]
    if max_entries is not None:
        q.append(("max-entries", str(max_entries)))
    if marker is not None:
        q.append(("marker", marker))
    r = c.call("GET", f"/subscriptions/{sub}", q)
    assert r.status == 200, r.body
    return r.json()


def ids_of(page: dict) -> list[str]:
    if "Records" in page:
        return [r["eventId"] for r in page["Records"]]
    return [e["id"] for e in page["events"]]


def pull_all(c: Client, sub: str, page: int = 7) -> list[dict]:
    """Every event the subscription would return now, page by page."""
    out: list[dict] = []
    marker = None
    while True:
        p = pull(c, sub, page, marker)
        items = p.get("Records", p.get("events"))
        assert items is not None
        out.extend(items)
        if not p["is_truncated"]:
            return out
        assert p["next_marker"] == ids_of(p)[-1]
        marker = p["next_marker"]


def ack(c: Client, sub: str, *ids: str) -> int:
    return c.call(
        "POST", f"/subscriptions/{sub}", [("ack", None), *[("event-id", i) for i in ids]]
    ).status


def plain_setup(env: Env, events: str | None = None) -> Client:
    a = env.client("alice")
    assert a.call("PUT", "/topics/t1").status == 200
    assert a.call("PUT", "/subscriptions/s1", [("topic", "t1")]).status == 200
    q = [("topic", "t1")] + ([("events", events)] if events else [])
    assert a.call("PUT", "/notifications/bucket/photos", q).status == 200
    return a


def test_markers_and_truncation(env: Env) -> None:
    a = plain_setup(env)
    seqs = [env.put(f"k{i:02}") for i in range(25)]
    want = [fsfeed.Position(s).event_id for s in seqs]
    p1 = pull(a, "s1", 10)
    assert p1["is_truncated"] is True and ids_of(p1) == want[:10]
    assert p1["next_marker"] == want[9]
    p2 = pull(a, "s1", 10, p1["next_marker"])
    assert ids_of(p2) == want[10:20] and p2["is_truncated"] is True
    p3 = pull(a, "s1", 10, p2["next_marker"])
    assert ids_of(p3) == want[20:] and p3["is_truncated"] is False
    p4 = pull(a, "s1", 10, p3["next_marker"])
    assert p4 == {"next_marker": "", "is_truncated": False, "events": []}
    # Without a marker a pull starts at the oldest unacked event again.
    assert ids_of(pull(a, "s1", 3)) == want[:3]
    # The default page is 100 events.
    assert ids_of(pull(a, "s1")) == want
    e = pull(a, "s1", 1)["events"][0]
    assert set(e) == {"id", "event", "timestamp", "info"}
    assert e["event"] == "OBJECT_CREATE"
    assert set(e["info"]) == {"attrs", "bucket", "key"}
    assert set(e["info"]["attrs"]) == {"mtime"}
    assert e["info"]["bucket"]["name"] == "photos"
    assert e["info"]["bucket"]["bucket_id"] == "1"  # the seq of the bucket's create op
    assert e["info"]["key"] == {"name": "k00"}
    for bad in ["0", "10001", "ten", "-1"]:
        assert (
            a.call("GET", "/subscriptions/s1", [("events", None), ("max-entries", bad)]).status
            == 400
        ), bad
    for bad in ["nonsense", "FFFFFFFFFFFFFFFF-00000000", "0000000000000001"]:
        r = a.call("GET", "/subscriptions/s1", [("events", None), ("marker", bad)])
        assert r.status == 400, bad


def test_acks_in_and_out_of_order_against_a_model(env: Env) -> None:
    a = plain_setup(env)
    seqs = [env.put(f"k{i:03}") for i in range(60)]
    unacked = [fsfeed.Position(s).event_id for s in seqs]
    rng = random.Random(7)
    order = unacked[:]
    rng.shuffle(order)
    # A few in order first, then the rest shuffled, in single and multi-id requests.
    order = sorted(order[:5]) + order[5:]
    i = 0
    while i < len(order):
        n = rng.choice([1, 1, 2, 5])
        batch = order[i : i + n]
        assert ack(a, "s1", *batch) == 200
        for x in batch:
            unacked.remove(x)
        i += n
        if rng.random() < 0.3 or i >= len(order):
            assert [e["id"] for e in pull_all(a, "s1")] == unacked
        # A repeated ack is 200 again and changes nothing.
        assert ack(a, "s1", batch[0]) == 200
    assert pull_all(a, "s1") == []
    # The ledger cursor follows the watermark (within a second).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        cur = {c["name"]: c for c in env.ledger.stats()["cursors"]}.get("pubsub.s1")
        if cur and cur["position"]["seq"] == seqs[-1] + 1:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"cursor pubsub.s1 did not reach {seqs[-1] + 1}: {env.ledger.stats()}")
    later = env.put("later")
    assert [e["id"] for e in pull_all(a, "s1")] == [fsfeed.Position(later).event_id]


def test_bad_acks_change_nothing(env: Env) -> None:
    a = plain_setup(env)
    s = env.put("x")
    good = fsfeed.Position(s).event_id
    for bad in [
        ["garbage"],
        [good, "garbage"],
        ["00000000000000FF-00000000"],
        ["0000000000000001-00000000"],
    ]:
        assert ack(a, "s1", *bad) == 400, bad
        assert [e["id"] for e in pull_all(a, "s1")] == [good]
    assert a.call("POST", "/subscriptions/s1", [("ack", None)]).status == 400
    assert ack(a, "nosuch", good) == 404


def test_event_types_and_key_rules(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "jpg-created",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "img/"},
                                {"Name": "suffix", "Value": ".jpg"},
                            ]
                        }
                    },
                },
                {
                    "Id": "removed",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectRemoved:*"],
                },
            ]
        },
    )
    a.call("PUT", "/subscriptions/deletes", [("topic", "t1")])
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1"), ("events", "OBJECT_DELETE")])
    env.put("img/a.jpg")
    env.put("img/b.png")
    env.put("doc/c.jpg")
    env.delete("img/a.jpg")
    env.put("img/d.jpg", bucket="docs")  # another bucket
    recs = pull_all(a, "jpg-created")
    assert [(r["eventName"], r["s3"]["object"]["key"]) for r in recs] == [
        ("ObjectCreated:Put", "img/a.jpg")
    ]
    r = recs[0]
    assert r["awsRegion"] == "default"  # the zonegroup, as Ceph writes it
    assert r["s3"]["configurationId"] == "jpg-created"
    assert r["s3"]["bucket"]["name"] == "photos"
    assert r["s3"]["bucket"]["ownerIdentity"]["principalId"] == "alice"
    assert r["eventId"] == r["fsfeedEventData"]["eventId"]
    assert [(x["eventName"], x["s3"]["object"]["key"]) for x in pull_all(a, "removed")] == [
        ("ObjectRemoved:Delete", "img/a.jpg")
    ]
    plain = pull_all(a, "deletes")
    assert [(e["event"], e["info"]["key"]["name"]) for e in plain] == [
        ("OBJECT_DELETE", "img/a.jpg")
    ]


def test_only_events_after_creation_and_while_a_notification_lived(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    env.put("before-sub")
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    env.put("before-notification")
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    during = env.put("during")
    a.call("DELETE", "/notifications/bucket/photos", [("topic", "t1")])
    env.put("after")
    assert [e["id"] for e in pull_all(a, "s1")] == [fsfeed.Position(during).event_id]


def test_renames_and_recursive_deletes_arrive_per_object(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    env.ledger.append(fsfeed.Op.bucket_create("vol1", "tree").by("alice"))
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="tree",
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "n",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    fso = [
        fsfeed.Op.create_directory("vol1", "tree", "d"),
        fsfeed.Op.commit("vol1", "tree", "d/f1", size=1),
        fsfeed.Op.commit("vol1", "tree", "d/f2", size=2),
        fsfeed.Op.rename("vol1", "tree", "d", "e"),
        fsfeed.Op.delete("vol1", "tree", "e", recursive=True),
    ]
    env.ledger.append_batch([o.with_layout("fso") for o in fso])
    got = [(r["eventName"], r["s3"]["object"]["key"]) for r in pull_all(a, "n")]
    assert got[:3] == [
        ("ObjectCreated:Put", "d/"),
        ("ObjectCreated:Put", "d/f1"),
        ("ObjectCreated:Put", "d/f2"),
    ]
    # The explicit directory's marker moves with it, and goes with it.
    assert sorted(got[3:9]) == sorted(
        [
            ("ObjectRemoved:Delete", "d/"),
            ("ObjectCreated:Put", "e/"),
            ("ObjectRemoved:Delete", "d/f1"),
            ("ObjectRemoved:Delete", "d/f2"),
            ("ObjectCreated:Put", "e/f1"),
            ("ObjectCreated:Put", "e/f2"),
        ]
    )
    assert sorted(got[9:]) == sorted(
        [
            ("ObjectRemoved:Delete", "e/"),
            ("ObjectRemoved:Delete", "e/f1"),
            ("ObjectRemoved:Delete", "e/f2"),
        ]
    )
    ids = [r["eventId"] for r in pull_all(a, "n")]
    assert len(set(ids)) == len(ids)
    # Per-object ids ack one by one.
    assert ack(a, "n", ids[4]) == 200
    assert [r["eventId"] for r in pull_all(a, "n")] == ids[:4] + ids[5:]


def test_a_deleted_bucket_ends_its_notifications_but_not_its_subscriptions(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="docs",
        NotificationConfiguration={
            "TopicConfigurations": [
                {"Id": "n", "TopicArn": "arn:aws:sns:default::t1", "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    a.call("PUT", "/subscriptions/plain", [("topic", "t1")])
    a.call("PUT", "/notifications/bucket/docs", [("topic", "t1")])
    kept = env.put("a", bucket="docs")
    env.ledger.append(fsfeed.Op.bucket_delete("vol1", "docs"))
    env.ledger.append(fsfeed.Op.bucket_create("vol1", "docs").by("alice"))
    env.put("b", bucket="docs")
    want = [fsfeed.Position(kept).event_id]
    assert [r["eventId"] for r in pull_all(a, "n")] == want
    assert [e["id"] for e in pull_all(a, "plain")] == want
    assert a.call("GET", "/subscriptions/n").status == 200
    assert "TopicConfigurations" not in s3.get_bucket_notification_configuration(Bucket="docs")
    assert a.call("GET", "/notifications/bucket/docs").json() == {"topics": []}


@pytest.fixture
def short_env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(
        tmp_path, CONFIG.replace("events_retention_days = 7", "events_retention_days = 1")
    )


def test_unacked_events_expire_after_the_retention_days(short_env: Env) -> None:
    env = short_env
    a = plain_setup(env)
    now_us = int(time.time() * 1e6)
    old = env.put("old", at=now_us - 2 * 86_400_000_000)
    fresh = env.put("fresh")
    assert [e["id"] for e in pull_all(a, "s1")] == [fsfeed.Position(fresh).event_id]
    metrics = env.client("alice").call("GET", "/metrics").body.decode()
    assert "pubsub_event_expired 1\n" in metrics
    # An expired event cannot be acked back to life, and is not returned after a restart.
    assert ack(a, "s1", fsfeed.Position(old).event_id) == 200
    env.server.stop()
    env.server.start()
    a = env.client("alice")
    assert [e["id"] for e in pull_all(a, "s1")] == [fsfeed.Position(fresh).event_id]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_pulls_and_acks_against_a_model(env: Env, seed: int) -> None:
    """Random pulls (with and without markers) and acks (prefixes of a page,
    single ids out of order, repeats, ids not yet pulled) while events keep
    arriving: every pull returns exactly the model's unacked events in order."""
    a = plain_setup(env)
    rng = random.Random(seed)
    unacked: list[str] = []
    for _step in range(60):
        if rng.random() < 0.4:
            seqs = env.ledger.append_batch(
                [
                    fsfeed.Op.commit("vol1", "photos", f"k{_step}-{j}", size=1)
                    for j in range(rng.randint(1, 6))
                ]
            )
            unacked.extend(fsfeed.Position(s).event_id for s in seqs)
        n = rng.randint(1, 8)
        marker = None
        if unacked and rng.random() < 0.3:
            marker = rng.choice(unacked)
        page = pull(a, "s1", n, marker)
        expect = unacked if marker is None else unacked[unacked.index(marker) + 1 :]
        assert ids_of(page) == expect[:n]
        assert page["is_truncated"] == (len(expect) > n)
        got = ids_of(page)
        choice = rng.random()
        if got and choice < 0.5:
            k = rng.randint(1, len(got))
            chosen = got[:k]
        elif unacked and choice < 0.8:
            chosen = rng.sample(unacked, min(len(unacked), rng.randint(1, 3)))
        else:
            chosen = []
        if chosen:
            assert ack(a, "s1", *chosen) == 200
            for x in chosen:
                unacked.remove(x)
    assert [e["id"] for e in pull_all(a, "s1")] == unacked
