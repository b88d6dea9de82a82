"""The aws-profile S3 output validates with aws-lambda-powertools' S3Model.

Reads the golden fixtures that the Rust suite renders and checks byte for
byte, so what passes here is exactly what fsfeed writes.
"""

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(name):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def known(raw):
    """True when the record carries the size and eTag that powertools requires
    outside deletes (fsfeed leaves out what the op did not say)."""
    obj = raw["s3"]["object"]
    return ":Delete" in raw["eventName"] or ("size" in obj and "eTag" in obj)


def test_every_aws_record_validates():
    message = load("s3-aws.json")
    complete = [r for r in message["Records"] if known(r)]
    # The corpus has two commits whose op gave no eTag: their records say
    # nothing of it rather than something made up (see below).
    assert len(message["Records"]) - len(complete) == 2
    model = S3Model.model_validate({"Records": complete})
    assert len(model.Records) == len(complete) >= 16
    for record, raw in zip(model.Records, complete):
        assert record.eventSource == "aws:s3"
        assert record.eventName == raw["eventName"]
        assert record.s3.object.key == raw["s3"]["object"]["key"]
        assert record.s3.object.size == raw["s3"]["object"].get("size")
        # Millisecond RFC 3339 time, in UTC.
        assert record.eventTime.utcoffset().total_seconds() == 0
        assert raw["eventTime"].endswith("Z") and len(raw["eventTime"]) == 24


def test_no_record_has_a_made_up_etag_or_aws_unknown_name():
    aws_names = {
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:Delete",
        # Sent by AWS with the object's size and eTag; fsfeed writes it only
        # when the live index knows both.
        "ObjectAcl:Put",
    }
    for raw in load("s3-aws.json")["Records"]:
        obj = raw["s3"]["object"]
        assert obj.get("eTag") != ""
        assert raw["eventName"] in aws_names
        if ":Delete" in raw["eventName"]:
            assert "size" not in obj and "eTag" not in obj
        if not known(raw):
            # What powertools says of a create without an eTag: rejected, as
            # it should be; fsfeed will not invent one.
            with pytest.raises(ValueError):
                S3Model.model_validate({"Records": [raw]})


def test_a_broken_record_is_rejected():
    # The check can fail: a record without eTag on a create is not valid.
    message = load("s3-aws.json")
    broken = json.loads(json.dumps(next(r for r in message["Records"] if known(r))))
    assert ":Delete" not in broken["eventName"]
    del broken["s3"]["object"]["eTag"]
    with pytest.raises(ValueError):
        S3Model.model_validate({"Records": [broken]})
