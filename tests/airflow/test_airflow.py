"""fsfeed.airflow against Apache Airflow 3.3: the sensor and the operator in
`dag.test()`, a DAG scheduled by the asset watcher across a triggerer
restart, the acknowledging stream's commits, and wrong input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsfeed
from conftest import PY, Airflow, wait_for


def csv(i: int) -> fsfeed.Op:
    return fsfeed.Op.commit("vol1", "raw", f"in/{i:04}.csv", size=i + 1)


def txt(i: int) -> fsfeed.Op:
    return fsfeed.Op.commit("vol1", "raw", f"in/{i:04}.txt", size=i + 1)


def new_ledger(path: Path, cursor: str) -> None:
    """A ledger with history the cursor has already seen."""
    with fsfeed.Ledger.open(path) as led:
        led.append_batch([csv(9000), txt(9000)])
        led.cursor(cursor, start="latest").commit()


def committed(path: Path, cursor: str) -> int:
    with fsfeed.Ledger.open(path, read_only=True) as led:
        return led.cursor(cursor).position.seq


DAG_TEST = """
import json, os, threading
import pendulum
import fsfeed
import fsfeed.airflow
from airflow.sdk import DAG
from fsfeed.airflow import FsfeedBatchOperator, FsfeedSensor

LEDGER = os.environ["FSFEED_TEST_LEDGER"]
OUT = os.environ["FSFEED_TEST_OUT"]
FAIL = os.environ.get("FSFEED_TEST_FAIL") == "1"


def load(records):
    with open(OUT, "a") as f:
        f.write(json.dumps([r["key"] for r in records]) + "\\n")
    if FAIL:
        raise RuntimeError("the load failed")
    return len(records)


with DAG("fsfeed_dag_test", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    wait = FsfeedSensor(task_id="wait", ledger=LEDGER, cursor="etl", filter={"suffix": ".csv"})
    FsfeedBatchOperator(
        task_id="load", ledger=LEDGER, cursor="etl", filter={"suffix": ".csv"},
        python_callable=load, retries=0,
    ).set_upstream(wait)


# The sensor's trigger runs in this process under dag.test(): note that it
# started, which the sensor does only when it found nothing and deferred.
deferred = threading.Event()
_run = fsfeed.airflow.FsfeedTrigger.run


async def run(self):
    deferred.set()
    async for event in _run(self):
        yield event


fsfeed.airflow.FsfeedTrigger.run = run


def produce():
    deferred.wait()
    with fsfeed.Ledger.open(LEDGER) as w:
        w.append_batch([
            fsfeed.Op.commit("vol1", "raw", "in/a.txt", size=1),
            fsfeed.Op.commit("vol1", "raw", "in/b.csv", size=2),
            fsfeed.Op.commit("vol1", "raw", "in/c.csv", size=3),
        ])


if __name__ == "__main__":
    if os.environ.get("FSFEED_TEST_PRODUCE") == "1":
        threading.Thread(target=produce, daemon=True).start()
    dr = dag.test()
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    print("RESULT " + json.dumps(
        {"state": str(dr.state), "tasks": states, "deferred": deferred.is_set()}))
"""


def dag_test(af: Airflow, **env: str) -> dict[str, object]:
    r = subprocess.run(
        [PY, str(af.dags / "dt.py")],
        check=False,
        env={**af.env, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert lines, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return json.loads(lines[-1][len("RESULT ") :])  # type: ignore[no-any-return]


def test_sensor_defers_until_events_and_the_operator_commits_only_on_success(airflow, tmp_path):
    ledger, out = tmp_path / "ledger", tmp_path / "out.jsonl"
    new_ledger(ledger, "etl")
    start = committed(ledger, "etl")
    (airflow.dags / "dt.py").write_text(DAG_TEST)
    env = {"FSFEED_TEST_LEDGER": str(ledger), "FSFEED_TEST_OUT": str(out)}

    # The load fails: the sensor saw the events, nothing is committed.
    got = dag_test(airflow, FSFEED_TEST_PRODUCE="1", FSFEED_TEST_FAIL="1", **env)
    assert got["tasks"] == {"wait": "success", "load": "failed"}, got
    assert got["deferred"], "the sensor found nothing and deferred"
    assert committed(ledger, "etl") == start
    log = airflow.query("select value from xcom where task_id = 'wait' and key = 'return_value'")
    (payload,) = (json.loads(v) for (v,) in log)
    assert payload["cursor"] == "etl" and payload["from"] == {"seq": start, "sub": 0}
    assert [r["key"] for r in payload["records"]] == ["in/b.csv", "in/c.csv"]
    assert payload["count"] == 2 and payload["gap"] is None
    assert payload["next"] == {"seq": start + 3, "sub": 0}

    # Run again: the events are there, so the sensor does not defer; the
    # load gets the same records and commits.
    got = dag_test(airflow, **env)
    assert got["tasks"] == {"wait": "success", "load": "success"}, got
    assert got["state"] == "success" and not got["deferred"]
    loads = [json.loads(x) for x in out.read_text().splitlines()]
    assert loads == [["in/b.csv", "in/c.csv"], ["in/b.csv", "in/c.csv"]]
    assert committed(ledger, "etl") == start + 3


EXAMPLE_DAG = Path(__file__).parents[2] / "examples" / "python" / "airflow_dag.py"


def asset_events(af: Airflow) -> list[dict[str, object]]:
    rows = af.query("select extra from asset_event order by id")
    return [json.loads(x)["payload"] for (x,) in rows]


def test_the_asset_watcher_schedules_a_dag_and_a_triggerer_restart_loses_and_repeats_nothing(
    airflow, tmp_path
):
    ledger, out = tmp_path / "ledger", tmp_path / "out.jsonl"
    new_ledger(ledger, "landing")
    first = committed(ledger, "landing")
    # The example DAG, as a user would copy it into dags/.
    (airflow.dags / "airflow_dag.py").write_text(EXAMPLE_DAG.read_text())
    airflow.env.update(FSFEED_LEDGER=str(ledger), FSFEED_EXAMPLE_OUT=str(out))
    for c in ("dag-processor", "scheduler", "triggerer"):
        airflow.start(c)
    airflow.start("api-server", "--host", "127.0.0.1", "--port", str(airflow.api_port))
    wait_for(
        "the asset watcher's trigger",
        lambda: airflow.query("select id from trigger where classpath like 'fsfeed.%'"),
    )

    w = fsfeed.Ledger.open(ledger)
    seqs: list[int] = []
    try:
        # Another process (this one) appends; csv files match the filter.
        for i in range(6):
            seqs += w.append_batch([csv(i), txt(i)])
        head = w.head_seq
        wait_for("the cursor to commit", lambda: committed(ledger, "landing") == head + 1)
        wait_for(
            "a DAG run that succeeded",
            lambda: airflow.query("select 1 from dag_run where state = 'success'"),
        )

        # Restart the triggerer; append while it is down, and after.
        airflow.stop("triggerer")
        for i in range(6, 9):
            seqs += w.append_batch([csv(i), txt(i)])
        airflow.start("triggerer")
        for i in range(9, 12):
            seqs += w.append_batch([csv(i), txt(i)])
        head = w.head_seq
        wait_for("the cursor to commit", lambda: committed(ledger, "landing") == head + 1)
    finally:
        w.close()

    events = asset_events(airflow)
    keys = [r["key"] for e in events for r in e["records"]]  # type: ignore[attr-defined]
    assert keys == [f"in/{i:04}.csv" for i in range(12)], "each event once, in order"
    # The batches tile the cursor's range: each starts where the last ended.
    assert events[0]["from"] == {"seq": first, "sub": 0}
    for a, b in zip(events, events[1:]):
        assert b["from"] == a["next"]
    assert events[-1]["next"] == {"seq": head + 1, "sub": 0}
    assert all(e["count"] == len(e["records"]) > 0 for e in events)  # type: ignore[arg-type]
    # The DAG ran on them: its task saw records of the asset's events.
    wait_for("the DAG's task to record", out.exists)
    seen = [k for line in out.read_text().splitlines() for k in json.loads(line)]
    assert seen and set(seen) <= set(keys)
    assert "Trigger fired event" in airflow.log("triggerer")


PRODUCER = """
import asyncio, json, os
import fsfeed
from airflow.triggers.shared_stream import AdvanceItem, AdvanceOutcome
from fsfeed.airflow import FsfeedEventTrigger

LEDGER = os.environ["FSFEED_TEST_LEDGER"]
trig = FsfeedEventTrigger(ledger=LEDGER, cursor="c", max_events=2)
classpath, kwargs = trig.serialize()
assert classpath == "fsfeed.airflow.FsfeedEventTrigger", classpath

def committed():
    with fsfeed.Ledger.open(LEDGER, read_only=True) as led:
        return led.cursor("c").position.seq

async def main():
    prod = FsfeedEventTrigger.create_shared_stream_producer(kwargs)
    stream = prod.open_stream()
    got = [await anext(stream) for _ in range(3)]
    ok, bad = AdvanceOutcome(acked=1, failed=0, rejected=0), AdvanceOutcome(acked=0, failed=1, rejected=0)
    nobody = AdvanceOutcome(acked=0, failed=0, rejected=0)
    out = {"payloads": [p for p, _ in got]}
    # The first batch, stored: committed.
    await prod.advance([AdvanceItem(got[0][1], ok)])
    out["after_ok"] = committed()
    # The second stored, the third failed: the second commits, then it raises.
    try:
        await prod.advance([AdvanceItem(got[1][1], ok), AdvanceItem(got[2][1], bad)])
        out["raised"] = None
    except RuntimeError as e:
        out["raised"] = str(e)
    out["after_failed"] = committed()
    # A batch nobody listened to is not committed either.
    try:
        await prod.advance([AdvanceItem(got[2][1], nobody)])
    except RuntimeError:
        out["nobody_raised"] = True
    out["after_nobody"] = committed()
    await stream.aclose()
    await prod.aclose()
    print("RESULT " + json.dumps(out))

asyncio.run(main())
"""


def test_the_stream_commits_only_batches_every_subscriber_stored(airflow, tmp_path):
    ledger = tmp_path / "ledger"
    with fsfeed.Ledger.open(ledger) as led:
        led.cursor("c", start="latest").commit()
        led.append_batch([csv(i) for i in range(6)])
    out = airflow.run_py(PRODUCER, FSFEED_TEST_LEDGER=str(ledger))
    got = json.loads(out.split("RESULT ", 1)[1])
    ranges = [(p["from"]["seq"], p["next"]["seq"], p["count"]) for p in got["payloads"]]
    assert ranges == [(1, 3, 2), (3, 5, 2), (5, 7, 2)]
    assert got["after_ok"] == 3
    assert got["raised"] and "read again from the committed position" in got["raised"]
    assert got["after_failed"] == 5
    assert got["nobody_raised"] and got["after_nobody"] == 5


WRONG = """
import asyncio, json, os
import fsfeed
from fsfeed.airflow import (FsfeedBatchOperator, FsfeedEventTrigger, FsfeedSensor,
                            FsfeedTrigger, batch)

LEDGER = os.environ["FSFEED_TEST_LEDGER"]
out = {}

def err(f):
    try:
        f()
    except fsfeed.FsfeedError as e:
        return [type(e).__name__, e.code, str(e)]
    return None

out["ledger"] = err(lambda: FsfeedEventTrigger(ledger=3, cursor="c"))
out["cursor"] = err(lambda: FsfeedTrigger(ledger=LEDGER, cursor=""))
out["filter"] = err(lambda: FsfeedEventTrigger(ledger=LEDGER, cursor="c", filter="x"))
out["max_events"] = err(lambda: FsfeedEventTrigger(ledger=LEDGER, cursor="c", max_events=0))
out["max_bool"] = err(lambda: FsfeedSensor(task_id="s", ledger=LEDGER, cursor="c", max_events=True))
out["callable"] = err(lambda: FsfeedBatchOperator(task_id="o", ledger=LEDGER, cursor="c",
                                                   python_callable=3))

def enter(**kw):
    with batch(**kw):
        pass

out["missing"] = err(lambda: enter(ledger=LEDGER + "-missing", cursor="c"))
out["bad_filter_key"] = err(lambda: enter(ledger=LEDGER, cursor="c", filter={"nope": 1}))
out["bad_format"] = err(lambda: enter(ledger=LEDGER, cursor="c", format="xml"))

async def first(gen):
    async for e in gen:
        return e

out["trigger_missing"] = err(lambda: asyncio.run(first(
    FsfeedTrigger(ledger=LEDGER + "-missing", cursor="c").run())))
with fsfeed.Ledger.open(LEDGER, read_only=True) as led:
    out["position"] = led.cursor("c").position.seq
print("RESULT " + json.dumps(out))
"""


def test_wrong_input_gets_typed_errors_and_commits_nothing(airflow, tmp_path):
    ledger = tmp_path / "ledger"
    with fsfeed.Ledger.open(ledger) as led:
        led.append(csv(1))
        led.cursor("c", start="earliest").commit()
    out = airflow.run_py(WRONG, FSFEED_TEST_LEDGER=str(ledger))
    got = json.loads(out.split("RESULT ", 1)[1])
    for k in ("ledger", "cursor", "filter", "max_events", "max_bool", "callable"):
        assert got[k][:2] == ["InvalidArgument", "invalid_argument"], (k, got[k])
    assert "max_events" in got["max_events"][2]
    assert got["missing"][:2] == ["LedgerNotFound", "ledger_not_found"]
    assert got["trigger_missing"][:2] == ["LedgerNotFound", "ledger_not_found"]
    assert got["bad_filter_key"][1] == "invalid_argument", got["bad_filter_key"]
    assert got["bad_format"][1] == "invalid_argument", got["bad_format"]
    assert got["position"] == 1, "nothing was committed"


def test_without_airflow_the_import_says_what_to_install():
    r = subprocess.run(
        [sys.executable, "-c", "import fsfeed.airflow"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "pip install 'fsfeed[airflow]'" in r.stderr
