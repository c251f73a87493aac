#!/usr/bin/env bash
# Elastic workers benchmark (SPEC §12), against tests/fixtures/slow_server.cpp, which serves one connection at
# a time, so that waiting clients queue in the listener. The load client is tests/bench/elastic_load.py.
# 1. A step from 1 to 32 clients against slow_server --delay-ms 50 (a worker serves 20 requests/s). Each
#    client sends one request every 400 ms on a new connection: 80 requests/s are offered, four workers' worth,
#    so the accept queue can drain once there are enough workers (32 clients back to back would keep 32 - N
#    connections queued for ever whatever N is). For -n 1..8 --scale-up-after 200ms, a fixed -n 1 and a fixed
#    -n 8: how long after the step the queue drains (by the latency of new requests: back under 2x the
#    handler's 50 ms for a second; and by the queue that `ctl status` reports), the most workers, p50 and p99
#    latency and requests/s over the SECONDS after the step.
# 2. The first connection's wait: from connect to the first byte of the answer with -n 0..4 (no worker yet:
#    preforkctl starts one for it), against a worker that already runs (-n 1, warm), and from preforkctl's own
#    start to the first byte with a cold -n 1. Medians of RUNS.
# The elastic rows (-n MIN..MAX) say "not run" while preforkctl refuses the option.
# usage: tests/bench/elastic.sh [BUILD_DIR] [SECONDS] [RUNS]   (default build/, 10 and 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
duration="${2:-10}"
runs="${3:-5}"
preforkctl="$build/src/preforkctl"
server="$build/tests/slow_server"
load=(python3 tests/bench/elastic_load.py)
[ -x "$preforkctl" ] && [ -x "$server" ] || { echo "build $build first (preforkctl, slow_server)" >&2; exit 1; }
log=$(mktemp -d)
export XDG_RUNTIME_DIR="$log/run"  # a control socket directory of this benchmark's own
mkdir -m 0700 "$XDG_RUNTIME_DIR"
control="$log/ctl.sock"
. tests/bench/lib.sh
pf=
trap 'stop_example; rm -rf "$log"' EXIT  # a benchmark that fails half-way leaves nothing running

# start_slow WORKERS [PREFORKCTL_OPTION...] -- [SLOW_SERVER_OPTION...]: starts preforkctl with slow_server on
# 127.0.0.1 (an ephemeral port, set in port), sets pf, and waits until it listens and the workers it starts
# with (N, or MIN of MIN..MAX) say they do. Returns 1 when preforkctl exits instead (an option it refuses).
start_slow() {
    local workers=$1
    shift
    local options=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        options+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    "$preforkctl" --control "$control" -n "$workers" -l 127.0.0.1:0 "${options[@]}" -- "$server" "$@" \
        >"$log/out" 2>"$log/err" &
    pf=$!
    local least=${workers%%..*}
    for _ in $(seq 200); do
        if ! kill -0 "$pf" 2>/dev/null; then
            wait "$pf" || true
            pf=
            return 1
        fi
        port=$(grep -o 'listening on [^ ]*' "$log/err" | head -1 | sed 's/.*://' || true)
        if [ -n "$port" ] && [ "$(grep -c 'slow_server [0-9]* listening' "$log/out" || true)" -ge "$least" ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "preforkctl did not start" >&2
    cat "$log/err" >&2
    exit 1
}

refusal() { head -1 "$log/err" | cut -c1-100; }

# figure KEY: the value of KEY in the key=value line of elastic_load.py step.
figure() { tr ' ' '\n' <<<"$figures" | sed -n "s/^$1=//p"; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== 1. step from 1 to 32 clients, slow_server --delay-ms 50, a request every 400 ms per client (80 req/s offered), ${duration}s after the step"
printf '  %-34s %8s %8s %9s %8s %9s %7s %7s %7s %6s\n' settings drain_s queue_pk q_empty_s workers w_max_at_s \
    p50_ms p99_ms req/s errors
for case in "1..8 --scale-up-after 200ms" "1" "8"; do
    read -r -a words <<<"$case"
    if start_slow "${words[@]}" -- --delay-ms 50; then
        figures=$("${load[@]}" step --port "$port" --control "$control" --before 1 --after 32 --warm 2 \
            --duration "$duration" --period-ms 400 --handler-ms 50)
        stop_example
        printf '  %-34s %8s %8s %9s %8s %9s %7s %7s %7s %6s\n' "-n $case" "$(figure drain)" "$(figure queue_peak)" \
            "$(figure queue_drain)" "$(figure workers_max)" "$(figure workers_max_at)" "$(figure p50_ms)" \
            "$(figure p99_ms)" "$(figure rps)" "$(figure errors)"
    else
        printf '  %-34s not run: %s\n' "-n $case" "$(refusal)"
    fi
done

echo "== 2. the first connection's wait (slow_server --delay-ms 0), median and max of $runs runs"
printf '  %-52s %10s %10s\n' settings median_ms max_ms
report() {  # report SETTINGS < milliseconds, one a line
    local values
    values=$(cat)
    printf '  %-52s %10s %10s\n' "$1" "$(median <<<"$values")" "$(sort -n <<<"$values" | tail -1)"
}

: >"$log/times"
if start_slow 1; then
    for _ in $(seq "$runs"); do "${load[@]}" first-byte --port "$port" >>"$log/times"; done
    stop_example
    report "-n 1, worker running (warm): connect to first byte" <"$log/times"
fi

: >"$log/times"
refused=
for _ in $(seq "$runs"); do
    if ! start_slow 0..4; then
        refused=$(refusal)
        break
    fi
    "${load[@]}" first-byte --port "$port" >>"$log/times"
    stop_example
done
if [ -n "$refused" ]; then
    printf '  %-52s not run: %s\n' "-n 0..4, no worker yet: connect to first byte" "$refused"
else
    report "-n 0..4, no worker yet: connect to first byte" <"$log/times"
fi

: >"$log/times"
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for _ in $(seq "$runs"); do
    "${load[@]}" cold --port "$free_port" -- "$preforkctl" --control "$control" -n 1 -l "127.0.0.1:$free_port" \
        -- "$server" >>"$log/times"
done
report "-n 1, cold: preforkctl start to first byte" <"$log/times"
