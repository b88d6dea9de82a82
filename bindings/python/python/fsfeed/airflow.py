"""fsfeed in Apache Airflow 3.3: asset watchers, a deferrable sensor, a batch operator.

Installed with the extra ``fsfeed[airflow]``. Three pieces, each reading a
ledger that a storage system writes beside them (they open it read-only):

- :class:`FsfeedEventTrigger`, for an ``AssetWatcher``: a DAG is scheduled
  when matching events arrive on a named cursor. It runs in Airflow 3.3's
  acknowledging shared-stream mode: the triggerer reads the cursor once per
  stream, and the cursor commits a batch only after Airflow has confirmed
  that the asset event made from it is stored.
- :class:`FsfeedSensor`, a deferrable sensor that waits until the cursor has
  a matching event after its committed position. It does not commit.
- :class:`FsfeedBatchOperator` (and the helper :func:`batch`): reads one batch
  from the cursor, hands the records to a callable, and commits only when the
  callable returned.

Every payload (the trigger event's, the sensor's XCom) is one batch::

    {"ledger": PATH, "cursor": NAME, "from": {"seq", "sub"}, "next": {"seq", "sub"},
     "count": N, "gap": null | Batch.gap, "records": [...]}

``from`` is where the batch starts and ``next`` where the following one
starts, so two payloads overlap exactly when their ranges do. Records are in
the cursor's ``format`` (native, s3 or hdfs), with its ``filter`` applied by
the core, as from ``Ledger.cursor``.

Delivery of asset events is at least once, and once in every case but one:
if the triggerer dies after Airflow stored an event but before the
confirmation reached the trigger (one state sync, about a second), the batch
is delivered again from the committed position. The payload's ``from`` and
``next`` let a DAG recognise it.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from . import Batch, Cursor, GapError, InvalidArgument, Ledger, Position

try:
    from airflow.sdk import BaseOperator, BaseSensorOperator
    from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent
    from airflow.triggers.shared_stream import SharedStreamProducer
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fsfeed.airflow needs Apache Airflow 3.3 or later: pip install 'fsfeed[airflow]'"
    ) from e

__all__ = [
    "FsfeedBatchOperator",
    "FsfeedEventTrigger",
    "FsfeedSensor",
    "FsfeedTrigger",
    "batch",
]


def _settings(
    ledger: str | os.PathLike[str],
    cursor: str,
    filter: Mapping[str, Any] | None,
    max_events: int,
    format: str,
) -> dict[str, Any]:
    """The keyword arguments every piece takes, checked for their types.

    What the values mean (a cursor name, a filter, a format) is the core's to
    check; it does so when the ledger is opened, with the same typed errors
    as ``Ledger.cursor``. Here only what Airflow must serialize is checked,
    when the DAG is parsed.
    """
    if not isinstance(ledger, (str, os.PathLike)):
        raise InvalidArgument(f"ledger must be a path, not {type(ledger).__name__}")
    if not isinstance(cursor, str) or not cursor:
        raise InvalidArgument("cursor must be a non-empty cursor name")
    if filter is not None and not isinstance(filter, Mapping):
        raise InvalidArgument(f"filter must be a dict, not {type(filter).__name__}")
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise InvalidArgument(f"max_events must be a positive integer, not {max_events!r}")
    if not isinstance(format, str):
        raise InvalidArgument(f"format must be a string, not {type(format).__name__}")
    return {
        "ledger": os.fspath(ledger),
        "cursor": cursor,
        "filter": dict(filter) if filter is not None else None,
        "max_events": max_events,
        "format": format,
    }


def _open(s: Mapping[str, Any]) -> tuple[Ledger, Cursor]:
    led = Ledger.open(s["ledger"], read_only=True)
    try:
        cur = led.cursor(s["cursor"], filter=s["filter"], format=s["format"])
    except BaseException:
        led.close()
        raise
    return led, cur


def _payload(s: Mapping[str, Any], start: Position, b: Batch) -> dict[str, Any]:
    return {
        "ledger": s["ledger"],
        "cursor": s["cursor"],
        "from": start.to_dict(),
        "next": b.next.to_dict(),
        "count": len(b),
        "gap": b.gap,
        "records": b.records,
    }


async def _batches(
    cur: Cursor, s: Mapping[str, Any]
) -> AsyncIterator[tuple[dict[str, Any], Batch]]:
    """Each batch that holds records or a gap, with its payload, for ever."""
    start = cur.position
    async for b in cur.aiter(max=s["max_events"]):
        if not b.empty:
            yield _payload(s, start, b), b
        start = b.next


class _CursorProducer(SharedStreamProducer):  # type: ignore[misc]
    """The broker side of an event trigger's stream: one read-only cursor.

    ``advance`` is called with batches whose trigger events Airflow has
    stored; it commits the last clean one. A batch some subscriber failed
    (the ack timed out, or its queue overflowed), or one broadcast while none
    listened, is not committed: ``advance`` raises, the triggerer ends the
    stream, and the next one reads again from the committed position.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._s = settings
        self._led: Ledger | None = None
        self._cur: Cursor | None = None

    async def open_stream(self) -> AsyncIterator[tuple[Any, Any]]:
        self._led, self._cur = _open(self._s)
        async for payload, b in _batches(self._cur, self._s):
            yield payload, b.next

    async def advance(self, batch: Sequence[Any]) -> None:
        clean: Position | None = None
        failed = None
        for item in batch:
            o = item.outcome
            if o.failed or o.acked + o.rejected == 0:
                failed = item.broker_payload
                break
            clean = item.broker_payload
        if clean is not None and self._cur is not None:
            self._cur.commit(clean)
        if failed is not None:
            raise RuntimeError(
                f"fsfeed cursor {self._s['cursor']!r}: the batch ending before {failed} was not "
                "stored by every subscriber; it is read again from the committed position"
            )

    async def aclose(self) -> None:
        if self._led is not None:
            self._led.close()


class _OnCursor:
    """What both triggers are built from and serialized as: a named cursor
    of a ledger, its filter, batch size and format."""

    def __init__(
        self,
        ledger: str | os.PathLike[str],
        cursor: str,
        filter: Mapping[str, Any] | None = None,
        max_events: int = 100,
        format: str = "native",
    ) -> None:
        super().__init__()
        self._s = _settings(ledger, cursor, filter, max_events, format)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}", dict(self._s)


class FsfeedEventTrigger(_OnCursor, BaseEventTrigger):  # type: ignore[misc]
    """Fires for every batch of matching events on a named cursor (``AssetWatcher``).

    >>> Asset("landing", watchers=[AssetWatcher(name="landing",   # doctest: +SKIP
    ...     trigger=FsfeedEventTrigger(ledger="/var/lib/fsfeed", cursor="landing",
    ...                                filter={"buckets": ["raw"], "suffix": ".csv"}))])

    Each trigger event carries one batch (see the module's docs) and becomes
    the asset event's ``extra["payload"]``. The cursor must not be read by
    anything else.
    """

    def shared_stream_key(self) -> Hashable:
        # Every setting is in the key: siblings that share a stream share
        # one cursor, so they must read it the same way.
        return ("fsfeed", json.dumps(self._s, sort_keys=True))

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> _CursorProducer:
        return _CursorProducer(_settings(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for payload in shared_stream:
            yield TriggerEvent(payload)

    async def run(self) -> AsyncIterator[Any]:
        """The stream without a shared group (a triggerer that does not share).

        Here Airflow says when it has taken an event, not when it has stored
        it: the batch is committed when the triggerer resumes this generator.
        """
        led, cur = _open(self._s)
        try:
            async for payload, b in _batches(cur, self._s):
                yield TriggerEvent(payload)
                cur.commit(b.next)
        finally:
            led.close()


class FsfeedTrigger(_OnCursor, BaseTrigger):  # type: ignore[misc]
    """Fires once, when the cursor has a matching event after its committed position.

    It reads without committing: the batch it reports is read again by
    whatever consumes the cursor (:class:`FsfeedBatchOperator`).
    """

    async def run(self) -> AsyncIterator[Any]:
        led, cur = _open(self._s)
        try:
            async for payload, _ in _batches(cur, self._s):
                yield TriggerEvent(payload)
                return
        finally:
            led.close()


@contextmanager
def _read_one(s: Mapping[str, Any]) -> Iterator[tuple[Cursor, Position, Batch]]:
    """The cursor, where it stood, and one batch read without waiting."""
    led, cur = _open(s)
    try:
        start = cur.position
        yield cur, start, cur.read(max=s["max_events"], timeout=0)
    finally:
        led.close()


def _peek(s: Mapping[str, Any]) -> dict[str, Any] | None:
    with _read_one(s) as (_, start, b):
        return None if b.empty else _payload(s, start, b)


@contextmanager
def _batch(s: Mapping[str, Any]) -> Iterator[Batch]:
    with _read_one(s) as (cur, _, b):
        yield b
        cur.commit(b.next)


class FsfeedSensor(BaseSensorOperator):  # type: ignore[misc]
    """Waits for matching events after the cursor's committed position.

    ``FsfeedSensor(task_id="wait", ledger=PATH, filter={..}, cursor=NAME)``.
    It looks once; if nothing is there it defers to :class:`FsfeedTrigger`,
    so no worker slot is held while it waits. With ``deferrable=False`` it
    pokes every ``poke_interval`` instead. Its XCom is the first batch that
    was found (see the module's docs); the cursor is not committed.
    """

    def __init__(
        self,
        *,
        ledger: str | os.PathLike[str],
        cursor: str,
        filter: Mapping[str, Any] | None = None,
        max_events: int = 100,
        format: str = "native",
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._s = _settings(ledger, cursor, filter, max_events, format)
        self.deferrable = deferrable
        self._found: dict[str, Any] | None = None

    def poke(self, context: Any) -> bool:
        self._found = _peek(self._s)
        return self._found is not None

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            super().execute(context)
            return self._found
        found = _peek(self._s)
        if found is not None:
            return found
        self.defer(trigger=FsfeedTrigger(**self._s), method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return event


@contextmanager
def batch(
    ledger: str | os.PathLike[str],
    cursor: str,
    *,
    filter: Mapping[str, Any] | None = None,
    max_events: int = 1000,
    format: str = "native",
) -> Iterator[Batch]:
    """One batch from a named cursor, committed when the block ends without error.

    >>> with fsfeed.airflow.batch("/var/lib/fsfeed", "etl") as b:   # doctest: +SKIP
    ...     load(b.records)

    The batch may be empty (nothing new). If the block raises, nothing is
    committed, and the next run reads the same records again.
    """
    with _batch(_settings(ledger, cursor, filter, max_events, format)) as b:
        yield b


class FsfeedBatchOperator(BaseOperator):  # type: ignore[misc]
    """Reads a batch from a cursor, hands it to ``python_callable``, commits on success.

    ``python_callable(records, **op_kwargs)`` gets the batch's records (a list,
    possibly empty) and its return value is the task's XCom. If it raises,
    the cursor is not committed and a retry reads the same records. A batch
    that reports a gap gets ``gap`` in ``op_kwargs`` when the callable takes
    it, as ``Batch.gap`` gives it; otherwise the gap fails the task, so
    that lost events are never skipped unseen.
    """

    def __init__(
        self,
        *,
        ledger: str | os.PathLike[str],
        cursor: str,
        python_callable: Callable[..., Any],
        filter: Mapping[str, Any] | None = None,
        max_events: int = 1000,
        format: str = "native",
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise InvalidArgument("python_callable must be callable")
        self._s = _settings(ledger, cursor, filter, max_events, format)
        self.python_callable = python_callable
        self.op_kwargs = dict(op_kwargs or {})

    def execute(self, context: Any) -> Any:
        params = inspect.signature(self.python_callable).parameters
        takes_gap = "gap" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        with _batch(self._s) as b:
            kw = dict(self.op_kwargs)
            if b.gap is not None:
                if not takes_gap:
                    raise GapError(
                        f"cursor {self._s['cursor']!r} fell behind retention ({b.gap}); "
                        "pass a python_callable that takes `gap` to accept the loss"
                    )
                kw["gap"] = b.gap
            return self.python_callable(b.records, **kw)
