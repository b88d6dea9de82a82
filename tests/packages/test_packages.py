"""The packages of `make dist`, installed as a user installs them: the wheel
into a fresh virtualenv, the npm tarball into a fresh Node project, both in
a temporary directory outside the repository; then the README's Python and
Node blocks run from those installs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("FSFEED_DIST", ROOT / "dist"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXTRAS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(m.metadata('fsfeed').get_all('Provides-Extra')))"
)


def one(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if len(found) != 1:
        pytest.fail(f"want one {pattern} in {DIST} (run `make dist`), found {found}")
    return found[0]


def block(lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", README, re.DOTALL)
    blocks = [b for b in blocks if "boto3" not in b]
    assert len(blocks) == 1, f"one {lang} block in the README"
    return str(blocks[0])


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH, NODE_PATH or CARGO_TARGET_DIR from the repository's tools.
    clean = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NODE_PATH", "VIRTUAL_ENV")
    }
    r = subprocess.run(
        cmd, cwd=cwd, env={**clean, **env}, check=False, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def test_the_wheel_installs_into_a_fresh_virtualenv_and_the_readme_runs_from_it(tmp_path):
    wheel = one("fsfeed-*-abi3-*.whl")
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")], tmp_path)
    py = str(tmp_path / "venv" / "bin" / "python")
    t0 = time.monotonic()
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], tmp_path)
    took = time.monotonic() - t0
    # It is the wheel's module, not the repository's.
    where = run([py, "-c", "import fsfeed; print(fsfeed.__file__)"], tmp_path).stdout
    assert where.startswith(str(tmp_path)), where
    meta = run(
        [
            py,
            "-c",
            EXTRAS,
        ],
        tmp_path,
    ).stdout
    assert {"airflow", "spark", "arrow", "pandas"} <= set(json.loads(meta))
    # The README's block reads history into pandas: the extra brings it.
    run(
        [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[pandas]"],
        tmp_path,
    )
    (tmp_path / "readme.py").write_text(block("python"))
    out = run([py, "readme.py"], tmp_path, TMPDIR=str(tmp_path)).stdout
    assert "ObjectCreated:Put a/x.bin" in out and "ObjectRemoved:Delete a/x.bin" in out
    print(f"wheel installed in {took:.1f} s")


def test_the_npm_tarball_installs_outside_the_repository_and_the_readme_runs_from_it(tmp_path):
    tgz = one("fsfeed-*.tgz")
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "private": True}))
    # No cargo on the PATH: the install must not build anything.
    path = ":".join(p for p in os.environ["PATH"].split(":") if not (Path(p) / "cargo").exists())
    run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(tgz)],
        app,
        PATH=path,
    )
    assert (app / "node_modules" / "fsfeed" / "fsfeed.node").exists()
    main = (
        block("js")
        + "\nmain(process.argv[2]).catch((e) => { console.error(e); process.exit(1) })\n"
    )
    (app / "readme.js").write_text(main)
    out = run(["node", "readme.js", str(tmp_path / "ledger")], app, PATH=path).stdout
    assert out.splitlines() == ["ObjectCreated:Put a/x.bin"]
    # The types come with it: a TypeScript user gets index.d.ts.
    pkg = json.loads((app / "node_modules" / "fsfeed" / "package.json").read_text())
    assert (app / "node_modules" / "fsfeed" / pkg["types"]).exists()
