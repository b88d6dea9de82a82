"""Net changes since the last run: what a backup tool copies (the glusterfind use).

    python backup_changes.py LEDGER STATE_FILE [--read-only]

Prints one JSON line per changed path since the seq saved in STATE_FILE
(NEW / MODIFY / RENAME with from_key / DELETE, collapsed: a file created and
deleted between two runs is not there), then saves the head so the next run
starts after it. A first run (no state file) reports everything retained.
If the ledger no longer holds the saved seq, the run fails with GapError
rather than quietly missing changes: take a full backup then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import fsfeed


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ledger")
    p.add_argument("state", type=Path)
    p.add_argument("--read-only", action="store_true", help="a writer holds the ledger")
    args = p.parse_args(argv)

    last = json.loads(args.state.read_text())["head_seq"] if args.state.exists() else 0
    with fsfeed.Ledger.open(args.ledger, read_only=args.read_only, create=False) as led:
        head = led.head_seq
        since = last + 1 if last else "earliest"
        try:
            rows = led.changes(since=since, until=head) if head > last else []
        except fsfeed.GapError as e:
            print(f"changes since seq {last + 1} were dropped by retention: {e}", file=sys.stderr)
            return 2
        for row in rows:
            print(json.dumps(row, sort_keys=True))
    args.state.write_text(json.dumps({"head_seq": head}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
