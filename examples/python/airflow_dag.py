"""An Airflow 3.3 DAG that runs when new CSV files land (``fsfeed[airflow]``).

Copy it into Airflow's ``dags/`` folder. ``FSFEED_LEDGER`` is the ledger the
storage system writes (Airflow's triggerer opens it read-only, so it must be
on a disk the triggerer can read).

- The asset ``fsfeed-landing`` is watched by ``FsfeedEventTrigger`` on the
  cursor ``landing``: every batch of up to 100 matching events becomes one
  asset event, and the cursor commits a batch only after Airflow stored it.
- ``fsfeed_landing`` is scheduled on that asset. Its task gets the asset
  events that triggered the run, each with its batch of records, and here
  appends their keys to ``FSFEED_EXAMPLE_OUT``, one JSON list per event.

The tests (tests/airflow) run this file under a real scheduler and triggerer.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task
from fsfeed.airflow import FsfeedEventTrigger

LEDGER = os.environ.get("FSFEED_LEDGER", "/var/lib/fsfeed/ledger")
OUT = os.environ.get("FSFEED_EXAMPLE_OUT", "/tmp/fsfeed-landing.jsonl")

landing = Asset(
    "fsfeed-landing",
    watchers=[
        AssetWatcher(
            name="landing",
            trigger=FsfeedEventTrigger(
                ledger=LEDGER,
                cursor="landing",
                filter={"buckets": ["raw"], "suffix": ".csv"},
                max_events=100,
            ),
        )
    ],
)

with DAG(
    "fsfeed_landing",
    schedule=[landing],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):

    @task
    def record(**context: Any) -> int:
        n = 0
        with open(OUT, "a") as f:
            for event in context["triggering_asset_events"][landing]:
                batch = event.extra["payload"]
                f.write(json.dumps([r["key"] for r in batch["records"]]) + "\n")
                n += batch["count"]
        return n

    record()
