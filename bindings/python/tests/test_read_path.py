"""The core's read path from Python: event ids and acks, rendered cursors,
and readers of every kind woken by a writer in another process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import fsfeed
import pytest
from conftest import T0, commit


def test_event_ids_round_trip_and_name_the_record(ledger):
    for seq, sub in [(1, 0), (42, 7), (2**63 - 1, 2**32 - 1)]:
        p = fsfeed.Position(seq, sub)
        assert fsfeed.Position.from_event_id(p.event_id) == p
    ledger.append(commit("a/x"))
    rec = ledger.cursor(None, format="s3", start="earliest").read(timeout=0).records[0]
    eid = rec["fsfeedEventData"]["eventId"]
    assert fsfeed.Position.from_event_id(eid) == fsfeed.Position(1, 0)
    assert fsfeed.Position(1, 0).event_id == eid


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "0000000000000001-0000000",
        "0000000000000000-00000000",
        "000000000000000g-00000000",
        "0000000000000001_00000000",
        "0000000000000001-00000000 ",
        "a" * 10_000,
    ],
)
def test_a_foreign_or_corrupt_event_id_is_a_typed_error(ledger, bad):
    ledger.append(commit("k"))
    c = ledger.cursor("acker", start="earliest")
    with pytest.raises(fsfeed.InvalidEventId) as e:
        fsfeed.Position.from_event_id(bad)
    assert e.value.code == "invalid_event_id"
    assert len(str(e.value)) < 200
    with pytest.raises(fsfeed.InvalidEventId):
        c.ack(bad)
    assert ledger.stats()["cursors"] == []  # nothing was committed


def test_ack_commits_the_position_after_the_record(ledger):
    for i in range(3):
        ledger.append(commit(f"k{i}", i))
    c = ledger.cursor("svc", format="s3", start="earliest")
    recs = c.read(timeout=0).records
    assert c.ack(recs[1]["fsfeedEventData"]["eventId"]) == fsfeed.Position(3, 0)
    again = ledger.cursor("svc", format="s3")
    assert [r["s3"]["object"]["key"] for r in again.read(timeout=0).records] == ["k2"]
    past = fsfeed.Position(9, 0).event_id
    with pytest.raises(fsfeed.PositionOutOfRange):
        c.ack(past)


def test_an_s3_cursor_skips_events_without_an_s3_form(ledger):
    ops = []
    for i in range(5000):
        key = f"k{i}"
        op = (
            commit(key, i)
            if i % 1000 == 999
            else fsfeed.Op.create_file("vol1", "b1", key).at(T0 + i)
        )
        ops.append(op)
    ledger.append_batch(ops)
    c = ledger.cursor(None, format="s3", start="earliest")
    seen = []
    while True:
        b = c.read(max=2, timeout=0)
        if b.empty:
            break
        assert len(b.records) > 0
        seen += [r["s3"]["object"]["key"] for r in b.records]
    assert seen == [f"k{i}" for i in range(999, 5000, 1000)]
    assert c.position == fsfeed.Position(5001, 0)


def test_extensions_are_asked_for_in_the_s3_settings(ledger):
    ledger.append(commit("r"))
    ledger.append(fsfeed.Op.rename("vol1", "b1", "r", "s").at(T0 + 1))
    plain = ledger.cursor(None, format="s3", start="earliest").read(timeout=0)
    assert [r["eventName"] for r in plain.records] == ["ObjectCreated:Put"]
    ext = ledger.cursor(None, format="s3", s3_settings={"extensions": True}, start="earliest").read(
        timeout=0
    )
    assert [r["eventName"] for r in ext.records] == ["ObjectCreated:Put", "ObjectRenamed:Rename"]
    assert ext.records[1]["s3"]["object"]["key"] == "s"
    # The rename carries the object's last known size and eTag (the live index).
    assert ext.records[1]["s3"]["object"]["size"] == 1
    assert ext.records[1]["s3"]["object"]["eTag"] == ext.records[0]["s3"]["object"]["eTag"]


WRITER = textwrap.dedent(
    """
    import sys, fsfeed
    led = fsfeed.Ledger.open(sys.argv[1], durability="buffered")
    print("ready", flush=True)
    for i, line in enumerate(sys.stdin):
        led.append(fsfeed.Op.commit("vol1", "b1", line.strip(), size=1, etag="e").at(1 + i))
        print("ok", flush=True)
    led.close()
    """
)


def test_every_reader_kind_wakes_on_an_append_in_another_process(tmp_path: Path):
    path = tmp_path / "ledger"
    w = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert w.stdout is not None and w.stdin is not None
        assert w.stdout.readline().strip() == "ready"
        with fsfeed.Ledger.open(path, read_only=True) as led:
            got: dict[str, list[str]] = {"blocking": [], "async": [], "callback": []}
            done = threading.Event()

            def blocking() -> None:
                c = led.cursor(None, start="earliest")
                while len(got["blocking"]) < 3:
                    got["blocking"] += [r["key"] for r in c.read(timeout=20).records]

            async def aio() -> None:
                async for b in led.cursor(None, start="earliest").aiter():
                    got["async"] += [r["key"] for r in b.records]
                    if len(got["async"]) >= 3:
                        return

            def callback(b: fsfeed.Batch) -> None:
                got["callback"] += [r["key"] for r in b.records]
                if len(got["callback"]) >= 3:
                    done.set()

            sub = led.cursor(None, start="earliest").subscribe(callback)
            t = threading.Thread(target=blocking)
            t.start()
            a = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(aio(), 20)))
            a.start()
            for key in ["x1", "x2", "x3"]:
                w.stdin.write(key + "\n")
                w.stdin.flush()
                assert w.stdout.readline().strip() == "ok"
            t.join(20)
            a.join(20)
            assert done.wait(20)
            sub.stop()
            assert got == {k: ["x1", "x2", "x3"] for k in got}
    finally:
        for f in (w.stdin, w.stdout):
            if f:
                f.close()
        w.wait(timeout=30)
