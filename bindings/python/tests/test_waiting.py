"""Blocking reads, asyncio, callbacks and a second process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import fsfeed
import pytest
from conftest import commit


def test_other_threads_run_while_a_read_blocks(ledger):
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        b = ledger.cursor(start="latest").read(timeout=0.3)
    finally:
        stop.set()
        t.join()
    assert b.empty
    # The GIL was released: the ticker kept going during the wait.
    assert len(ticks) >= 10


def test_a_blocking_read_wakes_on_append(ledger):
    c = ledger.cursor(start="latest")
    threading.Timer(0.05, lambda: ledger.append(commit("late"))).start()
    b = c.read(timeout=10)
    assert [r["key"] for r in b.records] == ["late"]


def test_iteration_yields_batches(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(3)])
    it = iter(ledger.cursor(start="earliest"))
    assert len(next(it)) == 3


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_interrupts_a_blocking_read_promptly(ledger):
    c = ledger.cursor(start="latest")
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(0.2, interrupt).start()
    with pytest.raises(KeyboardInterrupt):
        c.read()  # no timeout: only the signal ends it
    assert time.monotonic() - sent[0] < 0.1


def test_asyncio_reads_wake_on_append(ledger):
    async def main():
        got = []
        c = ledger.cursor(start="latest")

        async def consume():
            async for batch in c.aiter():
                got.extend(r["key"] for r in batch.records)
                if len(got) >= 3:
                    return

        task = asyncio.ensure_future(consume())
        ticks = 0
        for i in range(3):
            await asyncio.sleep(0.02)  # the loop keeps running while the reader waits
            ticks += 1
            await asyncio.get_running_loop().run_in_executor(
                None, ledger.append, commit(f"a{i}", i)
            )
        await asyncio.wait_for(task, 10)
        return got, ticks

    got, ticks = asyncio.run(main())
    assert got == ["a0", "a1", "a2"] and ticks == 3


def test_many_async_readers_share_one_notifier_thread(ledger):
    async def main():
        cursors = [ledger.cursor(start="latest") for _ in range(50)]

        async def first(c):
            async for b in c.aiter():
                return b.records[0]["key"]

        tasks = [asyncio.ensure_future(first(c)) for c in cursors]
        await asyncio.sleep(0.05)
        threads_waiting = threading.active_count()
        ledger.append(commit("x"))
        keys = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return keys, threads_waiting

    before = threading.active_count()
    keys, waiting = asyncio.run(main())
    assert keys == ["x"] * 50
    # Python threads only: the notifier is a native thread; no reader added one.
    assert waiting == before


def test_async_read_raises_when_the_ledger_closes(ledger):
    async def main():
        c = ledger.cursor(start="latest")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, ledger.close)
        async for _ in c.aiter():
            pass

    with pytest.raises(fsfeed.LedgerClosed):
        asyncio.run(main())


def test_a_callback_subscription_commits_in_order(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(5)])
    seen = []
    done = threading.Event()

    def on_batch(batch):
        seen.extend(r["seq"] for r in batch.records)
        if len(seen) >= 8:
            done.set()

    with ledger.cursor("sub").subscribe(on_batch, max=2) as sub:
        assert sub.running
        ledger.append_batch([commit(f"j{i}", i) for i in range(3)])
        assert done.wait(10)
    assert seen == list(range(1, 9))
    # Returning committed: a new reader of the name starts after 8.
    assert ledger.cursor("sub").read(timeout=0).empty


def test_an_exception_in_the_callback_stops_and_is_reraised(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(3)])

    class Boom(Exception):
        pass

    def on_batch(batch):
        raise Boom(f"bad batch at {batch.records[0]['seq']}")

    sub = ledger.cursor("failing").subscribe(on_batch)
    with pytest.raises(Boom, match="bad batch at 1"):
        sub.join()
    assert not sub.running
    # Nothing was committed: the batch is read again.
    assert ledger.cursor("failing").read(timeout=0).records[0]["seq"] == 1


def test_a_subscribed_cursor_cannot_be_read(ledger):
    c = ledger.cursor("owned")
    sub = c.subscribe(lambda b: None)
    with pytest.raises(fsfeed.InvalidArgument):
        c.read(timeout=0)
    sub.stop()


def test_a_reader_in_a_second_process_sees_new_events(ledger, tmp_path):
    path = tmp_path / "ledger"
    ledger.append(commit("before"))
    script = textwrap.dedent(
        f"""
        import fsfeed, sys
        led = fsfeed.Ledger.open({str(path)!r}, read_only=True)
        c = led.cursor("reader", start="earliest")
        keys = []
        while len(keys) < 2:
            keys += [r["key"] for r in c.read(timeout=10).records]
        c.commit()
        print(",".join(keys), led.read_only)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    ledger.append(commit("after", 1))
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0
    assert out.split() == ["before,after", "True"]
