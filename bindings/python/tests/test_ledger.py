"""Appending and reading through the installed package."""

from __future__ import annotations

import datetime
import json

import fsfeed
import pytest
from conftest import FIXTURES, T0, commit, corpus


def test_append_returns_dense_seqs(ledger):
    assert ledger.append(commit("a/1")) == 1
    assert ledger.append_batch([commit("a/2", 1), commit("a/3", 2)]) == [2, 3]
    assert ledger.append_batch([]) == []
    assert ledger.head_seq == 3 and ledger.first_seq == 1


def test_dicts_and_builders_are_the_same_op(ledger):
    op = commit("k", 4)
    assert fsfeed.Op.from_dict(op.to_dict()).to_dict() == op.to_dict()
    ledger.append(op.to_dict())
    ledger.append(op)
    a, b = ledger.cursor(start="earliest").read(timeout=0).records
    assert {k: v for k, v in a.items() if k not in ("seq", "offset")} == {
        k: v for k, v in b.items() if k not in ("seq", "offset")
    }
    assert a["kind"] == "commit" and a["key"] == "k" and a["size"] == 5


def test_the_whole_corpus_appends_and_reads_back_in_every_format(ledger):
    ops = corpus()
    seqs = ledger.append_batch(ops)
    assert len(seqs) == len(ops)
    native = ledger.cursor(start="earliest").read(max=10_000, timeout=0)
    assert [r["seq"] for r in native.records] == seqs
    assert native.records == json.loads((FIXTURES / "native.json").read_text())
    s3 = ledger.cursor(start="earliest", format="s3").read(max=10_000, timeout=0)
    golden = json.loads((FIXTURES / "s3-aws.json").read_text())
    assert s3.records == golden["Records"]
    hdfs = ledger.cursor(start="earliest", format="hdfs").read(max=10_000, timeout=0)
    golden_hdfs = json.loads((FIXTURES / "hdfs.json").read_text())
    assert [b for b in hdfs.records] == golden_hdfs
    for profile in ("ceph", "minio"):
        c = ledger.cursor(start="earliest", format="s3", s3_profile=profile)
        golden = json.loads((FIXTURES / f"s3-{profile}.json").read_text())
        assert c.read(max=10_000, timeout=0).records == golden["Records"]


def test_s3_profiles_and_settings(ledger):
    ledger.append(commit("a b/c+d.txt"))
    rec = ledger.cursor(start="earliest", format="s3").read(timeout=0).records[0]
    assert rec["s3"]["object"]["key"] == "a+b/c%2Bd.txt"
    assert rec["fsfeedEventData"]["rawKey"] == "a b/c+d.txt"
    ceph = ledger.cursor(
        start="earliest", format="s3", s3_profile="ceph", s3_settings={"region": "eu-1"}
    ).read(timeout=0)
    assert ceph.records[0]["eventSource"] == "ceph:s3"
    assert ceph.records[0]["awsRegion"] == "eu-1"
    assert ceph.records[0]["s3"]["object"]["key"] == "a b/c+d.txt"


def test_s3_records_validate_with_powertools(ledger):
    from aws_lambda_powertools.utilities.parser.models import S3Model

    ledger.append_batch(corpus())
    recs = ledger.cursor(start="earliest", format="s3").read(max=10_000, timeout=0).records

    def known(r: dict) -> bool:
        obj = r["s3"]["object"]
        return ":Delete" in r["eventName"] or ("size" in obj and "eTag" in obj)

    # Two corpus commits give no eTag (one no size either): their records
    # leave it out rather than invent one, and powertools, which requires it
    # outside deletes, rejects them. Every other record validates.
    complete = [r for r in recs if known(r)]
    assert len(recs) - len(complete) == 2
    model = S3Model.model_validate({"Records": complete})
    assert len(model.Records) == len(complete) > 15
    for r in recs:
        if not known(r):
            with pytest.raises(ValueError):
                S3Model.model_validate({"Records": [r]})


def test_named_cursor_resumes_where_it_committed(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(10)])
    c = ledger.cursor("svc")
    b = c.read(max=4, timeout=0)
    assert [r["seq"] for r in b.records] == [1, 2, 3, 4]
    c.commit(b.next)
    assert c.lag() == 6
    again = ledger.cursor("svc").read(max=100, timeout=0)
    assert [r["seq"] for r in again.records] == list(range(5, 11))
    assert ledger.stats()["cursors"][0]["name"] == "svc"


def test_position_round_trips_through_a_json_dict(ledger):
    p = fsfeed.Position(7, 2)
    d = json.loads(json.dumps(p.to_dict()))
    assert fsfeed.Position.from_dict(d) == p and hash(fsfeed.Position.from_dict(d)) == hash(p)
    assert fsfeed.Position.from_dict({"seq": 3}) == fsfeed.Position(3)
    assert str(p) == "7:2" and p.seq == 7 and p.sub == 2


def test_every_start_form(ledger):
    ledger.append_batch([commit(f"k{i}", i * 1_000_000) for i in range(5)])

    def first(start):
        recs = ledger.cursor(start=start).read(timeout=0).records
        return recs[0]["seq"] if recs else None

    assert first("earliest") == 1
    assert first("latest") is None
    assert first(3) == 3
    assert first("3:0") == 3
    assert first(fsfeed.Position(4)) == 4
    assert first({"seq": 2, "sub": 0}) == 2
    t = datetime.datetime(2026, 1, 1, 0, 0, 2, tzinfo=datetime.timezone.utc)
    assert first(t) == 3
    assert first("2026-01-01T00:00:02Z") == 3


def test_seek_and_position(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(5)])
    c = ledger.cursor(start="earliest")
    c.seek(4)
    assert c.position == fsfeed.Position(4)
    assert [r["seq"] for r in c.read(timeout=0).records] == [4, 5]


def test_filters_are_the_cores(ledger):
    ledger.append_batch([commit("a/x.csv"), commit("a/y.txt", 1), commit("b/z.csv", 2)])
    c = ledger.cursor(start="earliest", filter={"prefix": "a/", "suffix": ".csv"})
    b = c.read(timeout=0)
    assert [r["key"] for r in b.records] == ["a/x.csv"]
    assert b.next == fsfeed.Position(4)  # filtered events still move the position


def test_a_gap_is_reported_in_band(tmp_path):
    with fsfeed.Ledger.open(tmp_path / "l", retention={"max_events": 3}) as led:
        led.append_batch([commit(f"k{i}", i) for i in range(10)])
        b = led.cursor(start=1).read(timeout=0)
        assert b.gap == {"expected": 1, "actual": led.first_seq}
        assert b.records[0]["seq"] == led.first_seq
        with pytest.raises(fsfeed.GapError) as e:
            led.cursor(start=1, on_gap="error").read(timeout=0)
        assert e.value.code == "gap" and e.value.expected == 1


def test_rename_expansion_the_ozone_example(ledger):
    # As in the example: three committed files, their directories only
    # parents (an explicit create_directory would add its dir/ marker).
    fso = [
        fsfeed.Op.create_file("vol1", "bucket1", "myfiles/f1"),
        fsfeed.Op.commit("vol1", "bucket1", "myfiles/f1", size=1),
        fsfeed.Op.create_file("vol1", "bucket1", "myfiles/f2"),
        fsfeed.Op.commit("vol1", "bucket1", "myfiles/f2", size=2),
        fsfeed.Op.create_file("vol1", "bucket1", "myfiles/subdir/f1"),
        fsfeed.Op.commit("vol1", "bucket1", "myfiles/subdir/f1", size=3),
        fsfeed.Op.rename("vol1", "bucket1", "myfiles", "myfiles-RENAMED"),
    ]
    seqs = ledger.append_batch([o.with_layout("fso").at(T0 + i) for i, o in enumerate(fso)])
    c = ledger.cursor(start=seqs[-1], format="s3", expand_renames=True)
    recs = c.read(timeout=0).records
    names = sorted((r["eventName"], r["fsfeedEventData"]["rawKey"]) for r in recs)
    assert names == sorted(
        [("ObjectRemoved:Delete", f"myfiles/{k}") for k in ("f1", "f2", "subdir/f1")]
        + [("ObjectCreated:Put", f"myfiles-RENAMED/{k}") for k in ("f1", "f2", "subdir/f1")]
    )
    assert c.position == fsfeed.Position(seqs[-1] + 1)


def test_changes_and_stats(ledger):
    ledger.append_batch([commit("a", 0), commit("b", 1), fsfeed.Op.delete("vol1", "b1", "a")])
    assert ledger.changes(since=1) == [
        {"change": "NEW", "volume": "vol1", "bucket": "b1", "key": "b"}
    ]
    s = ledger.stats()
    assert s["head_seq"] == 3 and s["events"] == 3


def test_history_through_pyarrow_and_pandas(ledger):
    import pyarrow as pa

    ledger.append_batch([commit(f"d/{i}", i) for i in range(1000)])
    t = pa.table(ledger.history(since=101, until=900, batch_rows=64))
    assert t.num_rows == 800
    assert t.column("seq").to_pylist() == list(range(101, 901))
    assert str(t.schema.field("time").type) == "timestamp[us, tz=UTC]"
    df = ledger.history(filter={"prefix": "d/1"}).to_pandas()
    assert len(df) == 1 + 10 + 100 and set(df["kind"]) == {"commit"}
    h = ledger.history()
    h.to_arrow()
    with pytest.raises(fsfeed.InvalidArgument):
        h.to_arrow()  # a history streams once


def test_checkpoint_and_read_only_open(ledger, tmp_path):
    ledger.append(commit("x"))
    ledger.checkpoint(tmp_path / "snap")
    with fsfeed.Ledger.open(tmp_path / "snap") as snap:
        assert snap.head_seq == 1


def test_sealed_segments_are_parquet_that_pyarrow_reads_as_one_table(tmp_path):
    import pyarrow.dataset as ds

    path = tmp_path / "l"
    led = fsfeed.Ledger.open(path, durability="none")
    assert led.segments  # on for a new ledger
    n = 65_536 + 100
    for start in range(0, n, 10_000):
        led.append_batch([commit(f"k{i}", i) for i in range(start, min(n, start + 10_000))])
    assert led.seal() == 65_536
    assert led.sealed_seq == 65_536
    # The directory is one table: the complete segment, nothing half-written.
    table = ds.dataset(path / "segments", format="parquet").to_table()
    assert table.num_rows == 65_536
    assert table.schema == led.history(until=65_536).to_arrow().schema
    assert table.equals(led.history(until=65_536).to_arrow().combine_chunks())
    # history() past the sealed part: the tail from the events.
    assert led.history().to_arrow().num_rows == n
    led.close()
    # Off: stored, and the segments go.
    led = fsfeed.Ledger.open(path, durability="none", segments=False)
    assert not led.segments and led.sealed_seq == 0
    assert not (path / "segments").exists()
    led.close()
    with pytest.raises(TypeError):
        fsfeed.Ledger.open(path, segments="no")  # type: ignore[arg-type]


def test_cursors_are_listed_and_deleted(ledger):
    ledger.append_batch([commit("a/1"), commit("a/2", 1), commit("a/3", 2)])
    ledger.cursor("etl", start="earliest").commit(2)
    ledger.cursor("audit", start="latest").commit()
    got = {c["name"]: c for c in ledger.cursors()}
    assert set(got) == {"etl", "audit"}
    assert got["etl"]["position"] == {"seq": 2, "sub": 0} and got["etl"]["lag"] == 2
    assert got["audit"]["lag"] == 0 and got["audit"]["store"] == "writer"
    assert ledger.delete_cursor("etl") is True
    assert ledger.delete_cursor("etl") is False
    assert [c["name"] for c in ledger.cursors()] == ["audit"]
    with pytest.raises(fsfeed.InvalidArgument):
        ledger.delete_cursor("no/slashes")
    assert [c["name"] for c in ledger.cursors()] == ["audit"]


def test_set_retention_drops_at_once_and_is_read_back(ledger):
    ledger.append_batch([commit(f"k{i}", i) for i in range(10)])
    assert ledger.retention["max_events"] is None
    ledger.set_retention(fsfeed.Retention(max_events=4))
    assert ledger.first_seq == 7 and ledger.retention["max_events"] == 4
    ledger.set_retention({"max_events": 6, "keep_for_cursors": True})
    assert ledger.retention["max_events"] == 6 and ledger.retention["keep_for_cursors"]
    for bad in ({"max_events": -1}, {"nope": 1}, "four"):
        with pytest.raises(fsfeed.FsfeedError) as e:
            ledger.set_retention(bad)
        assert e.value.code in ("invalid_config", "invalid_argument"), bad
    assert ledger.retention["max_events"] == 6 and ledger.first_seq == 7


def test_checksums_agree_across_replicas_and_a_reader_cannot_set_retention(tmp_path):
    ops = [commit(f"k{i}", i) for i in range(20)]
    sums = []
    for name in ("a", "b"):
        with fsfeed.Ledger.open(tmp_path / name, retention={"max_events": 8}) as led:
            for op in ops:
                led.append(op)
            sums.append(led.checksum())
    assert sums[0] == sums[1] and isinstance(sums[0], int)
    with fsfeed.Ledger.open(tmp_path / "b") as led:
        # Retention kept the last 8 of 20: verify reads and decodes them all.
        v = led.verify()
        assert v["events"] == 8 and v["first_seq"] == 13 and v["head_seq"] == 20
        assert v["keys"] > 8
    with pytest.raises(fsfeed.LedgerClosed):
        led.verify()
    with fsfeed.Ledger.open(tmp_path / "a") as led:
        led.append(commit("more", 99))
        assert led.checksum() != sums[0]
        reader = fsfeed.Ledger.open(tmp_path / "a", read_only=True)
        with pytest.raises(fsfeed.ReadOnly):
            reader.set_retention({"max_events": 1})
        reader.close()
