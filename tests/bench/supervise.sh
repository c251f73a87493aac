#!/usr/bin/env bash
# Supervision benchmark (issue: supervision). Uses the example server and wrk (Debian package) on 127.0.0.1:
#   1. rolling restarts (SIGHUP) of every worker under load, shared vs reuseport: failed requests and p99
#      latency during the restarts beside a steady run;
#   2. restart latency: how long a slot stays empty between a worker's death and its replacement's exec,
#      minus the configured delay (fixture tests/fixtures/stamp_worker.cpp).
# usage: tests/bench/supervise.sh [BUILD_DIR]     (default build/; build it first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
preforkctl="$build/src/preforkctl"
server="$build/examples/hello_server"
port=18991
workers=2
log=$(mktemp -d)
. tests/bench/lib.sh
trap 'stop_example; rm -rf "$log"' EXIT  # a benchmark that fails half-way leaves nothing running
command -v wrk >/dev/null || bash contrib/install-deps.sh wrk

start() { start_example "$1" --ready delay:100ms; }
stop() { stop_example; }

summary() {  # summary WRK_OUTPUT -> "N requests, errors ..., non-2xx N, p99 X"
    local requests errors non2xx p99
    requests=$(awk '/requests in/ {print $1}' "$1")
    errors=$(grep -o 'Socket errors:.*' "$1" || echo 'Socket errors: none')
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$1")
    p99=$(awk '$1 == "99%" {print $2}' "$1")
    printf '%s requests, %s, non-2xx %s, p99 %s' "$requests" "$errors" "${non2xx:-0}" "$p99"
}

echo "== rolling restarts under load (wrk -t2 -c32 --latency, keep-alive; $workers workers, --ready delay:100ms)"
for mode in shared reuseport; do
    start "$mode"
    wrk -t2 -c32 -d5s --latency "http://127.0.0.1:$port/" >"$log/steady"
    wrk -t2 -c32 -d12s --latency "http://127.0.0.1:$port/" >"$log/reload" &
    wrk_pid=$!
    sleep 1
    for _ in $(seq 5); do
        kill -HUP "$pf"
        sleep 2
    done
    wait "$wrk_pid"
    done_count=$(grep -c 'rolling restart done' "$log/err" || true)
    stop
    printf '%-9s steady:            %s\n' "$mode" "$(summary "$log/steady")"
    printf '%-9s 5 rolling restarts: %s (%s completed)\n' "$mode" "$(summary "$log/reload")" "$done_count"
done

bash tests/bench/restart_latency.sh "$build"
