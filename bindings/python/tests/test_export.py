"""`Ledger.export_parquet`: history as Parquet files that pyarrow, polars and
DuckDB read as one table, incremental with a cursor, and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsfeed
import pytest

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs

SEGMENT = 65_536


def ops(start: int, n: int) -> list[fsfeed.Op]:
    """Commits over three buckets, every seventh a delete of an earlier key
    and every eleventh a rename, so that nullable columns hold both."""
    out: list[fsfeed.Op] = []
    for i in range(start, start + n):
        bucket = ("photos", "logs", "ingest")[i % 3]
        t = T0 + i
        if i % 7 == 6 and i > 7:
            out.append(fsfeed.Op.delete("vol1", bucket, f"k{i - 3}").at(t))
        elif i % 11 == 10 and i > 11:
            out.append(fsfeed.Op.rename("vol1", bucket, f"k{i - 9}", f"r{i}").at(t))
        else:
            out.append(fsfeed.Op.commit("vol1", bucket, f"k{i}", size=i % 1000, etag="e").at(t))
    return out


def fill(led: fsfeed.Ledger, n: int) -> None:
    start = led.head_seq
    for s in range(start, start + n, 20_000):
        led.append_batch(ops(s, min(20_000, start + n - s)))


def summary_sql(source: str) -> str:
    return (
        "select count(*), sum(seq), sum(size), count(to_key), sum(length(key)),"
        " count(distinct bucket), min(time), max(time)"
        f" from read_parquet('{source}')"
    )


def summaries(path: Path) -> list[tuple[Any, ...]]:
    """The same figures from pyarrow, polars and DuckDB reading `path` (a
    directory of Parquet files) as one table."""
    import duckdb
    import polars as pl
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    t = ds.dataset(path, format="parquet").to_table()
    by_arrow = (
        t.num_rows,
        pc.sum(t["seq"]).as_py(),
        pc.sum(t["size"]).as_py(),
        pc.count(t["to_key"]).as_py(),
        pc.sum(pc.utf8_length(t["key"])).as_py(),
        pc.count_distinct(t["bucket"]).as_py(),
        pc.min(t["time"]).as_py(),
        pc.max(t["time"]).as_py(),
    )
    df = pl.read_parquet(path / "*.parquet")
    by_polars = (
        df.height,
        df["seq"].sum(),
        df["size"].sum(),
        df["to_key"].count(),
        df["key"].str.len_chars().sum(),
        df["bucket"].n_unique(),
        df["time"].min(),
        df["time"].max(),
    )
    (row,) = duckdb.sql(summary_sql(str(path / "*.parquet"))).fetchall()
    return [by_arrow, by_polars, tuple(row)]


def test_export_and_segments_read_alike_in_pyarrow_polars_and_duckdb(tmp_path: Path) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="none")
    fill(led, 2 * SEGMENT + 5_000)
    assert led.seal() == 2 * SEGMENT
    report = led.export_parquet(tmp_path / "out")
    assert report["files"] == [
        "00000000000000000001-00000000000000065536.parquet",
        "00000000000000065537-00000000000000131072.parquet",
        "00000000000000131073-00000000000000136072.parquet",
    ]
    assert report["copied"] == 2
    assert report["rows"] == 2 * SEGMENT + 5_000
    assert (report["first_seq"], report["last_seq"]) == (1, 2 * SEGMENT + 5_000)
    assert "committed" not in report and "gap" not in report
    full = led.history().to_arrow()
    sealed = led.history(until=2 * SEGMENT).to_arrow()
    # Every engine agrees with the others and with history().
    out = summaries(tmp_path / "out")
    assert out[0] == out[1] == out[2]
    assert out[0][0] == full.num_rows and out[0][1] == sum(full["seq"].to_pylist())
    assert out[0][2] == sum(s for s in full["size"].to_pylist() if s is not None)
    segs = summaries(tmp_path / "l" / "segments")
    assert segs[0] == segs[1] == segs[2]
    assert segs[0][0] == sealed.num_rows and segs[0][1] == sum(sealed["seq"].to_pylist())
    # The exported table is history() itself, row for row.
    import pyarrow.dataset as ds

    table = ds.dataset(tmp_path / "out", format="parquet").to_table()
    assert table.schema == full.schema
    assert table.sort_by("seq").equals(full.combine_chunks())
    led.close()


def test_a_cursor_export_writes_only_what_is_new(tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    led = fsfeed.Ledger.open(tmp_path / "l", durability="none")
    fill(led, 1_000)
    out = tmp_path / "lake"
    r1 = led.export_parquet(out, cursor="lake")
    assert r1["files"] == ["00000000000000000001-00000000000000001000.parquet"]
    assert r1["committed"] == {"seq": 1001, "sub": 0}
    # Nothing new: nothing written.
    r2 = led.export_parquet(out, cursor="lake")
    assert r2["files"] == [] and "first_seq" not in r2
    fill(led, 500)
    r3 = led.export_parquet(out, cursor="lake")
    assert r3["files"] == ["00000000000000001001-00000000000000001500.parquet"]
    assert (r3["first_seq"], r3["last_seq"], r3["rows"]) == (1001, 1500, 500)
    assert r3["committed"] == {"seq": 1501, "sub": 0}
    # `since` only places a cursor that has no position yet.
    r4 = led.export_parquet(tmp_path / "other", cursor="other", since=1_400)
    assert r4["first_seq"] == 1_400
    assert led.export_parquet(out, cursor="lake", since=1)["files"] == []
    table = ds.dataset(out, format="parquet").to_table()
    assert table.sort_by("seq").equals(led.history().to_arrow().combine_chunks())
    # A killed run's file (stored, never committed) goes before the rerun
    # writes its range again: no row twice.
    fill(led, 100)
    stray = out / "00000000000000001501-00000000000000001550.parquet"
    stray.write_bytes((out / r3["files"][0]).read_bytes())
    (out / ".00000000000000001501-00000000000000001600.parquet.tmp").write_bytes(b"half")
    r5 = led.export_parquet(out, cursor="lake")
    assert r5["removed"] == [stray.name]
    assert r5["files"] == ["00000000000000001501-00000000000000001600.parquet"]
    assert sorted(p.name for p in out.iterdir()) == sorted(r1["files"] + r3["files"] + r5["files"])
    table = ds.dataset(out, format="parquet").to_table()
    assert table.num_rows == led.head_seq
    led.close()


def test_overlapping_exports_are_refused_and_gaps_are_errors_unless_skipped(tmp_path: Path) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="none", retention={"max_events": 400})
    fill(led, 300)
    out = tmp_path / "out"
    assert led.export_parquet(out, since=1, until=100)["files"] == [
        "00000000000000000001-00000000000000000100.parquet"
    ]
    # The same range again replaces the same file.
    assert led.export_parquet(out, since=1, until=100)["rows"] == 100
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(fsfeed.InvalidArgument, match="rows twice"):
        led.export_parquet(out, since=50)
    assert sorted(p.name for p in out.iterdir()) == before
    # Retention passes seq 1: a gap, typed; the cursor stays unplaced.
    fill(led, 300)
    assert led.first_seq == 201
    with pytest.raises(fsfeed.GapError):
        led.export_parquet(tmp_path / "g", cursor="g", since=1)
    assert all(c["name"] != "g" for c in led.stats()["cursors"])
    r = led.export_parquet(tmp_path / "g", cursor="g", since=1, skip_gap=True)
    assert r["gap"] == {"expected": 1, "actual": 201}
    assert (r["first_seq"], r["last_seq"]) == (201, 600)
    led.close()


def test_bad_export_arguments_are_typed_errors(tmp_path: Path) -> None:
    led = fsfeed.Ledger.open(tmp_path / "l", durability="none")
    fill(led, 10)
    with pytest.raises(fsfeed.InvalidArgument):
        led.export_parquet(123)  # type: ignore[arg-type]
    with pytest.raises(fsfeed.InvalidConfig, match="directory or s3://"):
        led.export_parquet("gs://bucket/x")
    with pytest.raises(fsfeed.InvalidConfig, match="--store"):
        led.export_parquet("s3://bucket/x")
    with pytest.raises(fsfeed.InvalidConfig, match="s3:// destinations only"):
        led.export_parquet(tmp_path / "o", store=tmp_path / "store.toml")
    with pytest.raises(fsfeed.InvalidArgument, match="since"):
        led.export_parquet(tmp_path / "o", since="latest")
    with pytest.raises(fsfeed.InvalidArgument, match="until"):
        led.export_parquet(tmp_path / "o", until="committed")
    with pytest.raises(fsfeed.InvalidArgument):
        led.export_parquet(tmp_path / "o", cursor="no spaces allowed")
    with pytest.raises(TypeError):
        led.export_parquet(tmp_path / "o", skip_gap="yes")  # type: ignore[arg-type]
    # Nothing was written by any of them.
    assert not (tmp_path / "o").exists()
    led.close()
