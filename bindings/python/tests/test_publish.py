"""fsfeed.Publisher: push delivery from Python against a real HTTP receiver
on loopback, with a Python callable as the leader gate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fsfeed
import pytest
from conftest import commit


class Receiver:
    """An HTTP server that keeps every accepted body's event ids."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.status = 200
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if rx.status == 200:
                    for r in json.loads(body)["Records"]:
                        rx.ids.append(r["fsfeedEventData"]["eventId"])
                self.send_response(rx.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.close()


def config(url: str, name: str = "hook") -> str:
    return f'[[publisher]]\nname = "{name}"\nendpoint = "{url}"\nbatch_max = 10\n'


def expected_ids(led: fsfeed.Ledger) -> list[str]:
    cur = led.cursor(None, start="earliest", format="s3")
    return [r["fsfeedEventData"]["eventId"] for r in cur.read(max=1000, timeout=0).records]


def wait_until(what: str, f: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not f():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_run_once_delivers_every_record_and_commits(ledger, receiver):
    ledger.append_batch([commit(f"k{i}", i) for i in range(35)])
    pub = fsfeed.Publisher(ledger, config(receiver.url))
    pub.run_once()
    assert receiver.ids == expected_ids(ledger)
    assert ledger.cursor("hook").lag() == 0
    (st,) = pub.status()
    assert st["name"] == "hook" and st["state"] == "done"
    assert st["counters"]["push_ok"] == 35


def test_a_leader_callable_holds_sending_until_it_says_yes(ledger, receiver):
    ledger.append_batch([commit(f"k{i}", i) for i in range(20)])
    leads = threading.Event()
    with fsfeed.Publisher(ledger, config(receiver.url), leader=leads.is_set) as pub:
        pub.start()
        assert pub.running
        wait_until("standby", lambda: [s["state"] for s in pub.status()] == ["standby"])
        time.sleep(0.3)
        assert receiver.ids == []
        leads.set()
        wait_until("delivered", lambda: len(receiver.ids) == 20)
        wait_until("committed", lambda: ledger.cursor("hook").lag() == 0)
    assert not pub.running
    assert receiver.ids == expected_ids(ledger)


def test_a_leader_callable_that_raises_does_not_lead(ledger, receiver):
    ledger.append(commit("k"))

    def broken() -> bool:
        raise RuntimeError("host bug")

    pub = fsfeed.Publisher(ledger, config(receiver.url), leader=broken)
    pub.start()
    wait_until("standby", lambda: [s["state"] for s in pub.status()] == ["standby"])
    pub.stop()
    assert receiver.ids == []


def test_a_rejection_parks_and_run_once_raises(ledger, receiver):
    ledger.append(commit("k"))
    receiver.status = 403
    pub = fsfeed.Publisher(ledger, config(receiver.url))
    with pytest.raises(fsfeed.PublisherFailed) as e:
        pub.run_once()
    assert e.value.code == "publisher_failed"
    assert "HTTP 403" in str(e.value)
    assert pub.status()[0]["state"] == "parked"
    receiver.status = 200
    pub.run_once()
    assert receiver.ids == expected_ids(ledger)


def test_bad_input_is_refused(ledger, tmp_path, receiver):
    for text, code in [
        ("", "invalid_config"),
        ('[[publisher]]\nname = "a"\nendpoint = "gopher://h/"\n', "invalid_config"),
        ('[[publisher]]\nname = "a"\nendpoint = "http://h/"\nbatch_max = 0\n', "invalid_config"),
    ]:
        with pytest.raises(fsfeed.InvalidConfig) as e:
            fsfeed.Publisher(ledger, text)
        assert e.value.code == code
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.Publisher(ledger, config(receiver.url), leader=42)  # type: ignore[arg-type]
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.Publisher(3.5, config(receiver.url))  # type: ignore[arg-type]
    with pytest.raises(fsfeed.LedgerNotFound):
        fsfeed.Publisher(tmp_path / "nothing", config(receiver.url))
    pub = fsfeed.Publisher(ledger, config(receiver.url))
    pub.start()
    with pytest.raises(fsfeed.InvalidArgument):
        pub.start()
    pub.stop()
    pub.stop()  # stopping a stopped publisher does nothing
