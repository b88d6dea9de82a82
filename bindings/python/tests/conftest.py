"""Shared fixtures: a fresh ledger directory per test, fixed op times."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fsfeed
import pytest

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs
FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[fsfeed.Ledger]:
    with fsfeed.Ledger.open(tmp_path / "ledger", durability="buffered") as led:
        yield led


def commit(key: str, i: int = 0, bucket: str = "b1") -> fsfeed.Op:
    return fsfeed.Op.commit("vol1", bucket, key, size=i + 1, etag=f"e{i}").at(T0 + i)


def corpus() -> list:
    """The golden corpus of ops (every op kind, nasty keys), as dicts."""
    lines = (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
