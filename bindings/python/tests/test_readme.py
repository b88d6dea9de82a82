"""The README's Python block runs as written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_python_example_runs(capsys, tmp_path, monkeypatch):
    # The block makes its ledger with tempfile.mkdtemp(): under pytest's tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    # The pub/sub block (boto3) runs against a server in tests/pubsub/test_readme_pubsub.py.
    blocks = [b for b in blocks if "boto3" not in b]
    assert len(blocks) == 1
    exec(compile(blocks[0], str(README), "exec"), {})  # noqa: S102 - the point of the test
    out = capsys.readouterr().out
    assert "ObjectCreated:Put a/x.bin" in out and "ObjectRemoved:Delete a/x.bin" in out
