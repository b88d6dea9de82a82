#!/usr/bin/env bash
# Apache Airflow 3.3 from PyPI in a virtualenv of its own, once per version
# into the cache outside the work tree (as rocksdb-lib.sh does for RocksDB):
# its pinned dependencies must not meet the test tools of the system Python.
# About a minute the first time, nothing after.
#
# Prints the virtualenv's python on stdout. `make test-airflow` installs the
# wheel from `make dist` into it (fsfeed[airflow]) and runs tests/airflow.
set -euo pipefail
ver=3.3.2
cache="${FSFEED_CACHE:-$HOME/.cache/fsfeed}"
root="$cache/airflow-$ver"
if [ -f "$root/.complete" ]; then
  echo "$root/bin/python"
  exit 0
fi
echo "installing apache-airflow $ver once into $root" >&2
rm -rf "$root"
python3 -m venv "$root"
"$root/bin/pip" install -q --disable-pip-version-check "apache-airflow==$ver" >&2 \
  || { rm -rf "$root"; exit 1; }
touch "$root/.complete"
echo "$root/bin/python"
