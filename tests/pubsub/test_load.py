"""Load, bounded in time and count: 16 clients pull and ack 16
subscriptions at once while appends continue. Nothing is lost, and after
the acks nothing is delivered twice."""

from __future__ import annotations

import threading
import time

import fsfeed
from conftest import Env
from test_pull import ack, pull

EVENTS = 2000
CLIENTS = 16


def test_sixteen_clients_while_appending(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    for i in range(CLIENTS):
        assert a.call("PUT", f"/subscriptions/s{i}", [("topic", "t1")]).status == 200
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    appended: list[str] = []
    done = threading.Event()

    def appender() -> None:
        for b in range(EVENTS // 20):
            seqs = env.ledger.append_batch(
                [fsfeed.Op.commit("vol1", "photos", f"k{b}-{j}", size=1) for j in range(20)]
            )
            appended.extend(fsfeed.Position(s).event_id for s in seqs)
            time.sleep(0.005)
        done.set()

    seen: dict[int, list[str]] = {i: [] for i in range(CLIENTS)}
    errors: list[str] = []
    deadline = time.monotonic() + 120

    def client(i: int) -> None:
        c = env.client("alice", sig="v2" if i % 2 else "v4")
        while time.monotonic() < deadline:
            page = pull(c, f"s{i}", 100)
            ids = [e["id"] for e in page["events"]]
            if not ids:
                if done.is_set() and len(seen[i]) >= EVENTS:
                    return
                time.sleep(0.01)
                continue
            if set(ids) & set(seen[i][-200:]):
                errors.append(f"s{i}: delivered twice after its ack")
                return
            seen[i].extend(ids)
            if ack(c, f"s{i}", *ids) != 200:
                errors.append(f"s{i}: ack failed")
                return
        errors.append(f"s{i}: timed out with {len(seen[i])} events")

    threads = [threading.Thread(target=appender)] + [
        threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)
    ]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert not errors, errors
    for i in range(CLIENTS):
        assert seen[i] == appended, f"s{i}"
    print(f"{CLIENTS} clients x {EVENTS} events pulled and acked in {elapsed:.1f}s")
