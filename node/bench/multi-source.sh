#!/usr/bin/env bash
# Multi-source fetch: a cold 1 GiB object fetched by a cache from one origin, and by a cache
# that splits the fill across three origins (`policy.multi_source_min`), each origin's uplink
# shaped to RATE (htb on the loopback, by source port). Side by side in the same run, RUNS
# times, a new object name (a hard link to the same file) each time. Not a test: it prints
# numbers for the README. Needs root (tc) and curl.
#
#   node/bench/multi-source.sh               (builds reef-node --release)
#   REEF_NODE=path/to/reef-node RUNS=3 RATE=400mbit node/bench/multi-source.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
runs="${RUNS:-3}"
rate="${RATE:-400mbit}"
bin="${REEF_NODE:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build -q --release -p reef-node --bin reef-node)
    bin="$target/release/reef-node"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    tc qdisc del dev lo root 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
failed() { tail -n 5 "$work"/n*.log >&2; }
trap failed ERR
mkdir -p "$work/export"
head -c 1073741824 /dev/urandom > "$work/export/big.bin"
for i in $(seq 1 "$runs"); do ln "$work/export/big.bin" "$work/export/big-$i.bin"; done

common="
[[sites]]
name = \"t0\"
id = 0
[[namespaces]]
name = \"bench\"
origins = [1, 2, 3]
EXPORT
"
for id in 1 2 3 11 12; do
    role=cache
    [[ $id -lt 10 ]] && role=origin
    common+="
[[peers]]
id = $id
role = \"$role\"
site = \"t0\"
url = \"http://127.0.0.1:196$(printf %02d $id)\"
"
done
for id in 1 2 3; do
    printf '[node]\nid = %s\nrole = "origin"\nlisten = "127.0.0.1:196%02d"\nsite = "t0"\n%s\n' \
        "$id" "$id" "${common/EXPORT/export = \"$work/export\"}" > "$work/n$id.toml"
done
for id in 11 12; do
    split=""
    [[ $id == 12 ]] && split='multi_source_min = "64MiB"'
    printf '[node]\nid = %s\nrole = "cache"\nlisten = "127.0.0.1:196%s"\nsite = "t0"\nstore = "%s"\ncapacity = "20GiB"\n[policy]\nfetch_timeout = "10s"\n%s\n%s\n' \
        "$id" "$id" "$work/store-$id" "$split" "${common/EXPORT/}" > "$work/n$id.toml"
done
for id in 1 2 3 11 12; do
    "$bin" --config "$work/n$id.toml" 2> "$work/n$id.log" &
    pids+=($!)
done
for port in 19601 19602 19603 19611 19612; do
    for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
done
# Each origin computes a file's block list once: not part of what is measured.
for i in $(seq 1 "$runs"); do
    for port in 19601 19602 19603; do
        curl -sf "http://127.0.0.1:$port/.reef/v1/blocks/bench/big-$i.bin" -o /dev/null
    done
done

tc qdisc add dev lo root handle 1: htb default 99
tc class add dev lo parent 1: classid 1:99 htb rate 100gbit quantum 65536
for id in 1 2 3; do
    tc class add dev lo parent 1: classid "1:$id" htb rate "$rate" ceil "$rate" quantum 65536
    tc filter add dev lo protocol ip parent 1: prio 1 u32 match ip sport "$((19600 + id))" 0xffff flowid "1:$id"
done

echo "1 GiB cold, each origin's uplink at $rate (seconds; single source, then split over three origins)"
for i in $(seq 1 "$runs"); do
    one=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:19611/bench/big-$i.bin")
    three=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:19612/bench/big-$i.bin")
    echo "run $i: one source ${one}s, three sources ${three}s"
done
echo "splits: $(curl -s http://127.0.0.1:19612/metrics | grep '^reef_split_fills_total' || echo none)"
