#!/usr/bin/env bash
# A sharded sweep on HTCondor (a shared filesystem, as on most clusters' worker nodes). Run from
# the repository root:
#
#   scenarios/batch/htcondor.sh          submit the shards (htcondor.sub)
#   scenarios/batch/htcondor.sh merge    wait for them, then merge into $OUT/all
#
# The settings are sweep.sh's (SCENARIO, VARY, SET, SHARDS, OUT, REEF_SIM), plus MEM (memory
# per task, default 4GB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/settings.sh"
: "${MEM:=4GB}"

if [ "${1:-}" = merge ]; then
  condor_wait "$OUT/logs/condor.log"
  exec "$here/sweep.sh" merge
fi
mkdir -p "$OUT/logs" "$OUT/shards"
condor_submit -append "MEM = $MEM" -append "OUT = $OUT" -append "SHARDS = $SHARDS" "$here/htcondor.sub"
