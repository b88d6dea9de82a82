"""Every bad input raises its FsfeedError subclass with the core's code, and
changes nothing."""

from __future__ import annotations

import datetime

import fsfeed
import pytest
from conftest import commit


def test_every_core_code_has_a_class():
    classes = {
        getattr(fsfeed, n).code: getattr(fsfeed, n)
        for n in fsfeed.__all__
        if isinstance(getattr(fsfeed, n), type)
        and issubclass(getattr(fsfeed, n), fsfeed.FsfeedError)
        and getattr(fsfeed, n) is not fsfeed.FsfeedError
    }
    assert set(classes) == set(fsfeed.ERROR_CODES)
    assert all(issubclass(c, fsfeed.FsfeedError) for c in classes.values())


def check(exc, code, fn, *args, **kwargs):
    with pytest.raises(exc) as e:
        fn(*args, **kwargs)
    assert e.value.code == code, e.value
    return e.value


@pytest.mark.parametrize(
    "op, exc, code",
    [
        (
            {"kind": "nope", "volume": "v", "bucket": "b", "key": "k", "time_us": 1},
            fsfeed.UnknownKind,
            "unknown_kind",
        ),
        (
            {"kind": "commit", "volume": "v", "bucket": "b", "key": "k"},
            fsfeed.InvalidOp,
            "invalid_op",
        ),
        (
            {"kind": "commit", "volume": "v", "bucket": "b", "key": "", "time_us": 1},
            fsfeed.InvalidKey,
            "invalid_key",
        ),
        (
            {"kind": "commit", "volume": "v", "bucket": "b", "key": "k", "time_us": "x"},
            fsfeed.InvalidOp,
            "invalid_op",
        ),
        (
            {"kind": "commit", "volume": "v", "bucket": "b", "key": "k", "time_us": object()},
            fsfeed.InvalidJson,
            "invalid_json",
        ),
        ("not an op", fsfeed.InvalidOp, "invalid_op"),
        (42, fsfeed.InvalidOp, "invalid_op"),
    ],
)
def test_bad_op_dicts(ledger, op, exc, code):
    check(exc, code, ledger.append, op)
    assert ledger.head_seq == 0


def test_a_bad_op_in_a_batch_writes_nothing_and_names_its_index(ledger):
    err = check(
        fsfeed.InvalidKey,
        "invalid_key",
        ledger.append_batch,
        [commit("ok"), {**commit("x").to_dict(), "key": ""}],
    )
    assert err.index == 1
    assert ledger.head_seq == 0
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.append_batch, {"kind": "commit"})


def test_namespace_rejections(ledger):
    ledger.append(fsfeed.Op.create_directory("v", "b", "d").with_layout("fso"))
    ledger.append(fsfeed.Op.create_file("v", "b", "d/f").with_layout("fso"))
    check(
        fsfeed.AlreadyExists,
        "already_exists",
        ledger.append,
        fsfeed.Op.create_file("v", "b", "d/f").with_layout("fso"),
    )
    check(
        fsfeed.DirectoryNotEmpty,
        "directory_not_empty",
        ledger.append,
        fsfeed.Op.delete("v", "b", "d").with_layout("fso"),
    )
    check(
        fsfeed.RenameIntoSubtree,
        "rename_into_subtree",
        ledger.append,
        fsfeed.Op.rename("v", "b", "d", "d/e").with_layout("fso"),
    )
    assert ledger.head_seq == 2
    ledger.append(fsfeed.Op.rename("v", "b", "d", "e").with_layout("fso"))
    check(
        fsfeed.PathGone,
        "path_gone",
        ledger.append,
        fsfeed.Op.delete("v", "b", "d/f").with_layout("fso"),
    )
    assert ledger.head_seq == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"format": "xml"},
        {"format": "native", "s3_profile": "aws"},
        {"format": "s3", "s3_profile": "azure"},
        {"format": "s3", "s3_settings": {"colour": "red"}},
        {"format": "s3", "s3_settings": {"extensions": "yes"}},
        {"format": "native", "s3_settings": {"extensions": True}},
        {"on_gap": "ignore"},
        {"start": "yesterday"},
        {"start": -3},
        {"start": 0},
        {"start": True},
        {"start": 1.5},
        {"start": datetime.datetime(2026, 1, 1)},
        {"filter": {"colour": "red"}},
        {"filter": {"events": ["s3:Nope:*"]}},
    ],
)
def test_bad_cursor_arguments(ledger, kwargs):
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.cursor, "c", **kwargs)
    assert ledger.stats()["cursors"] == []


def test_bad_read_arguments(ledger):
    c = ledger.cursor("c")
    check(fsfeed.InvalidArgument, "invalid_argument", c.read, max=-1)
    check(fsfeed.InvalidArgument, "invalid_argument", c.read, max=0)
    check(fsfeed.InvalidArgument, "invalid_argument", c.read, timeout=-1)
    check(fsfeed.InvalidArgument, "invalid_argument", c.read, timeout=float("nan"))
    check(fsfeed.InvalidArgument, "invalid_argument", c.aiter, max=0)
    check(fsfeed.InvalidArgument, "invalid_argument", c.subscribe, lambda b: None, max=-5)
    check(fsfeed.InvalidArgument, "invalid_argument", c.subscribe, "not callable")
    check(fsfeed.InvalidArgument, "invalid_argument", c.commit, "latest")
    check(fsfeed.InvalidArgument, "invalid_argument", c.seek, object())
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.cursor().commit)  # unnamed
    assert ledger.stats()["cursors"] == []


def test_bad_positions_and_ops():
    check(fsfeed.InvalidArgument, "invalid_argument", fsfeed.Position, -1)
    check(fsfeed.InvalidArgument, "invalid_argument", fsfeed.Position.from_dict, {"sub": 1})
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Op.create_file("v", "b", "k").with_layout,
        "flat",
    )
    check(fsfeed.InvalidArgument, "invalid_argument", fsfeed.Op.create_file("v", "b", "k").at, -5)
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Op.create_file("v", "b", "k").at,
        datetime.datetime(2026, 1, 1),
    )


def test_bad_open_arguments(tmp_path):
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Ledger.open,
        tmp_path / "a",
        durability="maybe",
    )
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Ledger.open,
        tmp_path / "b",
        retention={"max_events": 0},
    )
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Ledger.open,
        tmp_path / "c",
        retention={"forever": 1},
    )
    check(
        fsfeed.InvalidArgument,
        "invalid_argument",
        fsfeed.Ledger.open,
        tmp_path / "d",
        retention={"max_events": -1},
    )
    check(
        fsfeed.LedgerNotFound, "ledger_not_found", fsfeed.Ledger.open, tmp_path / "e", create=False
    )
    check(
        fsfeed.LedgerNotFound,
        "ledger_not_found",
        fsfeed.Ledger.open,
        tmp_path / "f",
        read_only=True,
    )
    with fsfeed.Ledger.open(tmp_path / "g"):
        check(fsfeed.LedgerLocked, "ledger_locked", fsfeed.Ledger.open, tmp_path / "g")


def test_read_only_ledgers_refuse_writes(ledger, tmp_path):
    ledger.append(commit("x"))
    ro = fsfeed.Ledger.open(tmp_path / "ledger", read_only=True)
    check(fsfeed.ReadOnly, "read_only", ro.append, commit("y"))
    ro.close()


def test_a_closed_ledger_refuses_everything(ledger):
    c = ledger.cursor("c")
    ledger.close()
    assert ledger.closed
    check(fsfeed.LedgerClosed, "ledger_closed", ledger.append, commit("x"))
    check(fsfeed.LedgerClosed, "ledger_closed", ledger.stats)
    check(fsfeed.LedgerClosed, "ledger_closed", ledger.cursor, "d")
    check(fsfeed.LedgerClosed, "ledger_closed", ledger.history)
    check(fsfeed.LedgerClosed, "ledger_closed", c.read, timeout=0)
    check(fsfeed.LedgerClosed, "ledger_closed", lambda: ledger.head_seq)


def test_bad_history_and_changes_arguments(ledger):
    ledger.append_batch([commit("a"), commit("b", 1)])
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.history, batch_rows=0)
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.history, until="committed")
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.history, filter={"x": 1})
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.changes, since="committed")
    check(fsfeed.InvalidArgument, "invalid_argument", ledger.changes, since=1, until=0)
