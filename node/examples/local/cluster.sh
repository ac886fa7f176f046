#!/usr/bin/env bash
# Starts or stops the local example cluster: one origin, two sites with two caches each, one
# director, on fixed loopback ports 18400-18430. State lives in ./data next to this script.
#
#   ./cluster.sh start    build reef-node if needed, start every node, wait until all answer
#   ./cluster.sh stop     stop every node started by `start` (SIGTERM, then wait)
#   ./cluster.sh status   show which nodes answer /healthz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nodes=(origin cache-a1 cache-a2 cache-b1 cache-b2 director)
port_of() { grep -m1 '^listen' "$here/$1.toml" | sed -E 's/.*:([0-9]+)".*/\1/'; }

start() {
    local bin="${REEF_NODE:-}"
    if [[ -z "$bin" ]]; then
        (cd "$here/../../.." && cargo build -q -p reef-node --bin reef-node)
        bin="${CARGO_TARGET_DIR:-$here/../../../target}/debug/reef-node"
    fi
    mkdir -p "$here/data/origin/atlas"
    [[ -e "$here/data/origin/atlas/hello.txt" ]] || echo "hello from the origin" > "$here/data/origin/atlas/hello.txt"
    for n in "${nodes[@]}"; do
        mkdir -p "$here/data/$n"
        "$bin" --config "$here/$n.toml" 2>"$here/data/$n/node.log" &
        echo $! > "$here/data/$n/pid"
    done
    for n in "${nodes[@]}"; do
        local port; port="$(port_of "$n")"
        for _ in $(seq 100); do
            curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
            sleep 0.1
        done
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "$n did not start; see data/$n/node.log" >&2; exit 1; }
        echo "$n up on 127.0.0.1:$port"
    done
    echo "try: curl -L http://127.0.0.1:18430/atlas/hello.txt?site=site-a"
}

stop() {
    for n in "${nodes[@]}"; do
        local f="$here/data/$n/pid"
        [[ -f "$f" ]] || continue
        local pid; pid="$(cat "$f")"
        if kill "$pid" 2>/dev/null; then
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
            echo "$n stopped"
        fi
        rm -f "$f"
    done
}

status() {
    for n in "${nodes[@]}"; do
        local port; port="$(port_of "$n")"
        if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null; then echo "$n up"; else echo "$n down"; fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
