#!/usr/bin/env bash
# Cache hits, reef-node versus nginx as a caching reverse proxy, both in front of the same
# reef-node origin, on loopback. Not a test: it prints numbers for the README.
#
#   node/bench/compare-nginx.sh            (needs wrk, nginx, curl; builds reef-node --release)
#   REEF_NODE=path/to/reef-node DURATION=10s CONNECTIONS=64 ROUNDS=3 node/bench/compare-nginx.sh
#   REEF_NODE_B=path/to/other/reef-node ...  (also measures a second binary, e.g. the previous one)
#
# Measures: requests/s for 4 KiB hits (wrk), throughput of a 1 GiB hit (curl) next to the origin
# serving the same file, and the cache's resident memory sampled while it streams the 1 GiB
# object (flat means no whole-object buffering).
# Per core: every cache (reef-node, nginx with one worker) is pinned to core 0 and the client to
# core 1 (wrk -t1); the servers take turns, ROUNDS times, so each round compares them in the
# same machine state.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-64}"
rounds="${ROUNDS:-3}"
bin_b="${REEF_NODE_B:-}"
for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx curl)" >&2; exit 1; }
done
bin="${REEF_NODE:-}"
if [[ -z "$bin" ]]; then
    (cd "$repo" && cargo build -q --release -p reef-node --bin reef-node)
    bin="$target/release/reef-node"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -f "$work/nginx/nginx.pid" ]] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/export" "$work/nginx/cache"
head -c 4096 /dev/urandom > "$work/export/small.bin"
head -c 1073741824 /dev/urandom > "$work/export/big.bin"

peers='
[[sites]]
name = "t0"
id = 0

[[namespaces]]
name = "bench"
origins = [1]
EXPORT

[[peers]]
id = 1
role = "origin"
site = "t0"
url = "http://127.0.0.1:19400"

# A node talks only to its configured peers: the origin must know the caches.
[[peers]]
id = 11
role = "cache"
site = "t0"
url = "http://127.0.0.1:19411"

[[peers]]
id = 12
role = "cache"
site = "t0"
url = "http://127.0.0.1:19412"
'
export_line="export = \"$work/export\""
origin_tail="${peers/EXPORT/$export_line}"
cache_tail="${peers/EXPORT/}"
cat > "$work/origin.toml" <<TOML
[node]
id = 1
role = "origin"
listen = "127.0.0.1:19400"
site = "t0"
$origin_tail
TOML
for id in 11 12; do
    cat > "$work/cache$id.toml" <<TOML
[node]
id = $id
role = "cache"
listen = "127.0.0.1:194$id"
site = "t0"
store = "$work/store$id"
capacity = "4GiB"
access_log = "$work/cache$id-access.log"
$cache_tail
TOML
done
# Run as root (the usual case on this machine), nginx's workers would drop to `nobody` and could
# not write into the private temp dir: every "hit" would then be a proxied miss.
user_line=""
[[ "$(id -u)" == 0 ]] && user_line="user root;"
cat > "$work/nginx/nginx.conf" <<CONF
$user_line
daemon on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    proxy_cache_path $work/nginx/cache levels=1:2 keys_zone=bench:64m max_size=4g inactive=1h use_temp_path=off;
    server {
        listen 127.0.0.1:19480;
        location / {
            proxy_pass http://127.0.0.1:19400;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }
}
CONF

RUST_LOG=warn taskset -c 0 "$bin" --config "$work/origin.toml" 2>"$work/origin.log" & pids+=($!)
RUST_LOG=warn taskset -c 0 "$bin" --config "$work/cache11.toml" 2>"$work/cache11.log" & pids+=($!)
cache_pid=$!
caches=(reef:19411 nginx:19480)
if [[ -n "$bin_b" ]]; then
    RUST_LOG=warn taskset -c 0 "$bin_b" --config "$work/cache12.toml" 2>"$work/cache12.log" & pids+=($!)
    caches=(reef:19411 reef-b:19412 nginx:19480)
fi
taskset -c 0 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
for name in origin:19400 "${caches[@]}"; do
    for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:${name#*:}/bench/small.bin" && break; sleep 0.1; done
done

echo "== warming the caches"
for name in "${caches[@]}"; do
    port="${name#*:}"
    curl -fs -o /dev/null "http://127.0.0.1:$port/bench/small.bin"
    curl -fs -o /dev/null "http://127.0.0.1:$port/bench/big.bin"
    curl -fs -o /dev/null "http://127.0.0.1:$port/bench/big.bin"
done
curl -fsI "http://127.0.0.1:19411/bench/big.bin" | grep -i cache-status
curl -fsI "http://127.0.0.1:19480/bench/big.bin" | grep -i x-cache-status

echo "== 4 KiB hits: servers on core 0, wrk -t1 -c$connections -d$duration on core 1, $rounds rounds"
for round in $(seq "$rounds"); do
    line="round $round:"
    for name in "${caches[@]}"; do
        rps="$(taskset -c 1 wrk -t1 -c"$connections" -d"$duration" "http://127.0.0.1:${name#*:}/bench/small.bin" | awk '/Requests\/sec/ {print $2}')"
        line="$line ${name%%:*} $rps"
    done
    echo "$line req/s"
done

echo "== 1 GiB hits: curl, 3 runs each (MB/s); the origin itself read the same way first"
rss_log="$work/rss"
for name in origin:19400 "${caches[@]}"; do
    if [[ "${name%%:*}" == reef ]]; then
        (while kill -0 "$cache_pid" 2>/dev/null; do ps -o rss= -p "$cache_pid" >> "$rss_log"; sleep 0.2; done) &
        sampler=$!
    fi
    for _ in 1 2 3; do
        speed="$(curl -fs -o /dev/null -w '%{speed_download}' "http://127.0.0.1:${name#*:}/bench/big.bin")"
        echo "${name%%:*} 1GiB: $(awk -v s="$speed" 'BEGIN {printf "%.0f", s / 1e6}') MB/s"
    done
    if [[ "${name%%:*}" == reef ]]; then
        kill "$sampler" 2>/dev/null || true
        echo "reef cache RSS while streaming 1 GiB: min $(sort -n "$rss_log" | head -1) KiB, max $(sort -n "$rss_log" | tail -1) KiB"
    fi
done
