#!/usr/bin/env bash
# Getting data in and reading it through the mount, side by side in one run (TLS, a real token
# issuer, origin and cache pinned to core 0, clients on core 1), each round:
#   put       `reef put` of a SIZE file (hashing pass, then the upload) into the origin
#   curl -T   the same upload with curl (no checksum, no resume): the anchor
#   get       `reef get` of a cached object through the cache (checksum verified)
#   mount     `cat` of the same object through `reef mount` (its block cache emptied first),
#             reading via the same cache, every block checked
#   mount-warm the same again, now from the mount's block cache
# Not a test: it prints MB/s. Needs openssl, python3, curl, /dev/fuse and root for the mount.
#
#   node/bench/ingest-mount.sh [BIN_DIR] [ROUNDS] [SIZE_MIB]
set -euo pipefail
bindir="${1:-}"; rounds="${2:-3}"; mib="${3:-1024}"
if [[ -z "$bindir" ]]; then
    cargo build -q --release -p reef-node --bins
    bindir="${CARGO_TARGET_DIR:-target}/release"
fi
work="$(mktemp -d)"
pids=()
mnt="$work/mnt"
cleanup() {
    umount -l "$mnt" 2>/dev/null || true
    kill "${pids[@]}" 2>/dev/null || true
    [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT
source "$(dirname "$0")/issuer.sh"

"$bindir/reef-node" ca init --dir "$work/fed" >/dev/null
for id in 1 11; do "$bindir/reef-node" ca issue --dir "$work/fed" --id "$id" --host 127.0.0.1 >/dev/null; done
start_issuer "$work" 19690
sign_token "storage.create:/ storage.read:/" > "$work/token"
ca="$work/fed/ca.pem"
mkdir -p "$work/atlas" "$mnt"
for id in 1 11; do
    role=origin; port=19700; extra="export = \"$work/atlas\""
    [[ $id == 11 ]] && role=cache && port=19701 && extra=""
    store=""; [[ $id == 11 ]] && store="store = \"$work/store\"
capacity = \"8GiB\""
    cat > "$work/n$id.toml" <<TOML
[node]
id = $id
role = "$role"
listen = "127.0.0.1:$port"
site = "t0"
$store
[tls]
ca = "$ca"
cert = "$work/fed/node-$id.pem"
key = "$work/fed/node-$id.key"
[[sites]]
name = "t0"
id = 0
[[issuers]]
issuer = "$issuer"
audiences = ["reef"]
[[namespaces]]
name = "atlas"
origins = [1]
$extra
[[peers]]
id = 1
role = "origin"
site = "t0"
url = "https://127.0.0.1:19700"
[[peers]]
id = 11
role = "cache"
site = "t0"
url = "https://127.0.0.1:19701"
TOML
    RUST_LOG=error taskset -c 0 "$bindir/reef-node" --config "$work/n$id.toml" 2>/dev/null & pids+=($!)
done
for p in 19700 19701; do
    for _ in $(seq 100); do curl -fs -o /dev/null --cacert "$ca" "https://127.0.0.1:$p/healthz" && break; sleep 0.1; done
done
head -c "$((mib << 20))" /dev/urandom > "$work/file.bin"

# Seconds a command takes, on core 1.
timed() {
    local start end
    start="$(date +%s.%N)"
    taskset -c 1 "$@" >/dev/null 2>&1
    end="$(date +%s.%N)"
    echo "$end - $start" | bc -l
}
rate() { printf '%-10s %8.0f MB/s\n' "$1" "$(echo "$mib * 1.048576 / $2" | bc -l)"; }

# The object read back: uploaded once, then cached by one read through the cache.
"$bindir/reef" put "$work/file.bin" "https://127.0.0.1:19700/atlas/read.bin" --ca "$ca" --token-file "$work/token" 2>/dev/null
"$bindir/reef" get "https://127.0.0.1:19701/atlas/read.bin" -o "$work/warm.bin" --ca "$ca" 2>/dev/null
for r in $(seq "$rounds"); do
    echo "round $r"
    rate put "$(timed "$bindir/reef" put "$work/file.bin" "https://127.0.0.1:19700/atlas/put-$r.bin" --ca "$ca" --token-file "$work/token")"
    rate "curl -T" "$(timed curl -fs --http1.1 --cacert "$ca" -H "Authorization: Bearer $(cat "$work/token")" -T "$work/file.bin" "https://127.0.0.1:19700/atlas/curl-$r.bin")"
    rate get "$(timed "$bindir/reef" get "https://127.0.0.1:19701/atlas/read.bin" -o "$work/got.bin" --ca "$ca")"
    rm -rf "$work/blocks"
    taskset -c 1 "$bindir/reef" mount atlas "$mnt" --origin https://127.0.0.1:19700 --via https://127.0.0.1:19701 \
        --ca "$ca" --cache-dir "$work/blocks" 2>/dev/null & mpid=$!
    for _ in $(seq 100); do grep -q " $mnt " /proc/mounts && break; sleep 0.1; done
    rate mount "$(timed cat "$mnt/read.bin")"
    rate mount-warm "$(timed cat "$mnt/read.bin")"
    kill "$mpid"; wait "$mpid" || true
done
