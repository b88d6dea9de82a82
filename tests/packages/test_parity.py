"""The same API in both bindings: bindings/parity.toml names, for every public
operation of the core's Ledger and Cursor (read from the core's sources) and
the delivery entry points, the Python and Node name or a reason for its
absence. This fails when the core gains an operation the file does not list,
or when a binding lacks a listed name without a reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import fsfeed
import tomllib

ROOT = Path(__file__).resolve().parents[2]
PARITY = tomllib.loads((ROOT / "bindings" / "parity.toml").read_text())


def core_methods(typ: str) -> set[str]:
    """`pub fn`s of every `impl TYP {` block under core/src."""
    out: set[str] = set()
    for p in (ROOT / "core" / "src").rglob("*.rs"):
        s = p.read_text()
        for m in re.finditer(rf"^impl(?:<[^>]*>)? {typ} \{{", s, re.MULTILINE):
            i, depth = m.end(), 1
            while depth:
                depth += {"{": 1, "}": -1}.get(s[i], 0)
                i += 1
            out.update(re.findall(r"^    pub fn (\w+)", s[m.end() : i], re.MULTILINE))
    return out


NODE_NAMES = """
const f = require(process.argv[1])
const names = (cls) => {
  const s = new Set(Object.getOwnPropertyNames(cls))
  for (let p = cls.prototype; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) s.add(n)
  }
  return [...s]
}
console.log(JSON.stringify({ ledger: names(f.Ledger), cursor: names(f.Cursor), delivery: Object.keys(f) }))
"""


def node_names() -> dict[str, set[str]]:
    out = subprocess.run(
        ["node", "-e", NODE_NAMES, str(ROOT / "bindings" / "node")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {k: set(v) for k, v in json.loads(out).items()}


def python_names() -> dict[str, set[str]]:
    return {
        "ledger": set(dir(fsfeed.Ledger)),
        "cursor": set(dir(fsfeed.Cursor)),
        "delivery": set(dir(fsfeed)),
    }


def test_the_parity_file_lists_every_public_operation_of_the_core():
    for section, typ in (("ledger", "Ledger"), ("cursor", "Cursor")):
        core = core_methods(typ)
        assert core, f"no pub fn found in impl {typ}: the scan is broken"
        listed = set(PARITY[section])
        assert core - listed == set(), f"{typ}: add to bindings/parity.toml"
        assert listed - core == set(), f"{typ}: no longer in the core"


def test_each_binding_has_every_listed_operation_or_a_reason():
    bindings = {"python": python_names(), "node": node_names()}
    lacking: list[str] = []
    for section, ops in PARITY.items():
        for op, by in ops.items():
            for binding, names in bindings.items():
                entry: Any = by[binding]
                if isinstance(entry, dict):
                    assert entry.get("missing"), f"{section}.{op}.{binding}: a reason is empty"
                    continue
                if entry not in names[section]:
                    lacking.append(f"{binding} {section}.{op} ({entry})")
    assert lacking == [], "missing without a reason in bindings/parity.toml"
