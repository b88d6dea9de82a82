"""asyncio reads: ``async for batch in cursor.aiter()``.

Each step is the core's one wait, ``read_or_notify``: the batch there is now,
or a wake-up registered with the ledger's notifier (one thread per ledger,
shared by every waiting reader) that resolves a future through
``loop.call_soon_threadsafe``. No thread waits per reader, and the event loop
never blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._native import Batch, Cursor


def _resolve(fut: asyncio.Future[bool], reached: bool) -> None:
    if not fut.done():
        fut.set_result(reached)


async def aiter(cursor: Cursor, max: int) -> AsyncIterator[Batch]:
    loop = asyncio.get_running_loop()
    while True:
        fut: asyncio.Future[bool] = loop.create_future()

        def wake(reached: bool, fut: asyncio.Future[bool] = fut) -> None:
            try:
                loop.call_soon_threadsafe(_resolve, fut, reached)
            except RuntimeError:
                pass  # The loop closed while this reader waited.

        batch = cursor._read_or_notify(max, wake)
        if batch is not None:
            yield batch
            continue
        if not await fut:
            # The ledger closed or failed: the read says why.
            batch = cursor.read(max=max, timeout=0)
            if not batch.empty:
                yield batch
                continue
            raise _closed()


def _closed() -> Exception:
    from . import LedgerClosed

    return LedgerClosed("the ledger closed while a reader waited")
