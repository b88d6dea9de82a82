"""Topics, notifications and subscriptions: create, read, update, delete,
in the shapes the Ceph PubSub document gives, through raw signed HTTP and
through boto3's s3 and sns clients."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac

import pytest
from botocore.exceptions import ClientError
from conftest import Env

TOPIC_KEYS = {"user", "name", "dest", "arn"}
DEST_KEYS = {"bucket_name", "oid_prefix", "push_endpoint", "push_endpoint_args"}


def error_code(body: bytes) -> str:
    text = body.decode()
    return text.split("<Code>")[1].split("</Code>")[0]


def test_topic_create_get_list_update_delete(env: Env) -> None:
    a = env.client("alice")
    r = a.call("PUT", "/topics/t1")
    assert r.status == 200
    assert r.json() == {"arn": "arn:aws:sns:default::t1"}
    a.call("PUT", "/subscriptions/s1", [("topic", "t1")])
    got = a.call("GET", "/topics/t1").json()
    assert set(got) == {"topic", "subs"}
    assert set(got["topic"]) == TOPIC_KEYS
    assert set(got["topic"]["dest"]) == DEST_KEYS
    assert got["topic"]["user"] == "alice"
    assert got["topic"]["name"] == "t1"
    assert got["topic"]["arn"] == "arn:aws:sns:default::t1"
    assert got["subs"] == ["s1"]
    # Update: the same PUT with an endpoint; the password never comes back.
    r = a.call(
        "PUT",
        "/topics/t1",
        [
            ("push-endpoint", "amqp://u:hunter2@127.0.0.1:5672/v"),
            ("amqp-exchange", "ex"),
            ("amqp-ack-level", "none"),
        ],
    )
    assert r.status == 200, r.body
    dest = a.call("GET", "/topics/t1").json()["topic"]["dest"]
    assert dest["push_endpoint"] == "amqp://u:***@127.0.0.1:5672/v"
    assert "amqp-exchange=ex" in dest["push_endpoint_args"]
    assert "amqp-ack-level=none" in dest["push_endpoint_args"]
    a.call("PUT", "/topics/t2")
    listed = a.call("GET", "/topics").json()
    assert [t["name"] for t in listed["topics"]] == ["t1", "t2"]
    assert all(set(t) == TOPIC_KEYS for t in listed["topics"])
    assert a.call("DELETE", "/topics/t2").status == 200
    r = a.call("GET", "/topics/t2")
    assert r.status == 404 and error_code(r.body) == "NoSuchKey"
    assert a.call("DELETE", "/topics/t2").status == 404


@pytest.mark.parametrize(
    "params",
    [
        [("push-endpoint", "ftp://127.0.0.1/x")],
        [("push-endpoint", "not a url")],
        [("push-endpoint", "amqp://127.0.0.1")],
        [
            ("push-endpoint", "amqp://127.0.0.1"),
            ("amqp-exchange", "x"),
            ("amqp-ack-level", "routable"),
        ],
        [("push-endpoint", "http://127.0.0.1/x"), ("verify-ssl", "maybe")],
        [("push-endpoint", "http://127.0.0.1/x"), ("amqp-exchange", "x")],
        [("amqp-exchange", "x")],
        [("push-endpoint", "http://127.0.0.1/x"), ("colour", "blue")],
        [("push-endpoint", "http://a/x"), ("push-endpoint", "http://b/x")],
    ],
)
def test_a_push_endpoint_that_cannot_work_is_refused_and_changes_nothing(
    env: Env, params: list
) -> None:
    a = env.client("alice")
    r = a.call("PUT", "/topics/bad", params)
    assert r.status == 400, r.body
    assert error_code(r.body) == "InvalidArgument"
    assert a.call("GET", "/topics/bad").status == 404
    r = a.call("PUT", "/topics/good")
    r = a.call("PUT", "/subscriptions/s", [("topic", "good"), *params])
    assert r.status == 400, r.body
    assert a.call("GET", "/subscriptions/s").status == 404


def test_bad_names_are_refused(env: Env) -> None:
    a = env.client("alice")
    for name in [".hidden", "x" * 65, "a%20b", "%C3%A9"]:
        assert a.call("PUT", f"/topics/{name}").status == 400, name
    assert a.call("GET", "/topics").json() == {"topics": []}


def test_sns_calls_of_boto3(env: Env) -> None:
    sns = env.boto("sns", "alice")
    arn = sns.create_topic(
        Name="orders",
        Attributes={
            "push-endpoint": "http://user:pa55word@127.0.0.1:9/hook",
            "verify-ssl": "false",
        },
    )["TopicArn"]
    assert arn == "arn:aws:sns:default::orders"
    assert sns.create_topic(Name="other")["TopicArn"] == "arn:aws:sns:default::other"
    arns = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert arns == ["arn:aws:sns:default::orders", "arn:aws:sns:default::other"]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["Name"] == "orders" and attrs["User"] == "alice" and attrs["TopicArn"] == arn
    assert attrs["EndPoint"] == "http://user:***@127.0.0.1:9/hook"
    assert "pa55word" not in str(attrs)
    sns.delete_topic(TopicArn=arn)
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn=arn)
    assert e.value.response["Error"]["Code"] == "NotFound"
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name="x", Attributes={"push-endpoint": "gopher://h/"})
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as e:
        sns.create_topic(Name="x", Attributes={"Policy": "{}"})
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn="not-an-arn")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    # Another tenant's ARN is not this user's to read.
    with pytest.raises(ClientError) as e:
        sns.get_topic_attributes(TopicArn="arn:aws:sns:default:t2:orders")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == ["arn:aws:sns:default::other"]
    r = env.client("alice", service="sns").call(
        "POST",
        "/",
        body=b"Action=Publish&TopicArn=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 400 and b"InvalidAction" in r.body


def test_s3_notifications_with_boto3(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    s3 = env.boto("s3", "alice")
    config = {
        "TopicConfigurations": [
            {
                "Id": "jpgs",
                "TopicArn": "arn:aws:sns:default::t1",
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": "img/"},
                            {"Name": "suffix", "Value": ".jpg"},
                        ]
                    }
                },
            },
            {"Id": "all", "TopicArn": "arn:aws:sns:default::t1", "Events": ["s3:ObjectRemoved:*"]},
        ]
    }
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket="photos")["TopicConfigurations"]
    by_id = {c["Id"]: c for c in got}
    assert set(by_id) == {"jpgs", "all"}
    assert by_id["jpgs"]["TopicArn"] == "arn:aws:sns:default::t1"
    assert by_id["jpgs"]["Events"] == ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"]
    rules = {r["Name"]: r["Value"] for r in by_id["jpgs"]["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "img/", "suffix": ".jpg"}
    # Each notification made a subscription named after its Id.
    sub = a.call("GET", "/subscriptions/jpgs").json()
    assert set(sub) == {"user", "name", "topic", "dest", "s3_id"}
    assert sub["s3_id"] == "jpgs" and sub["topic"] == "t1" and sub["user"] == "alice"
    assert set(sub["dest"]) == DEST_KEYS
    assert sub["dest"]["bucket_name"] == "pubsub-alice-t1"
    assert sub["dest"]["oid_prefix"] == "jpgs/"
    assert a.call("GET", "/topics/t1").json()["subs"] == ["all", "jpgs"]
    # One by Id (an extension), signed both ways clients sign it.
    one = a.call("GET", "/photos", "notification=all")
    assert one.status == 200 and b"<Id>all</Id>" in one.body and b"jpgs" not in one.body
    assert a.call("GET", "/photos/", "notification=all").status == 200
    assert a.call("GET", "/photos", "notification=nope").status == 404
    # Delete one: its subscription goes too.
    assert a.call("DELETE", "/photos", "notification=all").status == 200
    assert a.call("GET", "/subscriptions/all").status == 404
    assert [
        c["Id"]
        for c in s3.get_bucket_notification_configuration(Bucket="photos")["TopicConfigurations"]
    ] == ["jpgs"]
    # An empty configuration removes every notification (what S3 does).
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration={})
    assert "TopicConfigurations" not in s3.get_bucket_notification_configuration(Bucket="photos")
    assert a.call("GET", "/subscriptions/jpgs").status == 404


def test_bad_s3_notifications_are_refused_and_change_nothing(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    s3 = env.boto("s3", "alice")
    good = {"Id": "ok", "TopicArn": "arn:aws:sns:default::t1", "Events": ["s3:ObjectCreated:*"]}
    cases = [
        (
            {
                "Id": "x",
                "TopicArn": "arn:aws:sns:default::missing",
                "Events": ["s3:ObjectCreated:*"],
            },
            404,
        ),
        ({"Id": "x", "TopicArn": "arn:aws:sns:default::t1", "Events": ["s3:Nonsense:*"]}, 400),
        (
            {"Id": "x", "TopicArn": "arn:aws:sns:elsewhere::t1", "Events": ["s3:ObjectCreated:*"]},
            400,
        ),
        (
            {"Id": "x", "TopicArn": "arn:aws:sns:default:t2:t1", "Events": ["s3:ObjectCreated:*"]},
            403,
        ),
        (
            {
                "Id": "x",
                "TopicArn": "arn:aws:sns:default::t1",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "regex", "Value": "x"}]}},
            },
            400,
        ),
        (
            {
                "Id": "bad id!",
                "TopicArn": "arn:aws:sns:default::t1",
                "Events": ["s3:ObjectCreated:*"],
            },
            400,
        ),
    ]
    for bad, status in cases:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_notification_configuration(
                Bucket="photos", NotificationConfiguration={"TopicConfigurations": [good, bad]}
            )
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, bad
        assert "TopicConfigurations" not in s3.get_bucket_notification_configuration(
            Bucket="photos"
        )
        assert a.call("GET", "/subscriptions/ok").status == 404
    with pytest.raises(ClientError) as e:
        s3.put_bucket_notification_configuration(
            Bucket="nosuchbucket", NotificationConfiguration={"TopicConfigurations": [good]}
        )
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    for body in [b"<NotificationConfiguration><TopicConfiguration>", b"garbage", b"<Other/>"]:
        r = a.call("PUT", "/photos", "notification", body=body)
        assert r.status == 400 and error_code(r.body) == "MalformedXML", body


def test_v2_signature_of_the_sub_resource_with_and_without_the_slash(env: Env) -> None:
    """Clients sign `/bucket?notification` as `/bucket?notification` or
    `/bucket/?notification`; both are accepted, whichever path was sent."""
    import urllib3

    env.client("alice").call("PUT", "/topics/t1")
    for sent, signed in [("/photos", "/photos/"), ("/photos/", "/photos"), ("/photos", "/photos")]:
        date = email.utils.formatdate(usegmt=True)
        sts = f"GET\n\n\n{date}\n{signed}?notification"
        sig = base64.b64encode(
            hmac.new(b"alice-secret", sts.encode(), hashlib.sha1).digest()
        ).decode()
        r = urllib3.request(
            "GET",
            f"{env.server.url}{sent}?notification",
            headers={"Date": date, "Authorization": f"AWS AKALICE:{sig}"},
        )
        assert r.status == 200, (sent, signed, r.data)
    # The pubsub parameters are not signed by v2: a topic PUT signed without them passes.
    date = email.utils.formatdate(usegmt=True)
    sts = f"PUT\n\n\n{date}\n/topics/t9"
    sig = base64.b64encode(hmac.new(b"alice-secret", sts.encode(), hashlib.sha1).digest()).decode()
    r = urllib3.request(
        "PUT",
        f"{env.server.url}/topics/t9?push-endpoint=http%3A%2F%2F127.0.0.1%2Fx",
        headers={"Date": date, "Authorization": f"AWS AKALICE:{sig}"},
    )
    assert r.status == 200, r.data


def test_plain_notifications(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    a.call("PUT", "/topics/t2")
    assert (
        a.call(
            "PUT",
            "/notifications/bucket/photos",
            [("topic", "t1"), ("events", "OBJECT_CREATE,OBJECT_DELETE")],
        ).status
        == 200
    )
    assert a.call("PUT", "/notifications/bucket/photos", [("topic", "t2")]).status == 200
    got = a.call("GET", "/notifications/bucket/photos").json()
    assert set(got) == {"topics"}
    assert [(x["topic"]["name"], x["events"]) for x in got["topics"]] == [
        ("t1", ["OBJECT_CREATE", "OBJECT_DELETE"]),
        ("t2", []),
    ]
    assert set(got["topics"][0]["topic"]) == TOPIC_KEYS
    # Update t1's event types.
    a.call("PUT", "/notifications/bucket/photos", [("topic", "t1"), ("events", "OBJECT_DELETE")])
    got = a.call("GET", "/notifications/bucket/photos").json()
    assert [(x["topic"]["name"], x["events"]) for x in got["topics"]] == [
        ("t2", []),
        ("t1", ["OBJECT_DELETE"]),
    ]
    assert a.call("DELETE", "/notifications/bucket/photos", [("topic", "t2")]).status == 200
    assert a.call("DELETE", "/notifications/bucket/photos", [("topic", "t2")]).status == 404
    assert [
        x["topic"]["name"] for x in a.call("GET", "/notifications/bucket/photos").json()["topics"]
    ] == ["t1"]
    r = a.call(
        "PUT", "/notifications/bucket/photos", [("topic", "t1"), ("events", "OBJECT_EXPLODE")]
    )
    assert r.status == 400
    assert a.call("PUT", "/notifications/bucket/photos", [("topic", "nosuch")]).status == 404
    assert a.call("PUT", "/notifications/bucket/nosuchbucket", [("topic", "t1")]).status == 404
    assert a.call("PUT", "/notifications/bucket/photos", []).status == 400


def test_subscription_create_get_delete(env: Env) -> None:
    a = env.client("alice")
    a.call("PUT", "/topics/t1")
    assert a.call("PUT", "/subscriptions/s1", [("topic", "t1")]).status == 200
    # Again with the same settings: the same subscription.
    assert a.call("PUT", "/subscriptions/s1", [("topic", "t1")]).status == 200
    got = a.call("GET", "/subscriptions/s1").json()
    assert got == {
        "user": "alice",
        "name": "s1",
        "topic": "t1",
        "dest": {
            "bucket_name": "pubsub-alice-t1",
            "oid_prefix": "s1/",
            "push_endpoint": "",
            "push_endpoint_args": "",
        },
        "s3_id": "",
    }
    a.call("PUT", "/topics/t2")
    assert a.call("PUT", "/subscriptions/s1", [("topic", "t2")]).status == 400
    assert a.call("PUT", "/subscriptions/s2", [("topic", "nosuch")]).status == 404
    assert a.call("PUT", "/subscriptions/s2", []).status == 400
    assert a.call("DELETE", "/subscriptions/s1").status == 200
    assert a.call("GET", "/subscriptions/s1").status == 404
    assert a.call("DELETE", "/subscriptions/s1").status == 404
    assert a.call("PATCH", "/subscriptions/s1").status == 405
