#!/usr/bin/env bash
# Cost of the --preload library on accept() (SPEC §13; goal: at most 2 %). The same minimal server
# (tests/fixtures/bind_server.cpp: accept, read the request, answer, close) runs under preforkctl on
# 127.0.0.1 in three ways, and wrk (Debian package) opens a fresh connection for every request:
#   inherited  no library: the server accepts on fd 3 from LISTEN_FDS (blocking accept)
#   preload    --preload: the server binds HOST:PORT itself and gets the shared socket (blocking accept,
#              emulated with poll() on the shared non-blocking socket)
#   inherited-nb / preload-nb  the same two with a server that sets O_NONBLOCK and waits in poll() itself
#              (with the library, the plain accept path: one accept4 call)
# Each --preload variant is compared with its inherited twin.
# Rounds alternate between the three because the machine may be shared.
# usage: tests/bench/preload.sh [BUILD_DIR] [WORKERS] [ROUNDS] [SECONDS]   (default build/, 2, 3, 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
workers="${2:-2}"
rounds="${3:-3}"
duration="${4:-5}"
preforkctl="$build/src/preforkctl"
server="$build/tests/bind_server"
port=18995
log=$(mktemp -d)
command -v wrk >/dev/null || { echo "wrk is missing (package wrk)" >&2; exit 1; }
pf=
source tests/bench/lib.sh  # stop_example
trap 'stop_example; rm -rf "$log"' EXIT

# start VARIANT: preforkctl with the server in that variant; waits until every worker serves.
start() {
    local options=() server_args=()
    case "$1" in
        inherited) server_args=(--inherited) ;;
        preload) options=(--preload) ;;
        inherited-nb) server_args=(--inherited --nonblocking) ;;
        preload-nb) options=(--preload); server_args=(--nonblocking) ;;
    esac
    "$preforkctl" -n "$workers" -q --control none "${options[@]}" -l "127.0.0.1:$port" \
        -- "$server" 127.0.0.1 "$port" "${server_args[@]}" >"$log/out" 2>"$log/err" &
    pf=$!
    for _ in $(seq 200); do
        [ "$(grep -c 'serving on fd' "$log/out" 2>/dev/null)" -ge "$workers" ] && return 0
        sleep 0.05
    done
    echo "preforkctl did not start ($1)" >&2
    cat "$log/err" >&2
    exit 1
}

# rate VARIANT: requests per second under wrk, one connection per request.
rate() {
    start "$1"
    wrk -t2 -c32 -d"${duration}s" -H 'Connection: close' "http://127.0.0.1:$port/" 2>&1 |
        awk '/Requests\/sec/ {print $2}'
    stop_example
}

variants=(inherited preload inherited-nb preload-nb)
echo "preload accept benchmark: $workers workers, $rounds rounds of ${duration}s, wrk -t2 -c32, Connection: close, $(nproc) CPUs"
declare -A sum
for variant in "${variants[@]}"; do sum[$variant]=0; done
for round in $(seq "$rounds"); do
    line="round $round:"
    for variant in "${variants[@]}"; do
        value=$(rate "$variant")
        sum[$variant]=$(awk -v a="${sum[$variant]}" -v b="$value" 'BEGIN {print a + b}')
        line+=" $variant ${value:-?} req/s"
    done
    echo "$line"
done
for pair in inherited:preload inherited-nb:preload-nb; do
    twin=${pair%%:*}
    variant=${pair#*:}
    awk -v v="$variant" -v t="$twin" -v m="${sum[$variant]}" -v b="${sum[$twin]}" -v n="$rounds" \
        'BEGIN {printf "%-11s mean %.0f req/s, %s %.0f req/s: %+.1f %%\n", v, m / n, t, b / n, (m - b) / b * 100}'
done
