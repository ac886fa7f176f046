#!/usr/bin/env bash
# The cost of TLS and of token checks on 4 KiB cache hits, side by side in one run: one cache
# pinned to core 0, wrk pinned to core 1 (-t1 -c64, keep-alive: the handshakes are amortised),
# warmed, in three setups that alternate each round:
#   plain   HTTP, public namespace
#   tls     HTTPS (mutual TLS between the nodes, users without certificates), public namespace
#   token   HTTPS, private namespace, every request with an RS256 bearer token (a real issuer:
#           python3's http.server publishing the JWKS; the token signed with openssl)
# Not a test: it prints requests/s. Needs wrk, openssl, python3.
#
#   node/bench/tls-cost.sh [REEF_NODE_BINARY] [ROUNDS] [SECONDS]
set -euo pipefail
bin="${1:-}"; rounds="${2:-3}"; secs="${3:-10}"
if [[ -z "$bin" ]]; then
    cargo build -q --release -p reef-node --bin reef-node
    bin="${CARGO_TARGET_DIR:-target}/release/reef-node"
fi
work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
source "$(dirname "$0")/issuer.sh"

# The federation and the issuer.
"$bin" ca init --dir "$work/fed" >/dev/null
for id in 1 11; do "$bin" ca issue --dir "$work/fed" --id "$id" --host 127.0.0.1 >/dev/null; done
start_issuer "$work" 19590
token="$(sign_token "storage.read:/")"

mkdir -p "$work/atlas" "$work/cms"
for i in $(seq 0 99); do
    head -c 4096 /dev/urandom > "$work/atlas/f$i"
    cp "$work/atlas/f$i" "$work/cms/f$i"
done
# wrk: one of 100 objects per request.
cat > "$work/paths.lua" <<'LUA'
local i = 0
request = function()
    i = (i + 1) % 100
    return wrk.format("GET", prefix .. "/f" .. i)
end
LUA

# Starts origin and cache, plain or TLS, on ports $2 (origin) and $2+1 (cache).
start() {
    local mode="$1" port="$2" scheme="http" tls=""
    if [[ "$mode" != plain ]]; then
        scheme="https"
        tls="[tls]
ca = \"$work/fed/ca.pem\"
cert = \"$work/fed/node-ID.pem\"
key = \"$work/fed/node-ID.key\""
    fi
    local common="[[sites]]
name = \"t0\"
id = 0
[[issuers]]
issuer = \"$issuer\"
audiences = [\"reef\"]
[[namespaces]]
name = \"atlas\"
origins = [1]
EXPORT_ATLAS
[[namespaces]]
name = \"cms\"
origins = [1]
PRIVATE
EXPORT_CMS
[[peers]]
id = 1
role = \"origin\"
site = \"t0\"
url = \"$scheme://127.0.0.1:$port\"
[[peers]]
id = 11
role = \"cache\"
site = \"t0\"
url = \"$scheme://127.0.0.1:$((port + 1))\""
    [[ "$mode" == plain ]] && common="${common/PRIVATE/}" || common="${common/PRIVATE/private = true}"
    local origin_common="${common/EXPORT_ATLAS/export = \"$work/atlas\"}"
    origin_common="${origin_common/EXPORT_CMS/export = \"$work/cms\"}"
    local cache_common="${common/EXPORT_ATLAS/}"
    cache_common="${cache_common/EXPORT_CMS/}"
    printf '[node]\nid = 1\nrole = "origin"\nlisten = "127.0.0.1:%s"\nsite = "t0"\n%s\n%s\n' \
        "$port" "${tls//ID/1}" "$origin_common" > "$work/origin-$mode.toml"
    printf '[node]\nid = 11\nrole = "cache"\nlisten = "127.0.0.1:%s"\nsite = "t0"\nstore = "%s"\ncapacity = "1GiB"\n%s\n%s\n' \
        "$((port + 1))" "$work/store-$mode" "${tls//ID/11}" "$cache_common" > "$work/cache-$mode.toml"
    RUST_LOG=error taskset -c 0 "$bin" --config "$work/origin-$mode.toml" 2>/dev/null & pids+=($!)
    RUST_LOG=error taskset -c 0 "$bin" --config "$work/cache-$mode.toml" 2>/dev/null & pids+=($!)
    for p in "$port" "$((port + 1))"; do
        for _ in $(seq 100); do
            curl -fs -o /dev/null --cacert "$work/fed/ca.pem" "$scheme://127.0.0.1:$p/healthz" && break
            sleep 0.1
        done
    done
}

run() {
    local name="$1" url="$2" prefix="$3"; shift 3
    # Warm: every object cached (and the token's claims memoised).
    for i in $(seq 0 99); do curl -fsk -o /dev/null "$@" "$url$prefix/f$i"; done
    local rps
    rps="$(taskset -c 1 wrk -t1 -c64 -d"${secs}s" -s "$work/paths.lua" "$@" "$url" \
        --latency -- 2>/dev/null | awk '/Requests\/sec/ {print $2}')"
    printf '%-6s %10.0f req/s\n' "$name" "$rps"
}

start plain 19600
start tls 19610
sed -i "1i prefix = \"/atlas\"" "$work/paths.lua"
cp "$work/paths.lua" "$work/atlas.lua"
sed "1s|.*|prefix = \"/cms\"|" "$work/paths.lua" > "$work/cms.lua"
for r in $(seq "$rounds"); do
    echo "round $r"
    cp "$work/atlas.lua" "$work/paths.lua"
    run plain "http://127.0.0.1:19601" /atlas
    run tls "https://127.0.0.1:19611" /atlas
    cp "$work/cms.lua" "$work/paths.lua"
    run token "https://127.0.0.1:19611" /cms -H "Authorization: Bearer $token"
done
