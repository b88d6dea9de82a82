"""An Airflow trigger that fires when new events arrive on an fsfeed cursor.

Deferrable operators hand a trigger to Airflow's triggerer, which runs many
of them on one asyncio loop: a trigger must never block. This one waits with
``cursor.aiter()`` (no thread per waiting trigger) and yields one
``TriggerEvent`` with what arrived; the task it resumes handles the events
and commits ``next`` on the same named cursor, so nothing is lost if the task
fails. Airflow is optional: without it, minimal stand-ins keep the example
runnable (``python airflow_trigger.py --demo``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fsfeed

try:  # pragma: no cover - depends on the environment
    from airflow.triggers.base import BaseTrigger, TriggerEvent
except ImportError:

    class BaseTrigger:  # type: ignore[no-redef]
        """Stand-in for airflow.triggers.base.BaseTrigger."""

    class TriggerEvent:  # type: ignore[no-redef]
        """Stand-in for airflow.triggers.base.TriggerEvent."""

        def __init__(self, payload: Any) -> None:
            self.payload = payload


class FsfeedEventTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires once at least one event matching ``filter`` is on ``cursor``."""

    def __init__(
        self,
        ledger: str,
        cursor: str,
        filter: dict[str, Any] | None = None,
        max_events: int = 1000,
    ) -> None:
        super().__init__()
        self.ledger = ledger
        self.cursor = cursor
        self.filter = filter
        self.max_events = max_events

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.FsfeedEventTrigger",
            {
                "ledger": self.ledger,
                "cursor": self.cursor,
                "filter": self.filter,
                "max_events": self.max_events,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The storage system holds the writer; the trigger reads beside it.
        with fsfeed.Ledger.open(self.ledger, read_only=True) as led:
            cur = led.cursor(self.cursor, filter=self.filter)
            async for batch in cur.aiter(max=self.max_events):
                if batch.records or batch.gap:
                    yield TriggerEvent(
                        {
                            "cursor": self.cursor,
                            "events": len(batch.records),
                            "keys": [r["key"] for r in batch.records],
                            "gap": batch.gap,
                            "next": batch.next.to_dict(),
                        }
                    )
                    return


def demo() -> dict[str, Any]:
    """Run the trigger against a fresh ledger that a writer thread fills."""
    path = str(Path(tempfile.mkdtemp()) / "ledger")
    writer = fsfeed.Ledger.open(path)
    writer.append(fsfeed.Op.commit("vol1", "raw", "2026/01/01/old.csv", size=1))
    first = fsfeed.Ledger.open(path, read_only=True)
    first.cursor("etl", start="latest").commit()  # the DAG has seen everything so far
    first.close()

    def produce() -> None:
        time.sleep(0.2)
        writer.append(fsfeed.Op.commit("vol1", "raw", "2026/01/02/new.csv", size=10))

    threading.Thread(target=produce).start()
    trigger = FsfeedEventTrigger(path, "etl", filter={"suffix": ".csv"})

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload

    payload: dict[str, Any] = asyncio.run(asyncio.wait_for(first_event(), 30))
    writer.close()
    return payload


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", action="store_true", help="run against a temporary ledger")
    if ap.parse_args().demo:
        print(demo())
