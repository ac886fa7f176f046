#!/usr/bin/env bash
# One task of a sharded parameter sweep, as a batch system runs it (see README.md here):
#
#   sweep.sh shard I    run shard I of $SHARDS (0-based) into $OUT/shards/I
#   sweep.sh merge      merge $OUT/shards/* into $OUT/all
#
# Run from the repository root. Settings come from the environment (a batch system passes the
# submitter's environment on; slurm.sh and htcondor.sh set them):
#   REEF_SIM  the reef-sim binary (default: reef-sim on PATH, else target/release/reef-sim)
#   SCENARIO  the scenario file              (default scenarios/wlcg.toml)
#   VARY      the --vary options, one string (default: 4 eviction policies x 2 discovery modes)
#   SET       extra --set options, one string (default none)
#   SHARDS    how many shards                (default 8)
#   OUT       the sweep's folder             (default out/sweep)
set -euo pipefail
set -f # the option strings are split on spaces, never globbed

source "$(dirname "$0")/settings.sh"

read -r -a vary <<< "$VARY"
read -r -a set <<< "$SET"
case "${1:-}" in
  shard)
    shard="${2:?sweep.sh shard I: the shard number is missing}"
    exec "$REEF_SIM" compare "$SCENARIO" "${vary[@]}" "${set[@]}" \
      --shard "$shard/$SHARDS" --threads 1 --quiet --out "$OUT/shards/$shard"
    ;;
  merge)
    set +f
    exec "$REEF_SIM" merge "$OUT"/shards/* --out "$OUT/all"
    ;;
  *)
    echo "usage: sweep.sh shard I | sweep.sh merge" >&2
    exit 2
    ;;
esac
