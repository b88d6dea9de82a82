"""Progress bars of the CLI's long commands (`changelog fetch`, `resync`):
on stderr when it is a terminal (script(1) gives the command a pty), and
nothing there otherwise."""

from __future__ import annotations

import subprocess

import fsfeed
from conftest import FSFEED, Env

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def terminal(cmd: list[str], env: dict[str, str]) -> str:
    p = subprocess.run(
        ["script", "-q", "-e", "-c", " ".join(cmd), "/dev/null"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return p.stdout


def test_changelog_fetch_shows_the_objects_read_only_on_a_terminal(env: Env) -> None:
    env.write_config("max_events_per_object = 5")
    env.ledger.append_batch(
        [fsfeed.Op.commit("vol1", "photos", f"k{i:02}", size=i).at(T0 + i) for i in range(12)]
    )
    env.once()
    cmd = [FSFEED, "changelog", "fetch", "--config", str(env.config)]
    cmd += ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"]
    p = subprocess.run(cmd, env=env.environ(), capture_output=True, text=True, check=True)
    assert p.stderr == "" and len(p.stdout.splitlines()) == 12
    assert "change-log objects read" in terminal(cmd, env.environ())


def test_resync_shows_the_records_listed_only_on_a_terminal(env: Env) -> None:
    env.ledger.append_batch(
        [fsfeed.Op.commit("vol1", "photos", f"k{i:04}", size=i).at(T0 + i) for i in range(3000)]
    )
    cmd = [FSFEED, "resync", "--ledger", str(env.dir / "ledger")]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert p.stderr == "" and len(p.stdout.splitlines()) == 3000
    assert "records (" in terminal(cmd, env.environ())
