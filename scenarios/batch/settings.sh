# The sweep's settings, with their defaults (sourced by sweep.sh, slurm.sh and htcondor.sh; see
# README.md in scenarios/): every one may be set in the environment.
: "${SCENARIO:=scenarios/wlcg.toml}"
: "${VARY:=--vary policy.eviction=lru,s3fifo,gdsf,wtinylfu --vary policy.discovery=parent,dsht}"
: "${SET:=}"
: "${SHARDS:=8}"
: "${OUT:=out/sweep}"
# The binary by an absolute path: a batch job's PATH is not the submitter's.
if [ -z "${REEF_SIM:-}" ]; then
  REEF_SIM=$(command -v reef-sim || echo target/release/reef-sim)
fi
REEF_SIM=$(realpath -m "$REEF_SIM")
[ -x "$REEF_SIM" ] || { echo "$(basename "$0"): no reef-sim binary at '$REEF_SIM' (build it or set REEF_SIM)" >&2; exit 2; }
export REEF_SIM SCENARIO VARY SET SHARDS OUT
