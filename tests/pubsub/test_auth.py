"""Signatures, ownership, and bad input: every refusal is an S3 XML error,
changes nothing, and leaves the server answering."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import fsfeed
import pytest
import urllib3
from conftest import CONFIG, Client, Env, make_env


def code(body: bytes) -> str:
    return body.decode().split("<Code>")[1].split("</Code>")[0]


def still_answers(env: Env) -> None:
    assert env.client("alice").call("GET", "/topics").status == 200


@pytest.mark.parametrize("sig", ["v2", "v4"])
def test_unsigned_unknown_and_wrong_signatures_are_403(env: Env, sig: str) -> None:
    url = env.server.url
    r = Client(url, "AKALICE", "alice-secret", sig).call("GET", "/topics", sign=False)
    assert r.status == 403 and code(r.body) == "AccessDenied"
    r = Client(url, "AKNOBODY", "whatever", sig).call("GET", "/topics")
    assert r.status == 403 and code(r.body) == "InvalidAccessKeyId"
    assert b"AKNOBODY" not in r.body
    r = Client(url, "AKALICE", "wrong-secret", sig).call("PUT", "/topics/x")
    assert r.status == 403 and code(r.body) == "SignatureDoesNotMatch"
    assert Client(url, "AKALICE", "alice-secret", sig).call("GET", "/topics/x").status == 404
    # A signed request whose query was changed after signing.
    c = Client(url, "AKALICE", "alice-secret", sig)
    from botocore.auth import HmacV1Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest

    req = AWSRequest(method="GET", url=f"{url}/photos?notification=a", data=b"")
    if sig == "v4":
        req.headers["X-Amz-Content-SHA256"] = (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        SigV4Auth(c.creds, "s3", "default").add_auth(req)
    else:
        HmacV1Auth(c.creds).add_auth(req)
    r2 = urllib3.request("GET", f"{url}/photos?notification=b", headers=dict(req.headers.items()))
    assert r2.status == 403 and code(r2.data) == "SignatureDoesNotMatch"
    still_answers(env)


def test_v4_with_any_service_and_region(env: Env) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    for service, region in [("s3", "default"), ("sns", "us-east-1"), ("execute-api", "zg-9")]:
        req = AWSRequest(method="PUT", url=f"{env.server.url}/topics/t-{service}", data=b"")
        SigV4Auth(Credentials("AKALICE", "alice-secret"), service, region).add_auth(req)
        r = urllib3.request("PUT", req.url, headers=dict(req.headers.items()))
        assert r.status == 200, (service, r.data)


def test_a_body_that_is_not_the_signed_one_is_refused(env: Env) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(
        method="POST",
        url=env.server.url + "/",
        data=b"Action=CreateTopic&Name=a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(Credentials("AKALICE", "alice-secret"), "sns", "default").add_auth(req)
    r = urllib3.request(
        "POST", req.url, body=b"Action=CreateTopic&Name=b", headers=dict(req.headers.items())
    )
    assert r.status == 403 and b"SignatureDoesNotMatch" in r.data
    assert env.client("alice").call("GET", "/topics").json() == {"topics": []}


def test_old_requests_are_refused(env: Env) -> None:
    import base64
    import email.utils
    import hashlib
    import hmac

    date = email.utils.formatdate(time.time() - 3600, usegmt=True)
    sig = base64.b64encode(
        hmac.new(b"alice-secret", f"GET\n\n\n{date}\n/topics".encode(), hashlib.sha1).digest()
    ).decode()
    r = urllib3.request(
        "GET",
        env.server.url + "/topics",
        headers={"Date": date, "Authorization": f"AWS AKALICE:{sig}"},
    )
    assert r.status == 403 and code(r.data) == "RequestTimeTooSkewed"


def test_ownership(env: Env) -> None:
    alice, carol, bob = env.client("alice"), env.client("carol"), env.client("bob")
    alice.call("PUT", "/topics/t1")
    alice.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    env.put("x")
    # carol: the same (empty) tenant, another user.
    denied = [
        ("GET", "/topics/t1", []),
        ("PUT", "/topics/t1", []),
        ("DELETE", "/topics/t1", []),
        ("PUT", "/subscriptions/s2", [("topic", "t1")]),
        ("PUT", "/subscriptions/s1", [("topic", "t1")]),
        ("GET", "/subscriptions/s1", []),
        ("DELETE", "/subscriptions/s1", []),
        ("GET", "/subscriptions/s1", [("events", None)]),
        ("POST", "/subscriptions/s1", [("ack", None), ("event-id", "0000000000000005-00000000")]),
        ("PUT", "/notifications/bucket/photos", [("topic", "t1")]),
        ("GET", "/notifications/bucket/photos", []),
        ("DELETE", "/notifications/bucket/photos", [("topic", "t1")]),
        ("GET", "/photos", [("notification", None)]),
        ("DELETE", "/photos", [("notification", None)]),
    ]
    for method, path, q in denied:
        r = carol.call(method, path, q)
        assert r.status == 403 and code(r.body) == "AccessDenied", (method, path, r.body)
    body = b"<NotificationConfiguration><TopicConfiguration><Id>c</Id><Topic>arn:aws:sns:default::t1</Topic><Event>s3:ObjectCreated:*</Event></TopicConfiguration></NotificationConfiguration>"
    assert carol.call("PUT", "/photos", "notification", body=body).status == 403
    # carol's own bucket with alice's topic: the topic is not hers.
    assert carol.call("PUT", "/carols", "notification", body=body).status == 403
    # alice on a bucket she does not own (t2$bob's).
    alice.call("PUT", "/notifications/bucket/t2stuff", [("topic", "t1")])
    assert alice.call("PUT", "/notifications/bucket/t2stuff", [("topic", "t1")]).status == 403
    # bob (tenant t2): his own namespace; alice's names do not exist there.
    assert bob.call("GET", "/topics/t1").status == 404
    assert bob.call("GET", "/subscriptions/s1").status == 404
    r = bob.call("PUT", "/topics/t1")
    assert r.json() == {"arn": "arn:aws:sns:default:t2:t1"}
    assert bob.call("PUT", "/notifications/bucket/t2stuff", [("topic", "t1")]).status == 200
    assert bob.call("PUT", "/subscriptions/s1", [("topic", "t1")]).status == 200
    assert [t["name"] for t in bob.call("GET", "/topics").json()["topics"]] == ["t1"]
    assert [t["user"] for t in alice.call("GET", "/topics").json()["topics"]] == ["alice"]
    assert carol.call("GET", "/topics").json() == {"topics": []}
    # Nothing carol tried changed anything.
    assert alice.call("GET", "/topics/t1").json()["subs"] == ["s1"]
    got = alice.call("GET", "/subscriptions/s1", [("events", None)]).json()
    assert len(got["events"]) == 0  # no notification on photos was made
    # bob's events on t2stuff reach bob only.
    env.put("y", bucket="t2stuff")
    assert [
        e["info"]["key"]["name"]
        for e in bob.call("GET", "/subscriptions/s1", [("events", None)]).json()["events"]
    ] == ["y"]
    assert (
        bob.call("GET", "/subscriptions/s1", [("events", None)]).json()["events"][0]["info"][
            "bucket"
        ]["tenant"]
        == "t2"
    )


def test_malformed_requests_and_the_server_still_answers(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    cases = [
        (
            "PUT",
            "/photos",
            "notification",
            b"<NotificationConfiguration><TopicConfiguration>",
            400,
            "MalformedXML",
        ),
        ("PUT", "/photos", "notification", b"\xff\xfe\x00", 400, "MalformedXML"),
        (
            "PUT",
            "/photos",
            "notification=x",
            b"<NotificationConfiguration/>",
            400,
            "InvalidArgument",
        ),
        ("GET", "/subscriptions/s1", "events&marker=zzz", b"", 400, "InvalidArgument"),
        ("POST", "/subscriptions/s1", "ack&event-id=-1", b"", 400, "InvalidArgument"),
        ("GET", "/topics/t1", "colour=blue", b"", 400, "InvalidArgument"),
        ("GET", "/nothing/here/at/all", "", b"", 400, "InvalidArgument"),
        ("GET", "/topics/%FF", "", b"", 400, "InvalidArgument"),
        ("POST", "/", "", b"Version=2010-03-31", 400, "InvalidArgument"),
        ("PUT", "/photos", "notification", b"x" * (2 << 20), 400, "EntityTooLarge"),
    ]
    for method, path, q, body, status, want in cases:
        r = a.call(method, path, q, body=body)
        assert r.status == status and code(r.body) == want, (
            method,
            path,
            q,
            r.status,
            r.body[:200],
        )
        still_answers(env)

    # A body larger than the limit without a Content-Length (chunked).
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 65536

    r = urllib3.request("PUT", env.server.url + "/photos?notification", body=chunks())
    assert r.status == 400 and code(r.data) == "EntityTooLarge"
    still_answers(env)


@pytest.fixture
def quick_env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, CONFIG + "[server]\nrequest_timeout_ms = 500\n")


def test_slow_clients_time_out(quick_env: Env) -> None:
    env = quick_env
    host, port = env.server.url.removeprefix("http://").split(":")
    # Headers that never end.
    s1 = socket.create_connection((host, int(port)))
    s1.sendall(b"GET /topics HTTP/1.1\r\nHost: x\r\n")
    # A body that never comes.
    s2 = socket.create_connection((host, int(port)))
    s2.sendall(b"PUT /topics/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    t0 = time.monotonic()
    s1.settimeout(10)
    s2.settimeout(10)
    first = s1.recv(4096)  # closed, or a 408, once the timeout passed
    assert first == b"" or first.startswith(b"HTTP/1.1 408"), first
    reply = s2.recv(4096)
    assert b"400" in reply.split(b"\r\n")[0] and b"RequestTimeout" in reply, reply
    assert time.monotonic() - t0 < 5
    s1.close()
    s2.close()
    still_answers(env)


def test_metrics_need_no_signature(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    a.call("PUT", "/topics/lonely")
    a.call("PUT", "/notifications/bucket/docs", [("topic", "lonely")])
    env.put("x")
    env.put("y", bucket="docs")
    env.put("z", bucket="carols")
    a.call("GET", "/subscriptions/s1", [("events", None)])
    text = urllib3.request("GET", env.server.url + "/metrics").data.decode()
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for name in [
        "pubsub_event_triggered",
        "pubsub_event_lost",
        "pubsub_store_ok",
        "pubsub_store_fail",
        "pubsub_push_ok",
        "pubsub_push_fail",
        "pubsub_push_pending",
    ]:
        assert name in values, name
    assert values["pubsub_event_triggered"] == 2  # x (photos) and y (docs)
    assert values["pubsub_event_lost"] == 1  # y: its topic has no subscription
    assert values["pubsub_store_ok"] == 1  # x, for s1
    assert values["pubsub_event_pulled"] == 1


def test_secrets_never_reach_the_log(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1", [("push-endpoint", "http://user:s3cr3tpw@127.0.0.1:9/x")])
    a.call(
        "PUT",
        "/subscriptions/p",
        [("topic", "t1"), ("push-endpoint", "http://user:s3cr3tpw@127.0.0.1:9/x")],
    )
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1")])
    env.put("x")
    Client(env.server.url, "AKALICE", "wrong-secret").call("GET", "/topics")
    time.sleep(1.5)  # the push task fails against a closed port and logs it
    env.server.stop()
    log = env.server.log.read_text()
    assert "push failed" in log
    for secret in ["s3cr3tpw", "alice-secret", "bob-secret", "wrong-secret"]:
        assert secret not in log
    env.server.start()
    assert (
        env.client("alice").call("GET", "/subscriptions/p").json()["dest"]["push_endpoint"]
        == "http://user:***@127.0.0.1:9/x"
    )


def test_bad_configs_exit_2_without_quoting_secrets(tmp_path: Path) -> None:
    import subprocess

    from conftest import FSFEED

    led = fsfeed.Ledger.open(tmp_path / "l")
    led.close()
    for text in [
        "[[users]]\nuid='a'\naccess_key='k'\nsecret_key=12345\n",
        "[[users]]\nuid='a'\naccess_key='k'\nsecret_key='TOPSECRET'\nextra='x'\n",
        "[zone]\nevents_retention_days=-1\n",
        "",
    ]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        p = subprocess.run(
            [
                FSFEED,
                "serve",
                "--ledger",
                str(tmp_path / "l"),
                "--config",
                str(cfg),
                "--listen",
                "127.0.0.1:0",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert p.returncode == 2, (text, p.stderr)
        assert (
            "invalid_config" in p.stderr and "TOPSECRET" not in p.stderr and "12345" not in p.stderr
        )
