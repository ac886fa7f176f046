#!/usr/bin/env bash
# Starts or stops the local example cluster: one origin, two sites with two caches each, one
# director, on fixed loopback ports 18400-18430, all over TLS (mutual TLS between nodes). The
# federation's CA and one certificate per node are made on the first start (data/fed). State
# lives in ./data next to this script. REEF_NODE names a reef-node binary to use instead of
# building one.
#
#   ./cluster.sh start    build reef-node if needed, start every node, wait until all answer
#   ./cluster.sh stop     stop every node started by `start` (SIGTERM, then wait)
#   ./cluster.sh status   show which nodes answer /healthz
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nodes=(origin cache-a1 cache-a2 cache-b1 cache-b2 director)
port_of() { grep -m1 '^listen' "$here/$1.toml" | sed -E 's/.*:([0-9]+)".*/\1/'; }
id_of() { grep -m1 '^id' "$here/$1.toml" | sed -E 's/[^0-9]//g'; }
fed="$here/data/fed"
healthy() { curl -fs --cacert "$fed/ca.pem" "https://127.0.0.1:$1/healthz" >/dev/null; }

start() {
    local bin="${REEF_NODE:-}"
    if [[ -z "$bin" ]]; then
        (cd "$here/../../.." && cargo build -q -p reef-node --bin reef-node)
        bin="${CARGO_TARGET_DIR:-$here/../../../target}/debug/reef-node"
    fi
    # The federation: a CA, and a certificate per node naming its id and 127.0.0.1.
    if [[ ! -e "$fed/ca.pem" ]]; then
        "$bin" ca init --dir "$fed" >/dev/null
        for n in "${nodes[@]}"; do
            "$bin" ca issue --dir "$fed" --id "$(id_of "$n")" --host 127.0.0.1 --host localhost >/dev/null
        done
    fi
    mkdir -p "$here/data/origin/atlas"
    [[ -e "$here/data/origin/atlas/hello.txt" ]] || echo "hello from the origin" > "$here/data/origin/atlas/hello.txt"
    for n in "${nodes[@]}"; do
        mkdir -p "$here/data/$n"
        # Detached: a session of its own (no SIGHUP when the terminal closes), and stdin and
        # stdout closed (a caller reading this script's output through a pipe gets EOF).
        setsid "$bin" --config "$here/$n.toml" </dev/null >/dev/null 2>"$here/data/$n/node.log" &
        echo $! > "$here/data/$n/pid"
    done
    for n in "${nodes[@]}"; do
        local port; port="$(port_of "$n")"
        for _ in $(seq 100); do
            healthy "$port" && break
            sleep 0.1
        done
        healthy "$port" || { echo "$n did not start; see data/$n/node.log" >&2; exit 1; }
        echo "$n up on 127.0.0.1:$port"
    done
    echo "try: curl --cacert $fed/ca.pem -L https://127.0.0.1:18430/atlas/hello.txt?site=site-a"
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
        if healthy "$port"; then echo "$n up"; else echo "$n down"; fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
