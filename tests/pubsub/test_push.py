"""Push: a subscription with a push endpoint (its own, or its S3
notification's topic's) delivers through the delivery crate's transports;
an event counts as acked once the endpoint acknowledged it. Against an HTTP
endpoint that fails and then recovers, and a real RabbitMQ node."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fsfeed
import pytest
import urllib3
from conftest import Env, wait_until


class Receiver:
    """An HTTP endpoint that answers `status` and keeps what it accepted."""

    def __init__(self) -> None:
        self.status = 200
        self.accepted: dict[str, list[dict]] = {}
        self.attempts: list[float] = []
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                rx.attempts.append(time.monotonic())
                if rx.status == 200:
                    rx.accepted.setdefault(self.path, []).append(body)
                self.send_response(rx.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def metrics(env: Env) -> dict[str, float]:
    text = urllib3.request("GET", env.server.url + "/metrics").data.decode()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_http_push_through_an_outage(env: Env, receiver: Receiver) -> None:
    a = env.client("alice")
    receiver.status = 503
    assert a.call("PUT", "/topics/t1", [("push-endpoint", receiver.url + "/s3")]).status == 200
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "n1",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        },
    )
    a.call("PUT", "/topics/t2")
    assert (
        a.call(
            "PUT",
            "/subscriptions/p1",
            [("topic", "t2"), ("push-endpoint", receiver.url + "/plain")],
        ).status
        == 200
    )
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t2")])
    seqs = [env.put(f"k{i:02}") for i in range(20)]
    want = [fsfeed.Position(s).event_id for s in seqs]
    wait_until(lambda: len(receiver.attempts) >= 6, what="retries")
    # The first retry within a second, later ones capped (retry_max_ms = 400).
    gaps = [b - a for a, b in zip(receiver.attempts, receiver.attempts[1:])]
    assert max(gaps) < 1.0, gaps
    m = metrics(env)
    assert m["pubsub_push_fail"] > 0 and m["pubsub_push_ok"] == 0
    assert m["pubsub_push_pending"] > 0
    # Nothing is acked while the endpoint is down.
    assert len(a.call("GET", "/subscriptions/n1", [("events", None)]).json()["Records"]) == 20
    receiver.status = 200

    def ids(path: str, key: str) -> list[str]:
        out = []
        for body in receiver.accepted.get(path, []):
            for r in body[key]:
                out.append(r["eventId"] if key == "Records" else r["id"])
        return out

    wait_until(
        lambda: len(ids("/s3", "Records")) >= 20 and len(ids("/plain", "events")) >= 20,
        what="delivery",
    )
    assert ids("/s3", "Records") == want
    assert ids("/plain", "events") == want
    first = receiver.accepted["/s3"][0]["Records"][0]
    assert first["s3"]["configurationId"] == "n1" and first["awsRegion"] == "default"
    # Pushed events were acked: a pull finds nothing.
    wait_until(
        lambda: a.call("GET", "/subscriptions/n1", [("events", None)]).json()["Records"] == [],
        what="acks",
    )
    assert a.call("GET", "/subscriptions/p1", [("events", None)]).json()["events"] == []
    m = metrics(env)
    assert m["pubsub_push_ok"] == 40 and m["pubsub_push_pending"] == 0
    # Later events go straight through.
    s = env.put("late")
    wait_until(lambda: fsfeed.Position(s).event_id in ids("/s3", "Records"), what="a late event")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rabbit:
    """A private RabbitMQ node (Debian's rabbitmq-server) on free ports."""

    def __init__(self) -> None:
        self.port = free_port()
        dist = free_port()
        # Its own epmd (Erlang's port mapper), stopped with it: a shared one
        # on 4369 would outlive the test.
        self.epmd = free_port()
        self.node = f"fsfeedpy{self.port}@localhost"
        self.dir = f"/tmp/fsfeed-rabbit-py-{self.port}"
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        with open(f"{self.dir}/enabled_plugins", "w") as f:
            f.write("[].\n")
        subprocess.run(
            ["chown", "-R", "rabbitmq:rabbitmq", self.dir], check=False, capture_output=True
        )
        self.env = {
            **os.environ,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": f"{self.dir}/mnesia",
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{self.dir}/enabled_plugins",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        with open(f"{self.dir}/out.log", "w") as out:
            self.proc = subprocess.Popen(
                ["rabbitmq-server"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        self.ctl("await_startup")

    def ctl(self, *args: str) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        try:
            self.ctl("stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        subprocess.run(["epmd", "-port", str(self.epmd), "-kill"], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def rabbit() -> Iterator[Rabbit]:
    if shutil.which("rabbitmq-server") is None:
        pytest.fail("rabbitmq-server is missing: make setup installs Debian's rabbitmq-server")
    r = Rabbit()
    yield r
    r.stop()


@pytest.mark.parametrize("ack_level", ["broker", "none"])
def test_amqp_push_to_rabbitmq(env: Env, rabbit: Rabbit, ack_level: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=rabbit.port))
    ch = conn.channel()
    exchange = f"fsfeed-{ack_level}"
    ch.exchange_declare(exchange=exchange, exchange_type="topic")
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(queue=q, exchange=exchange, routing_key="t1")
    a = env.client("alice")
    # Ceph's defaults: guest/guest, vhost "/", when the URI gives none.
    r = a.call(
        "PUT",
        "/topics/t1",
        [
            ("push-endpoint", f"amqp://127.0.0.1:{rabbit.port}"),
            ("amqp-exchange", exchange),
            ("amqp-ack-level", ack_level),
        ],
    )
    assert r.status == 200, r.body
    s3 = env.boto("s3", "alice")
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "TopicConfigurations": [
                {
                    "Id": "mq",
                    "TopicArn": "arn:aws:sns:default::t1",
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    seqs = [env.put(f"k{i}") for i in range(10)] + [env.delete("k0")]
    got: list[dict] = []
    deadline = time.monotonic() + 30
    while len(got) < len(seqs) and time.monotonic() < deadline:
        method, _props, body = ch.basic_get(queue=q, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.extend(json.loads(body)["Records"])
    conn.close()
    assert [r["eventId"] for r in got] == [fsfeed.Position(s).event_id for s in seqs]
    assert got[-1]["eventName"] == "ObjectRemoved:Delete"
    assert {r["s3"]["configurationId"] for r in got} == {"mq"}
    wait_until(
        lambda: a.call("GET", "/subscriptions/mq", [("events", None)]).json()["Records"] == [],
        what="acks",
    )
