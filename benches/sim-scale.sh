#!/usr/bin/env bash
# `reef-sim run scenarios/wlcg.toml` at several sizes, each run pinned to one core, the given
# binaries taking turns, ROUNDS rounds. The request rate stays WLCG's (10 million per two days),
# so the simulated time grows with the requests. Prints one line per run: wall time, peak RSS,
# events and the origin fetches (the same for every binary that models the same system).
#
#   bash benches/sim-scale.sh [REQUESTS...]         # default: 1000000 10000000
#   REEF_SIM=path REEF_SIM_B=path ROUNDS=3 CORE=1 bash benches/sim-scale.sh 1000000
#
# Build first (`cargo build --release -p reef-sim`); run nothing else meanwhile: the figure is
# a wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in /usr/bin/time taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install time util-linux)" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-target}"
sims=("${REEF_SIM:-$target/release/reef-sim}")
[ -n "${REEF_SIM_B:-}" ] && sims+=("$REEF_SIM_B")
rounds="${ROUNDS:-3}"
core="${CORE:-1}"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for requests in "${sizes[@]}"; do
  # 10 million requests per 172,800 s: 17.28 ms of simulated time per request.
  duration="$(( requests * 1728 / 100 ))ms"
  for round in $(seq "$rounds"); do
    for sim in "${sims[@]}"; do
      log="$out/log"
      if ! /usr/bin/time -f "%e %M" -o "$out/time" taskset -c "$core" "$sim" run scenarios/wlcg.toml \
        --set workload.requests="$requests" --set workload.duration="$duration" --out "$out/run" >"$log" 2>&1; then
        echo "$sim failed at $requests requests, round $round:" >&2
        tail -5 "$log" >&2
        exit 1
      fi
      read -r wall rss <"$out/time"
      events=$(grep -oE '^[0-9]+ events' "$log" | cut -d' ' -f1)
      origin=$(grep -oE 'origin fetches +[0-9]+' "$log" | grep -oE '[0-9]+$')
      printf '%s requests, round %s, %s: %s s, %s MB peak RSS, %s events, %s origin fetches\n' \
        "$requests" "$round" "$sim" "$wall" "$((rss / 1024))" "$events" "$origin"
    done
  done
done
