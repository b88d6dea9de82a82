"""fsfeed.ChangeLog from Python: the same operations as the CLI, and wrong input."""

from __future__ import annotations

import datetime

import fsfeed
import pytest
from conftest import SK, Env


def test_run_once_status_and_fetch(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSFEED_TEST_SK", SK)
    for i in range(5):
        env.ledger.append(
            fsfeed.Op.commit("vol1", "photos", f"k{i}", size=i).at(1_767_225_600_000_000 + i)
        )
    log = fsfeed.ChangeLog(env.config, ledger=env.ledger)
    assert log.run_once() == {"objects": 1, "events": 5, "not_leader": False}
    st = log.status()
    assert st["committed"] == 6 and st["lag"] == 0 and st["objects"] == 1
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    recs = log.fetch(start, "2026-01-02T00:00:00Z")
    assert [r["key"] for r in recs] == [f"k{i}" for i in range(5)]
    assert [r["change"] for r in log.fetch(start, "2026-01-02T00:00:00Z", net=True)] == ["NEW"] * 5
    assert log.dest["bucket"] == env.bucket and "secret_key" not in log.dest
    assert log.dest_keys()["secret_key"] == SK
    # A fetch-only change log (no ledger) reads the same.
    assert fsfeed.ChangeLog(str(env.config)).fetch(start, "2026-01-02T00:00:00Z") == recs


def test_wrong_input(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSFEED_TEST_SK", SK)
    with pytest.raises(fsfeed.InvalidConfig) as e:
        fsfeed.ChangeLog("dedup = 'sometimes'\n" + env.config.read_text())
    assert e.value.code == "invalid_config" and SK not in str(e.value)
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.ChangeLog(42)  # type: ignore[arg-type]
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.ChangeLog(env.config, ledger=3.5)  # type: ignore[arg-type]
    log = fsfeed.ChangeLog(env.config)
    with pytest.raises(fsfeed.InvalidArgument):
        log.run_once()
    with pytest.raises(fsfeed.InvalidArgument):
        log.status()
    with pytest.raises(fsfeed.InvalidArgument):
        log.fetch("yesterday", "2026-01-02T00:00:00Z")
    with pytest.raises(fsfeed.InvalidArgument):
        log.fetch(datetime.datetime(2026, 1, 1), "2026-01-02T00:00:00Z")  # naive: no zone
    with pytest.raises(fsfeed.InvalidConfig):
        log.fetch("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z")  # --to before --from
    env.write_config('retry_for = "1s"')
    env.moto.pause()
    try:
        with pytest.raises(fsfeed.StoreFailed) as e2:
            fsfeed.ChangeLog(env.config, ledger=env.ledger).run_once()
    finally:
        env.moto.resume()
    assert e2.value.code == "store_failed" and SK not in str(e2.value)
