#!/usr/bin/env bash
# ctl upgrade (SPEC §14; goal: the event loop away for less than 20 ms). Two figures:
#  1. The time the loop is away: from the moment preforkctl takes up the upgrade request (the check-only run of
#     the new binary is synchronous, so it counts) to the first event of the new image's loop, as the new
#     image reports it ("..., T ms away", CLOCK_MONOTONIC on both sides), at n=2 and n=64 workers of the
#     example server, UPGRADES upgrades each: min, median, max.
#  2. The request latency spike: wrk -t2 -c32 --latency, a fresh connection per request, on n=2 workers for
#     SECONDS, once without and once with an upgrade every 0.5 s: p50, p99, max and errors of both.
# usage: tests/bench/upgrade.sh [BUILD_DIR] [UPGRADES] [SECONDS]   (default build/, 20, 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
upgrades="${2:-20}"
duration="${3:-10}"
preforkctl="$(realpath "$build/src/preforkctl")"
server="$build/examples/hello_server"
port=18996
name=bench-upgrade
log=$(mktemp -d)
export XDG_RUNTIME_DIR="$log"
command -v wrk >/dev/null || { echo "wrk is missing (package wrk)" >&2; exit 1; }
pf=
source tests/bench/lib.sh  # stop_example
trap 'stop_example; rm -rf "$log"' EXIT

start() {
    "$preforkctl" --name "$name" -n "$1" -l "127.0.0.1:$port" -- "$server" >"$log/out" 2>"$log/err" &
    pf=$!
    for _ in $(seq 400); do
        "$preforkctl" ctl --name "$name" status 2>/dev/null | grep -q "workers $1 ($1 ready)" && return 0
        sleep 0.05
    done
    echo "preforkctl did not start" >&2
    cat "$log/err" >&2
    exit 1
}

# away N: the loop-away times of UPGRADES upgrades at N workers.
away() {
    start "$1"
    local times=()
    for _ in $(seq "$upgrades"); do
        times+=("$("$preforkctl" ctl --name "$name" upgrade | sed -n 's/.*, \([0-9.]*\) ms away.*/\1/p')")
        sleep 0.1
    done
    stop_example
    printf '%s\n' "${times[@]}" | sort -g | awk -v n="$1" '
        { v[NR] = $1 }
        END { printf "n=%-3d loop away over %d upgrades: min %.1f ms, median %.1f ms, max %.1f ms\n",
              n, NR, v[1], v[int((NR + 1) / 2)], v[NR] }'
}

# latency WITH_UPGRADES: one wrk run at 2 workers, with or without upgrades every 0.5 s during it.
latency() {
    start 2
    local upgrader=
    if [ "$1" = yes ]; then
        (sleep 0.5; while :; do "$preforkctl" ctl --name "$name" upgrade >/dev/null 2>&1 || true; sleep 0.5; done) &
        upgrader=$!
    fi
    wrk -t2 -c32 -d"${duration}s" --latency -H 'Connection: close' "http://127.0.0.1:$port/" >"$log/wrk" 2>&1
    [ -n "$upgrader" ] && { kill "$upgrader"; wait "$upgrader" 2>/dev/null || true; }
    local done_upgrades
    done_upgrades=$(grep -c 'upgraded in place from' "$log/err" || true)
    stop_example
    awk -v label="$2" -v u="$done_upgrades" '
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 } /Latency/ && !max { max = $4 }
        /requests in/ { requests = $1 } /Socket errors/ { errors = $0 } /Non-2xx/ { non2xx = $NF }
        END { printf "%-16s %s requests, p50 %s, p99 %s, max %s, %d upgrades, errors: %s%s\n", label, requests,
              p50, p99, max, u, errors == "" ? "none" : errors, non2xx == "" ? "" : ", non-2xx " non2xx }' "$log/wrk"
}

echo "ctl upgrade benchmark: example server, $(nproc) CPUs, $("$preforkctl" -V)"
away 2
away 64
echo "wrk -t2 -c32 -d${duration}s --latency, Connection: close, 2 workers:"
latency no "no upgrades"
latency yes "upgrade every 0.5s"
