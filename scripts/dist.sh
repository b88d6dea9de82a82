#!/usr/bin/env bash
# `make dist`: the installable packages, into dist/.
# - the Python wheel (maturin, abi3 for CPython 3.9 and later, stripped);
# - the npm tarball, carrying the addon built for this platform (stripped of
#   its debug info), so that `npm install fsfeed-X.tgz` needs neither this
#   repository nor cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/env.sh
mkdir -p dist
rm -f dist/fsfeed-*.whl dist/fsfeed-*.tgz
maturin build --release --strip --locked -o dist >&2
bash bindings/node/scripts/build.sh
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/scripts"
cp bindings/node/package.json bindings/node/index.js bindings/node/index.d.ts "$stage/"
cp bindings/node/scripts/build.sh "$stage/scripts/"
strip --strip-debug -o "$stage/fsfeed.node" bindings/node/fsfeed.node
(cd "$stage" && npm pack --pack-destination "$OLDPWD/dist" --loglevel=error >/dev/null)
ls dist/fsfeed-*
