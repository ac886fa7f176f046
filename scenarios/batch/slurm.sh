#!/usr/bin/env bash
# A sharded sweep on Slurm: a job array of $SHARDS tasks, then one merge job that runs once all
# of them succeeded. Run from the repository root, on a submit host:
#
#   scenarios/batch/slurm.sh
#
# It creates the output folders first (Slurm does not, and a job whose log folder is missing
# fails to launch), names the reef-sim binary by an absolute path (a batch job's PATH is not
# the submitter's), and prints the two job ids. The settings are sweep.sh's (SCENARIO, VARY,
# SET, SHARDS, OUT, REEF_SIM), plus:
#   MEM        memory per task (default 4G)
#   PARTITION  the partition (default: the cluster's default)
# Results: $OUT/all (merged), $OUT/shards/I (one per task), $OUT/logs (the jobs' output).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/settings.sh"
: "${MEM:=4G}"

mkdir -p "$OUT/logs" "$OUT/shards"
partition=()
[ -z "${PARTITION:-}" ] || partition=(--partition "$PARTITION")
common=(--parsable --cpus-per-task=1 --mem="$MEM" --export=ALL "${partition[@]}")
array=$(sbatch "${common[@]}" --job-name=reef-sweep --array="0-$((SHARDS - 1))" \
  --output="$OUT/logs/shard-%a.out" --wrap="'$here/sweep.sh' shard \"\$SLURM_ARRAY_TASK_ID\"")
array=${array%%;*}
merge=$(sbatch "${common[@]}" --job-name=reef-sweep-merge --dependency="afterok:$array" \
  --output="$OUT/logs/merge.out" --wrap="'$here/sweep.sh' merge")
echo "shards: job $array (array 0-$((SHARDS - 1))); merge: job ${merge%%;*} -> $OUT/all"
