"""The README's pub/sub section runs as written against a real `fsfeed serve`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import FSFEED, ROOT, Client, Server

README = ROOT / "README.md"


def test_the_readme_pubsub_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The pub/sub service", 1)[1].split("\n## ", 1)[0]
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    (py,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    ledger = tmp_path / "demo"
    subprocess.run([FSFEED, "init", "--ledger", str(ledger)], check=True, capture_output=True)
    cfg = tmp_path / "pubsub.toml"
    cfg.write_text(toml)
    srv = Server(ledger, cfg)
    srv.start()
    try:
        code = py.replace("/tmp/fsfeed-pubsub-demo", str(ledger)).replace(
            "http://127.0.0.1:8000", srv.url
        )
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 - the point of the test
        out = capsys.readouterr().out
        assert out.splitlines() == ["ObjectCreated:Put cat.jpg 0000000000000001-00000000"]
        # Acked: never returned again.
        page = (
            Client(srv.url, "AKALICE", "alice-secret")
            .call("GET", "/subscriptions/new-jpgs", "events")
            .json()
        )
        assert page["Records"] == []
    finally:
        srv.stop()
