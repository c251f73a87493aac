#!/usr/bin/env bash
# Socket-mode benchmark (issue: sockets). Runs the example server under preforkctl on 127.0.0.1 and drives
# it with wrk (Debian package):
#   1. distribution: short connections (Connection: close) per worker, max/min, shared vs reuseport;
#   2. restarts: one worker killed every second for 20 s under load, errors per mode and signal.
# usage: tests/bench/sockets.sh [BUILD_DIR]     (default build/; build it first: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
preforkctl="$build/src/preforkctl"
server="$build/examples/hello_server"
port=18990
workers=2
duration=10
log=$(mktemp -d)
. tests/bench/lib.sh
trap 'stop_example; rm -rf "$log"' EXIT  # a benchmark that fails half-way leaves nothing running
command -v wrk >/dev/null || bash contrib/install-deps.sh wrk

start() { start_example "$1" --backoff 10ms..1s; }
stop() { stop_example; }

workers_of() {  # direct children of preforkctl that lead their own process group
    for pid in $(pgrep -P "$pf"); do
        [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ] && echo "$pid"
    done
}

echo "== distribution of short connections (wrk -t2 -c64 -d${duration}s, Connection: close, $workers workers)"
for mode in shared reuseport; do
    start "$mode"
    wrk -t2 -c64 -d"${duration}s" -H 'Connection: close' "http://127.0.0.1:$port/" >"$log/wrk"
    stop
    # Each worker prints "... stopping after N connections" when it exits.
    counts=$(grep -o 'stopping after [0-9]* connections' "$log/out" | awk '{print $3}' | sort -n | tr '\n' ' ')
    min=$(echo "$counts" | awk '{print $1}')
    max=$(echo "$counts" | awk '{print $NF}')
    rps=$(awk '/Requests\/sec/ {print $2}' "$log/wrk")
    ratio=$(awk -v a="$max" -v b="$min" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "inf" }')
    printf '%-9s connections per worker: %s max/min %s  (%s req/s)\n' "$mode" "$counts" "$ratio" "$rps"
done

echo "== one worker killed every second for 20 s under load (wrk -t2 -c64 -d22s, Connection: close)"
for mode in shared reuseport; do
    for sig in TERM KILL; do
        start "$mode"
        wrk -t2 -c64 -d22s -H 'Connection: close' "http://127.0.0.1:$port/" >"$log/wrk" &
        wrk_pid=$!
        sleep 1
        for _ in $(seq 20); do
            victim=$(workers_of | sed -n 1p)  # sed reads everything: no SIGPIPE under pipefail
            [ -n "$victim" ] && kill "-$sig" "$victim"
            sleep 1
        done
        wait "$wrk_pid"
        stop
        requests=$(awk '/requests in/ {print $1}' "$log/wrk")
        errors=$(grep -o 'Socket errors:.*' "$log/wrk" || echo 'Socket errors: none')
        non2xx=$(awk '/Non-2xx/ {print $NF}' "$log/wrk")
        restarts=$(grep -c 'restarting in' "$log/err" || true)
        printf '%-9s SIG%-4s %s requests, %s restarts, %s, non-2xx %s\n' "$mode" "$sig" "$requests" "$restarts" \
            "$errors" "${non2xx:-0}"
    done
done
