"""asyncio reads: ``async for batch in cursor.aiter()``.

A read that finds nothing registers a wake-up with the ledger's notifier (one
thread per ledger, shared by every waiting reader) and awaits a future that the
notifier resolves through ``loop.call_soon_threadsafe``. No thread waits per
reader, and the event loop never blocks: the reads themselves use
``timeout=0``.
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
        batch = cursor.read(max=max, timeout=0)
        if not batch.empty:
            yield batch
            continue
        fut: asyncio.Future[bool] = loop.create_future()

        def wake(reached: bool, fut: asyncio.Future[bool] = fut) -> None:
            try:
                loop.call_soon_threadsafe(_resolve, fut, reached)
            except RuntimeError:
                pass  # The loop closed while this reader waited.

        cursor._notify(wake)
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
