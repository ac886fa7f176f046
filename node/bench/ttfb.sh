#!/usr/bin/env bash
# Time to first byte of a cold 1 GiB object through two tiers (origin -> Tier-1 cache -> Tier-2
# cache, on loopback), streaming (the default) and store-and-forward (`policy.stream = false`),
# then the throughput of 1 GiB hits at the Tier-2 cache, whose blocks are checked as they are
# sent. Not a test: it prints numbers for the README.
#
#   node/bench/ttfb.sh                       (needs curl; builds reef-node --release)
#   REEF_NODE=path/to/reef-node RUNS=3 node/bench/ttfb.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
runs="${RUNS:-3}"
bin="${REEF_NODE:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build -q --release -p reef-node --bin reef-node)
    bin="$target/release/reef-node"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/export"
head -c 1073741824 /dev/urandom > "$work/export/big.bin"

# Writes the three nodes' configurations with `stream` and starts them.
start() {
    local stream="$1"
    local common="
[[sites]]
name = \"t0\"
id = 0
[[namespaces]]
name = \"bench\"
origins = [1]
EXPORT
[[peers]]
id = 1
role = \"origin\"
site = \"t0\"
url = \"http://127.0.0.1:19500\"
[[peers]]
id = 11
role = \"cache\"
site = \"t0\"
url = \"http://127.0.0.1:19511\"
[[peers]]
id = 12
role = \"cache\"
site = \"t0\"
url = \"http://127.0.0.1:19512\"
"
    local export_line="export = \"$work/export\""
    printf '[node]\nid = 1\nrole = "origin"\nlisten = "127.0.0.1:19500"\nsite = "t0"\n%s\n' \
        "${common/EXPORT/$export_line}" > "$work/origin.toml"
    for id in 11 12; do
        local parent=""
        [[ $id == 12 ]] && parent=$'discovery = "parent"\n'
        local parents=""
        [[ $id == 12 ]] && parents=$'[discovery]\nparents = [11]\n'
        rm -rf "$work/store$id"
        printf '[node]\nid = %s\nrole = "cache"\nlisten = "127.0.0.1:195%s"\nsite = "t0"\nstore = "%s"\ncapacity = "4GiB"\n[policy]\nstream = %s\n%s%s%s\n' \
            "$id" "$id" "$work/store$id" "$stream" "$parent" "$parents" "${common/EXPORT/}" > "$work/cache$id.toml"
    done
    for cfg in origin cache11 cache12; do
        RUST_LOG=error "$bin" --config "$work/$cfg.toml" 2>>"$work/$cfg.log" & pids+=($!)
    done
    for port in 19500 19511 19512; do
        for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    done
}

stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

# The origin computes its block list once per file version; warm it so that the runs measure
# the caches, not the origin's first hash of the file.
for stream in true false; do
    echo "== cold 1 GiB through two tiers, stream = $stream: first byte / last byte (s)"
    for _ in $(seq "$runs"); do
        start "$stream"
        curl -fs -o /dev/null "http://127.0.0.1:19500/.reef/v1/blocks/bench/big.bin"
        curl -fs -o /dev/null -w '%{time_starttransfer} %{time_total}\n' "http://127.0.0.1:19512/bench/big.bin"
        stop
    done
done

echo "== 1 GiB hits at the Tier-2 cache (MB/s), blocks checked as they are sent"
start true
curl -fs -o /dev/null "http://127.0.0.1:19512/bench/big.bin"
sleep 1
for _ in $(seq "$runs"); do
    curl -fs -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:19512/bench/big.bin" |
        awk '{printf "%.0f\n", $1 / 1e6}'
done
stop
