#!/usr/bin/env bash
# Run every fuzz target (fuzz/, cargo-fuzz with libFuzzer) for SECONDS each,
# one after another, growing fuzz/corpus/TARGET; print one line per target
# (execs, coverage, corpus size) and write them to fuzz/last-run.txt (or
# $FUZZ_REPORT).
# A crash stops the run with libFuzzer's report; the input is written to
# fuzz/artifacts/TARGET/ (move it to fuzz/regressions/TARGET/ with a name
# that says what it found, once fixed).
#
#   scripts/fuzz.sh SECONDS [TARGET...]     (make fuzz FUZZ_SECONDS=N)
#   FUZZ_CMIN=1 scripts/fuzz.sh ...          then minimise each corpus
#   FUZZ_SCRATCH=1 scripts/fuzz.sh ...       new inputs to a temporary
#                                            directory (make test-fuzz)
#
# cargo-fuzz is built once into ~/.cache/fsfeed/cargo-fuzz. It runs on the
# stable toolchain here with `-s none` (no sanitizer: the AddressSanitizer
# needs nightly, and the code under test forbids unsafe; panics and failed
# properties are what the targets look for).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
source scripts/env.sh
tools="$HOME/.cache/fsfeed/cargo-fuzz"
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$tools"
fi
export PATH="$tools/bin:$PATH"
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O -s none >/dev/null
out="${FUZZ_REPORT:-last-run.txt}"
: > "$out"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  dirs=()
  if [ "${FUZZ_SCRATCH:-}" = "1" ]; then
    scratch=$(mktemp -d)
    dirs=("$scratch" "corpus/$t")
  fi
  if ! cargo fuzz run -O -s none "$t" "${dirs[@]}" -- -max_total_time="$seconds" \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    rm -f "$log"
    echo "fuzz target $t failed (input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/\1 \2/p' | tail -1)
  rm -f "$log"
  if [ -n "${scratch:-}" ]; then rm -rf "$scratch"; scratch=; fi
  if [ "${FUZZ_CMIN:-}" = "1" ]; then
    cargo fuzz cmin -O -s none "$t" >/dev/null 2>&1
  fi
  files=$(find "corpus/$t" -type f | wc -l)
  line="$t: ${execs:-?} execs in ${seconds}s, coverage ${cov% *} edges (${cov#* } features), corpus $files inputs"
  echo "$line" | tee -a "$out"
done
