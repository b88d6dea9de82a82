"""fsfeed.watch: a local tree as a source, from Python (a real kernel, a real tree)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import fsfeed
import pytest


def listing(root: Path) -> dict[str, tuple[bool, int | None]]:
    out: dict[str, tuple[bool, int | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out[os.path.normpath(os.path.join(rel, d))] = (True, None)
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.normpath(os.path.join(rel, f))] = (False, os.lstat(p).st_size)
    return out


def namespace(ledger: fsfeed.Ledger, bucket: str) -> dict[str, tuple[bool, int | None]]:
    return {e["path"]: (e["is_dir"], e.get("size")) for e in ledger.tree(bucket)}


def test_watch_appends_what_happens_and_stops(tmp_path: Path, ledger: fsfeed.Ledger) -> None:
    root = tmp_path / "photos"
    (root / "2026" / "jan").mkdir(parents=True)
    (root / "2026" / "jan" / "a.jpg").write_bytes(b"x" * 100)
    with fsfeed.watch(root, ledger, ignore=["**/*.part"]) as w:
        assert w.bucket == "photos" and w.root == str(root.resolve())
        assert namespace(ledger, "photos") == listing(root)
        first = ledger.head_seq
        (root / "2026" / "feb").mkdir()
        (root / "2026" / "feb" / "b.jpg").write_bytes(b"y" * 7)
        (root / "2026" / "feb" / "c.part").write_bytes(b"partial")
        # Seen before it goes: a directory made and removed between two
        # reads leaves nothing to append, and the deletes checked below
        # would then not come.
        w.sync()
        (root / "2026" / "jan").rename(root / "2026" / "january")
        shutil.rmtree(root / "2026" / "feb")
        w.sync()
        assert namespace(ledger, "photos") == {
            k: v for k, v in listing(root).items() if not k.endswith(".part")
        }
        kinds = []
        cur = ledger.cursor(start=first + 1)
        for rec in cur.read(max=100, timeout=0).records:
            kinds.append((rec["kind"], rec["source"]))
        assert ("rename", "inotify") in kinds
        assert kinds[-1] == ("delete", "inotify")
        c = w.counters()
        assert c["ops"] >= 5 and c["overflows"] == 0
    with pytest.raises(fsfeed.InvalidArgument):
        w.stop()


def test_commit_carries_size_and_mtime(tmp_path: Path, ledger: fsfeed.Ledger) -> None:
    root = tmp_path / "t"
    root.mkdir()
    w = fsfeed.watch(root, ledger, bucket="b")
    (root / "f").write_bytes(b"12345")
    w.sync(timeout=30)
    counters = w.stop()
    assert counters["last_seq"] == ledger.head_seq
    rec = ledger.cursor(start=ledger.head_seq).read(max=1, timeout=0).records[0]
    assert rec["kind"] == "commit" and rec["size"] == 5 and rec["source"] == "inotify"
    assert rec["mtime"] == int(os.stat(root / "f").st_mtime_ns // 1_000_000)
    (entry,) = ledger.tree("b")
    assert entry["path"] == "f" and entry["size"] == 5 and entry["mtime_ms"] == rec["mtime"]


def test_wrong_input(tmp_path: Path, ledger: fsfeed.Ledger) -> None:
    root = tmp_path / "t"
    root.mkdir()
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.watch(tmp_path / "missing", ledger)
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.watch(root, ledger, ignore=["["])
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.watch(root, ledger, bucket="a/b")
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.watch(root, ledger, rescan_interval=0)
    with pytest.raises(fsfeed.InvalidArgument):
        fsfeed.watch(root, ledger, rescan_interval=float("nan"))
    with pytest.raises(TypeError):
        fsfeed.watch(root, "not a ledger")  # type: ignore[arg-type]
    w = fsfeed.watch(root, ledger)
    with pytest.raises(fsfeed.InvalidArgument):
        w.sync(timeout=-1)
    w.stop()
    with pytest.raises(fsfeed.InvalidArgument):
        w.counters()
    with pytest.raises(fsfeed.InvalidArgument):
        ledger.tree("b", seq=ledger.head_seq + 5)
    assert ledger.head_seq == 0
