"""The examples under examples/python run as users run them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsfeed
import pytest
from conftest import T0, commit

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def test_backup_changes_reports_net_changes_between_runs(tmp_path):
    path, state = tmp_path / "ledger", tmp_path / "state.json"
    with fsfeed.Ledger.open(path) as led:
        led.append_batch([commit("keep", 0), commit("gone", 1), commit("moved", 2)])
    script = str(EXAMPLES / "backup_changes.py")
    first = run(script, str(path), str(state))
    assert first.returncode == 0, first.stderr
    assert sorted(json.loads(x)["key"] for x in first.stdout.splitlines()) == [
        "gone",
        "keep",
        "moved",
    ]
    assert run(script, str(path), str(state)).stdout == ""  # nothing new
    with fsfeed.Ledger.open(path) as led:
        led.append_batch(
            [
                fsfeed.Op.delete("vol1", "b1", "gone").at(T0 + 10),
                fsfeed.Op.rename("vol1", "b1", "moved", "there").at(T0 + 11),
                commit("tmp", 12),
                fsfeed.Op.delete("vol1", "b1", "tmp").at(T0 + 13),
            ]
        )
    third = run(script, str(path), str(state))
    rows = sorted((json.loads(x) for x in third.stdout.splitlines()), key=lambda r: r["change"])
    assert rows == [
        {"bucket": "b1", "change": "DELETE", "key": "gone", "volume": "vol1"},
        {"bucket": "b1", "change": "RENAME", "from_key": "moved", "key": "there", "volume": "vol1"},
    ]


def test_backup_changes_refuses_to_skip_a_gap(tmp_path):
    path, state = tmp_path / "ledger", tmp_path / "state.json"
    with fsfeed.Ledger.open(path, retention={"max_events": 2}) as led:
        led.append(commit("a"))
        # Beside the running writer, as a backup job runs.
        ok = run(str(EXAMPLES / "backup_changes.py"), str(path), str(state), "--read-only")
        assert ok.returncode == 0, ok.stderr
        led.append_batch([commit(f"k{i}", i) for i in range(5)])
        r = run(str(EXAMPLES / "backup_changes.py"), str(path), str(state), "--read-only")
    assert r.returncode == 2 and "dropped by retention" in r.stderr


def test_the_notebook_runs_headless(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("FSFEED_NOTEBOOK_DIR", str(tmp_path))
    # The kernel's own scratch directories too.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    nb = nbformat.read(EXAMPLES / "explore.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    png = tmp_path / "events_per_minute.png"
    assert png.exists() and png.stat().st_size > 10_000
