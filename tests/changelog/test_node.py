"""The Node package's ChangeLog against moto's S3 server: the same
operations as Python's fsfeed.ChangeLog and the CLI, and a store that cannot
be reached."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fsfeed
import pytest
from conftest import SK, Env

NODE_PKG = Path(__file__).resolve().parents[2] / "bindings" / "node"

SCRIPT = """
const { ChangeLog, Ledger } = require(process.argv[1])
const [config, ledger] = process.argv.slice(2)
;(async () => {
  const out = {}
  const log = new ChangeLog(config, { ledger })
  out.once = await log.runOnce()
  out.status = await log.status()
  out.records = await log.fetch(new Date('2026-01-01T00:00:00Z'), '2026-01-02T00:00:00Z')
  out.net = await log.fetch('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', { net: true })
  // Fetch-only: no ledger.
  out.fetchOnly = await new ChangeLog(config).fetch('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')
  out.dest = log.dest
  try {
    await log.fetch('2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z')
  } catch (e) {
    out.backwards = e.code
  }
  console.log(JSON.stringify(out))
})().catch((e) => { console.error(e.code, e.message); process.exit(1) })
"""


def node(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "-e", SCRIPT, str(NODE_PKG), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FSFEED_TEST_SK": SK},
    )


def test_node_run_once_status_and_fetch(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        env.ledger.append(
            fsfeed.Op.commit("vol1", "photos", f"k{i}", size=i).at(1_767_225_600_000_000 + i)
        )
    # The Node process opens the ledger read-only beside this writer.
    r = node(env, str(env.config), str(env.dir / "ledger"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["once"] == {"objects": 1, "events": 5, "not_leader": False}
    assert out["status"]["committed"] == 6 and out["status"]["lag"] == 0
    assert [x["key"] for x in out["records"]] == [f"k{i}" for i in range(5)]
    assert [x["change"] for x in out["net"]] == ["NEW"] * 5
    assert out["fetchOnly"] == out["records"]
    assert out["dest"]["bucket"] == env.bucket and SK not in r.stdout
    assert out["backwards"] == "invalid_config"
    # What Node uploaded is what Python reads back.
    monkeypatch.setenv("FSFEED_TEST_SK", SK)
    py = fsfeed.ChangeLog(env.config).fetch("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert py == out["records"]


def test_node_run_once_against_an_unreachable_store_fails_typed(env: Env) -> None:
    env.ledger.append(fsfeed.Op.commit("vol1", "photos", "k", size=1))
    env.write_config('retry_for = "1s"')
    env.moto.pause()
    try:
        r = node(env, str(env.config), str(env.dir / "ledger"))
    finally:
        env.moto.resume()
    assert r.returncode == 1
    assert r.stderr.startswith("store_failed") and SK not in r.stderr
