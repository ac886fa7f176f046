#!/usr/bin/env bash
# 1 GiB cache hits of two reef-node binaries, side by side: the cache pinned to core 0, curl to
# core 1, the binaries alternating, five reads each per round. Not a test: it prints MB/s.
#
#   node/bench/hits-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]
set -euo pipefail
old="$1"; new="$2"; rounds="${3:-2}"
work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/export"
head -c 1073741824 /dev/urandom > "$work/export/big.bin"

# Runs origin and cache of binary $1 on ports $2x, prints five reads of the cached object.
reads() {
    local bin="$1" base="$2" dir="$work/$2"
    mkdir -p "$dir"
    local common="[[sites]]
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
url = \"http://127.0.0.1:${base}0\"
[[peers]]
id = 11
role = \"cache\"
site = \"t0\"
url = \"http://127.0.0.1:${base}1\""
    printf '[node]\nid = 1\nrole = "origin"\nlisten = "127.0.0.1:%s0"\nsite = "t0"\n%s\n' \
        "$base" "${common/EXPORT/export = \"$work/export\"}" > "$dir/origin.toml"
    printf '[node]\nid = 11\nrole = "cache"\nlisten = "127.0.0.1:%s1"\nsite = "t0"\nstore = "%s/store"\ncapacity = "4GiB"\n%s\n' \
        "$base" "$dir" "${common/EXPORT/}" > "$dir/cache.toml"
    RUST_LOG=error taskset -c 0 "$bin" --config "$dir/origin.toml" 2>/dev/null & pids+=($!)
    RUST_LOG=error taskset -c 0 "$bin" --config "$dir/cache.toml" 2>/dev/null & pids+=($!)
    for port in "${base}0" "${base}1"; do
        for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    done
    curl -fs -o /dev/null "http://127.0.0.1:${base}1/bench/big.bin"
    sleep 1
    for _ in 1 2 3 4 5; do
        taskset -c 1 curl -fs -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:${base}1/bench/big.bin" |
            awk '{printf "%.0f ", $1 / 1e6}'
    done
    echo
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    pids=()
    rm -rf "$dir"
}

for _ in $(seq "$rounds"); do
    echo -n "old MB/s: "; reads "$old" 1960
    echo -n "new MB/s: "; reads "$new" 1970
done
