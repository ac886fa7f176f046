#!/usr/bin/env bash
# Cross-checks Reef's eviction policies against libCacheSim: makes a Python virtual environment
# with libCacheSim's binding (PyPI `libcachesim`), builds reef-sim, and runs crosscheck.py
# (arguments are passed on: --requests, --objects, --policy, --speed ...). Dev-only: not part
# of the test run. Needs python3 with venv and network access to PyPI the first time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=${REEF_CROSSCHECK_VENV:-$target/crosscheck-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "libcachesim==0.3.5"
(cd "$root" && cargo build --release --quiet -p reef-sim)
cd "$root"
exec "$venv/bin/python" "$here/crosscheck.py" --reef "$target/release/reef-sim" --dir "$target/crosscheck" "$@"
