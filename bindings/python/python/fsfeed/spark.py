"""fsfeed as a Spark data source (PySpark 4, the Python Data Source API).

>>> import fsfeed.spark                                            # doctest: +SKIP
>>> fsfeed.spark.register(spark)                                   # doctest: +SKIP
>>> df = spark.read.format("fsfeed").option("ledger", "/data/ledger").load()  # doctest: +SKIP

**Batch** (``spark.read.format("fsfeed")``): the ledger's history as a
DataFrame with the columns of ``Ledger.history()`` (``seq``, ``time``,
``kind``, ``volume``, ``bucket``, ``key``, ``to_key``, ``layout``,
``is_dir``, ``size``, ``object_id``, ``txid``, ``principal``, ``mtime``,
``source``; the unsigned columns as ``long``). Options:

- ``ledger`` (required, or the path given to ``load()``): the ledger
  directory, which the driver and every executor open read-only, beside the
  process that appends;
- ``since``, ``until``: a seq or an RFC 3339 time (``until`` inclusive; the
  default range is everything retained up to the head when the query is
  planned);
- ``filter``: a JSON object, the ``filter=`` of ``history()``;
- ``partitionSeqs``: seqs per Spark partition (default: the ledger's segment
  size, so that each task reads one sealed Parquet segment).

Filters in the query are pushed down to the read (``register`` turns on
``spark.sql.python.filterPushdown.enabled``): comparisons of ``seq`` narrow
the range, so fewer partitions are planned; ``bucket`` and ``kind``
equalities and ``IN`` lists become the read's filter; ``key`` prefixes and
suffixes (``startswith``, ``endswith``) narrow the read too, and Spark still
checks them, because the core's prefix also passes a rename whose target
key matches. Other filters are Spark's.

**Streaming** (``spark.readStream.format("fsfeed")``, also with
``trigger(availableNow=True)``): offsets are ``{"seq": N}``, the next seq to
read. Options as above, plus:

- ``cursor``: a named cursor. A new query (no checkpoint yet) starts at its
  committed position; ``commit`` moves it to what Spark has processed, so the
  ledger's retention guard (``keep_for_cursors``) keeps what the query has not
  read. A restarted query resumes from Spark's checkpoint, exactly once.
  Spark tells a source that a micro-batch is done when the next one starts,
  so the cursor trails the checkpoint by up to one micro-batch: never ahead
  of it, and a new query started from the cursor reads that batch again;
- ``startingOffsets``: ``earliest`` (default), ``latest``, a seq or an RFC 3339
  time, where a new query without a committed cursor starts;
- ``maxEventsPerTrigger``: seqs per micro-batch at most.

The ledger's writer must append with ``buffered`` or ``sync`` durability:
readers in other processes (the executors) see what reached its write-ahead
log, and ``durability="none"`` writes none.

Every partition is read by ``Ledger.history()`` in the executor, so the
sealed part of a range comes from the Parquet segments, and rows, filters
and gaps are the core's: a range that retention has passed fails the query
with fsfeed's ``GapError`` text (never a silent skip).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql.datasource import (
    DataSource,
    DataSourceReader,
    DataSourceStreamReader,
    EqualTo,
    Filter,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    InputPartition,
    LessThan,
    LessThanOrEqual,
    StringEndsWith,
    StringStartsWith,
)
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import (
    BooleanType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from . import InvalidArgument, Ledger

__all__ = ["SCHEMA", "FsfeedDataSource", "register"]

#: The DataFrame's columns: those of ``Ledger.history()``, unsigned as long.
SCHEMA = StructType(
    [
        StructField("seq", LongType(), False),
        StructField("time", TimestampType(), False),
        StructField("kind", StringType(), False),
        StructField("volume", StringType(), False),
        StructField("bucket", StringType(), False),
        StructField("key", StringType(), False),
        StructField("to_key", StringType(), True),
        StructField("layout", StringType(), False),
        StructField("is_dir", BooleanType(), False),
        StructField("size", LongType(), True),
        StructField("object_id", LongType(), True),
        StructField("txid", LongType(), True),
        StructField("principal", StringType(), True),
        StructField("mtime", TimestampType(), True),
        StructField("source", StringType(), True),
    ]
)

#: The same as Arrow: what each batch is cast to before Spark gets it.
_ARROW_SCHEMA = to_arrow_schema(SCHEMA, timezone="UTC")


def register(spark: SparkSession) -> None:
    """Register the ``fsfeed`` format with ``spark``.

    It also turns on ``spark.sql.python.filterPushdown.enabled`` for the
    session: the batch reader takes filters on ``seq``, ``bucket``, ``kind``
    and ``key`` (see :class:`FsfeedDataSource`), and PySpark refuses a reader
    that takes filters while that switch is off. Python sources that take no
    filters are not affected by it.
    """
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    spark.dataSource.register(FsfeedDataSource)


@dataclass(frozen=True)
class _Options:
    ledger: str
    since: int | str | None
    until: int | str | None
    filter: dict[str, Any] | None
    partition_seqs: int | None
    cursor: str | None
    starting: int | str
    max_per_trigger: int | None


_KNOWN = {
    "ledger",
    "since",
    "until",
    "filter",
    "partitionseqs",
    "cursor",
    "startingoffsets",
    "maxeventspertrigger",
    "path",
}


def _bound(name: str, value: str | None) -> int | str | None:
    """A seq or an RFC 3339 time; the core checks the time."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    if not value or value in ("earliest", "latest", "committed"):
        raise InvalidArgument(f"option {name} must be a seq or an RFC 3339 time, not {value!r}")
    return value


def _positive(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise InvalidArgument(f"option {name} must be a whole number >= 1, not {value!r}")
    return int(value)


def _options(raw: dict[str, str]) -> _Options:
    opts = {k.lower(): v for k, v in raw.items()}
    unknown = sorted(set(opts) - _KNOWN)
    if unknown:
        raise InvalidArgument(f"unknown fsfeed option(s): {', '.join(unknown)}")
    ledger = opts.get("ledger") or opts.get("path")
    if not ledger:
        raise InvalidArgument('the fsfeed source needs option("ledger", PATH)')
    flt: dict[str, Any] | None = None
    if opts.get("filter"):
        try:
            flt = json.loads(opts["filter"])
        except json.JSONDecodeError as e:
            raise InvalidArgument(f"option filter is not JSON: {e}") from None
        if not isinstance(flt, dict):
            raise InvalidArgument("option filter must be a JSON object")
    starting = opts.get("startingoffsets", "earliest").strip()
    if starting not in ("earliest", "latest"):
        checked = _bound("startingOffsets", starting)
        assert checked is not None
        starting_value: int | str = checked
    else:
        starting_value = starting
    return _Options(
        ledger=ledger,
        since=_bound("since", opts.get("since")),
        until=_bound("until", opts.get("until")),
        filter=flt,
        partition_seqs=_positive("partitionSeqs", opts.get("partitionseqs")),
        cursor=opts.get("cursor"),
        starting=starting_value,
        max_per_trigger=_positive("maxEventsPerTrigger", opts.get("maxeventspertrigger")),
    )


def _open(path: str) -> Ledger:
    return Ledger.open(path, read_only=True, create=False)


class _Part(InputPartition):
    """Seqs ``first..=last`` of the ledger at ``ledger``, with a filter."""

    def __init__(self, ledger: str, first: int, last: int, flt: dict[str, Any] | None) -> None:
        super().__init__((first, last))
        self.ledger, self.first, self.last, self.filter = ledger, first, last, flt


def _split(
    o: _Options, led: Ledger, first: int, last: int, flt: dict[str, Any] | None = None
) -> list[_Part]:
    """``first..=last`` in parts of ``partitionSeqs`` seqs, cut where the
    segments are (runs ``k*N+1 ..= (k+1)*N``) so that a part is one file."""
    n = o.partition_seqs or int(led.stats()["segments"]["rows"])
    parts: list[_Part] = []
    a = first
    while a <= last:
        b = min(((a - 1) // n + 1) * n, last)
        parts.append(_Part(o.ledger, a, b, o.filter if flt is None else flt))
        a = b + 1
    return parts


def _read(part: _Part) -> Iterator[pa.RecordBatch]:
    with _open(part.ledger) as led:
        h = led.history(since=part.first, until=part.last, filter=part.filter)
        for batch in pa.RecordBatchReader.from_stream(h):
            yield batch.cast(_ARROW_SCHEMA)


class FsfeedDataSource(DataSource):
    """The ``fsfeed`` format (see the module)."""

    @classmethod
    def name(cls) -> str:
        return "fsfeed"

    def schema(self) -> StructType:
        return SCHEMA

    def reader(self, schema: StructType) -> _BatchReader:
        return _BatchReader(_options(dict(self.options)))

    def streamReader(self, schema: StructType) -> _StreamReader:
        return _StreamReader(_options(dict(self.options)))


def _check_filter(led: Ledger, flt: dict[str, Any] | None) -> None:
    """A bad filter fails on the driver, before any task runs."""
    if flt is not None:
        led.history(since=led.head_seq + 1, filter=flt)


def _values(f: Filter) -> list[Any] | None:
    """The values an ``EqualTo`` or ``In`` filter allows."""
    if isinstance(f, EqualTo):
        return [f.value]
    if isinstance(f, In):
        return list(f.value)
    return None


class _Pushed:
    """What the batch reader took of Spark's filters: seq bounds, and the
    history() filter keys they narrow. Spark's filters are ANDed."""

    def __init__(self, flt: dict[str, Any] | None) -> None:
        self.lo: int = 1  # seq bounds, inclusive
        self.hi: int | None = None
        self.filter = dict(flt or {})
        self.nothing = False  # the filters contradict: no row passes

    def take(self, f: Filter, known_kind: Callable[[str], bool]) -> bool | None:
        """True: applied exactly (Spark need not check it again); False:
        narrowed the read but Spark must still check it; None: not used."""
        attr: tuple[str, ...] = getattr(f, "attribute", ())
        col = attr[0] if len(attr) == 1 else None
        value: Any = getattr(f, "value", None)
        if col == "seq" and isinstance(value, int) and not isinstance(value, bool):
            v = value
            if isinstance(f, GreaterThan):
                self.lo = max(self.lo, v + 1)
            elif isinstance(f, GreaterThanOrEqual):
                self.lo = max(self.lo, v)
            elif isinstance(f, LessThan):
                self.hi = v - 1 if self.hi is None else min(self.hi, v - 1)
            elif isinstance(f, LessThanOrEqual):
                self.hi = v if self.hi is None else min(self.hi, v)
            elif isinstance(f, EqualTo):
                self.lo = max(self.lo, v)
                self.hi = v if self.hi is None else min(self.hi, v)
            else:
                return None
            return True
        if col in ("bucket", "kind"):
            vals = _values(f)
            if vals is None or not all(isinstance(v, str) for v in vals):
                return None
            key = "buckets" if col == "bucket" else "kinds"
            have = self.filter.get(key)
            # A kind the core does not know is in no row.
            kept = [
                v
                for v in vals
                if (have is None or v in have) and (col == "bucket" or known_kind(v))
            ]
            if kept:
                self.filter[key] = kept
            else:
                self.nothing = True
            return True
        if col == "key" and isinstance(f, (StringStartsWith, StringEndsWith)):
            # The core's prefix and suffix also match a rename's target
            # key, so the read is a superset: Spark checks the key again.
            key = "prefix" if isinstance(f, StringStartsWith) else "suffix"
            if key in self.filter or not isinstance(value, str):
                return None
            self.filter[key] = value
            return False
        return None


class _BatchReader(DataSourceReader):
    def __init__(self, options: _Options) -> None:
        self.o = options
        self.pushed = _Pushed(options.filter)

    def pushFilters(self, filters: list[Filter]) -> Iterator[Filter]:
        """Filters on ``seq`` narrow the range, on ``bucket`` and ``kind``
        (equality, IN) become the read's filter; ``key`` prefixes and
        suffixes narrow the read too, and Spark checks them again."""
        led: Ledger | None = None

        def known_kind(kind: str) -> bool:
            # The core knows its kinds: ask it, opening the ledger only
            # when a query filters on kind.
            nonlocal led
            if led is None:
                led = _open(self.o.ledger)
            try:
                _check_filter(led, {"kinds": [kind]})
            except InvalidArgument:
                return False
            return True

        try:
            unchecked = [f for f in filters if self.pushed.take(f, known_kind) is not True]
        finally:
            if led is not None:
                led.close()
        yield from unchecked

    def partitions(self) -> Sequence[InputPartition]:
        o, p = self.o, self.pushed
        parts: list[_Part] = []
        with _open(o.ledger) as led:
            _check_filter(led, o.filter)
            r = led.history_range(since=o.since, until=o.until)
            if r is not None and not p.nothing:
                first, last = max(r[0], p.lo), r[1] if p.hi is None else min(r[1], p.hi)
                if first <= last:
                    parts = _split(o, led, first, last, p.filter or None)
        return parts

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        # An empty range: Spark reads one stand-in partition of its own.
        if isinstance(partition, _Part):
            yield from _read(partition)


class _StreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Holds only options and offsets: Spark pickles it to the executors, so
    each call opens the ledger (read-only) for itself."""

    def __init__(self, options: _Options) -> None:
        self.o = options
        # With trigger(availableNow=True): the head + 1 when the query began.
        self.target: int | None = None
        if options.until is not None or options.since is not None:
            raise InvalidArgument(
                "a stream takes startingOffsets (and a cursor), not since or until"
            )
        with _open(options.ledger) as led:
            _check_filter(led, options.filter)
            if options.cursor is not None:
                led.cursor(options.cursor, start="committed")  # checks the name

    def initialOffset(self) -> dict[str, int]:
        with _open(self.o.ledger) as led:
            start = self._start(led)
        return {"seq": start}

    def _start(self, led: Ledger) -> int:
        """Where a query without a checkpoint starts."""
        for c in led.stats()["cursors"] if self.o.cursor is not None else []:
            if c["name"] == self.o.cursor:
                # Inside an event another reader expanded: the next whole one.
                p = c["position"]
                return int(p["seq"]) + (1 if p["sub"] else 0)
        if self.o.starting == "latest":
            return led.head_seq + 1
        since = None if self.o.starting == "earliest" else self.o.starting
        r = led.history_range(since=since)
        return r[0] if r else led.head_seq + 1

    def getDefaultReadLimit(self) -> ReadLimit:
        if self.o.max_per_trigger is None:
            return ReadAllAvailable()
        return ReadMaxRows(self.o.max_per_trigger)

    def prepareForTriggerAvailableNow(self) -> None:
        with _open(self.o.ledger) as led:
            self.target = led.head_seq + 1

    def latestOffset(self, start: dict[str, int], limit: ReadLimit) -> dict[str, int]:
        if self.target is not None:
            end = self.target
        else:
            with _open(self.o.ledger) as led:
                end = led.head_seq + 1
        if isinstance(limit, ReadMaxRows):
            end = min(end, int(start["seq"]) + limit.max_rows)
        return {"seq": max(end, int(start["seq"]))}

    def partitions(self, start: dict[str, int], end: dict[str, int]) -> Sequence[InputPartition]:
        first, last = int(start["seq"]), int(end["seq"]) - 1
        if first > last:
            return []
        with _open(self.o.ledger) as led:
            parts = _split(self.o, led, first, last)
        return parts

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if isinstance(partition, _Part):
            yield from _read(partition)

    def commit(self, end: dict[str, int]) -> None:
        if self.o.cursor is not None:
            with _open(self.o.ledger) as led:
                led.cursor(self.o.cursor, start="committed").commit(int(end["seq"]))
