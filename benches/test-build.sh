#!/usr/bin/env bash
# Times the README's test command from an empty build cache, RUNS times (default 3): the build
# (`--no-run`, with cargo's --timings report kept) and the run, separately.
#
#   bash benches/test-build.sh            # from the repository root; needs what .ci/run installs
#
# Each run builds into a fresh target directory (crates already downloaded are reused, as on
# a machine that has built once). Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
export CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
for i in $(seq "$runs"); do
  target=$(mktemp -d)
  start=$(date +%s)
  if ! CARGO_TARGET_DIR=$target cargo test --all-features --no-run --timings -q 2>"/tmp/reef-test-build-$i.log"; then
    echo "run $i: the build failed (see /tmp/reef-test-build-$i.log)" >&2
    exit 1
  fi
  built=$(date +%s)
  cp "$target"/cargo-timings/cargo-timing.html "/tmp/reef-test-build-$i.html"
  status=passed
  CARGO_TARGET_DIR=$target cargo test --all-features -q >"/tmp/reef-test-run-$i.log" 2>&1 || status=FAILED
  done=$(date +%s)
  echo "run $i: build $((built - start)) s, tests $((done - built)) s ($status), total $((done - start)) s" \
    "(timings: /tmp/reef-test-build-$i.html, log: /tmp/reef-test-run-$i.log)"
  rm -rf "$target"
done
