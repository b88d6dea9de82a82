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


def test_every_aws_record_validates():
    message = load("s3-aws.json")
    model = S3Model.model_validate(message)
    assert len(model.Records) == len(message["Records"]) >= 30
    for record, raw in zip(model.Records, message["Records"]):
        assert record.eventSource == "aws:s3"
        assert record.eventName == raw["eventName"]
        assert record.s3.object.key == raw["s3"]["object"]["key"]
        assert record.s3.object.size == raw["s3"]["object"]["size"]
        # Millisecond RFC 3339 time, in UTC.
        assert record.eventTime.utcoffset().total_seconds() == 0
        assert raw["eventTime"].endswith("Z") and len(raw["eventTime"]) == 24


def test_a_broken_record_is_rejected():
    # The check can fail: a record without eTag on a create is not valid.
    message = load("s3-aws.json")
    broken = json.loads(json.dumps(message["Records"][0]))
    assert ":Delete" not in broken["eventName"]
    del broken["s3"]["object"]["eTag"]
    with pytest.raises(ValueError):
        S3Model.model_validate({"Records": [broken]})
