"""fsfeed: a durable, replayable change feed for filesystems and object stores.

>>> import fsfeed
>>> led = fsfeed.Ledger.open("ledger-dir")                       # doctest: +SKIP
>>> led.append(fsfeed.Op.commit("vol1", "b1", "a/x.bin", size=5))  # doctest: +SKIP
>>> cur = led.cursor("backup", format="s3", filter={"prefix": "a/"})  # doctest: +SKIP
>>> for batch in cur:                                              # doctest: +SKIP
...     handle(batch.records); cur.commit(batch.next)

Everything here is the Rust core (the ``fsfeed`` crate) through ``fsfeed._native``:
formats, filters, gaps, rename expansion and errors behave as in Rust and Node.
Errors are ``FsfeedError`` subclasses, each with the core's stable ``code``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ._native import (
    ERROR_CODES,
    AlreadyExists,
    Batch,
    CallbackFailed,
    ChangeLog,
    CorruptError,
    Cursor,
    DirectoryNotEmpty,
    DiskFull,
    FsfeedError,
    GapError,
    History,
    InvalidArgument,
    InvalidConfig,
    InvalidEventId,
    InvalidJson,
    InvalidKey,
    InvalidOp,
    IoError,
    LeaseLost,
    Ledger,
    LedgerClosed,
    LedgerLocked,
    LedgerNotFound,
    Op,
    PathGone,
    Position,
    PositionOutOfRange,
    Publisher,
    PublisherFailed,
    ReadOnly,
    RenameIntoSubtree,
    RenameToSelf,
    StorageError,
    StoreFailed,
    Subscription,
    TxidNotIncreasing,
    UnknownKind,
    UnknownParent,
    UnsupportedFormat,
    Watch,
    watch,
)


@dataclass(frozen=True)
class Retention:
    """Retention settings for ``Ledger.open(retention=...)``.

    ``max_age`` is in seconds of op time. With ``keep_for_cursors`` the limits
    wait for the slowest named cursor, up to the ``hard_*`` limits. A plain
    dict with the same keys works too.
    """

    max_events: int | None = None
    max_age: float | None = None
    max_bytes: int | None = None
    keep_for_cursors: bool = False
    hard_max_events: int | None = None
    hard_max_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The settings that are set, as the native layer takes them."""
        return {k: v for k, v in asdict(self).items() if v is not None}


__all__ = [
    "ERROR_CODES",
    "AlreadyExists",
    "Batch",
    "CallbackFailed",
    "ChangeLog",
    "CorruptError",
    "Cursor",
    "DirectoryNotEmpty",
    "DiskFull",
    "FsfeedError",
    "GapError",
    "History",
    "InvalidArgument",
    "InvalidConfig",
    "InvalidEventId",
    "InvalidJson",
    "InvalidKey",
    "InvalidOp",
    "IoError",
    "LeaseLost",
    "Ledger",
    "LedgerClosed",
    "LedgerLocked",
    "LedgerNotFound",
    "Op",
    "PathGone",
    "Position",
    "PositionOutOfRange",
    "Publisher",
    "PublisherFailed",
    "ReadOnly",
    "RenameIntoSubtree",
    "RenameToSelf",
    "Retention",
    "StorageError",
    "StoreFailed",
    "Subscription",
    "TxidNotIncreasing",
    "UnknownKind",
    "UnknownParent",
    "UnsupportedFormat",
    "Watch",
    "watch",
]
