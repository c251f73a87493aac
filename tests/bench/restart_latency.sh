#!/usr/bin/env bash
# Restart latency benchmark (issue: supervision): how long a slot stays empty between a worker's death and
# its replacement's first instruction after exec, minus the configured restart delay. The worker is the
# static fixture tests/fixtures/stamp_worker.cpp: it appends "start NS" right after exec and "exit NS" just
# before it exits (CLOCK_MONOTONIC), lives 20 ms and exits 1; preforkctl restarts it after 1 ms.
# With perf(1) installed it also reports the gap between the kernel events of exit and exec.
# usage: tests/bench/restart_latency.sh [BUILD_DIR] [RESTARTS]   (default build/ and 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
restarts="${2:-300}"
preforkctl="$build/src/preforkctl"
stamp_worker="$build/tests/stamp_worker"
log=$(mktemp -d)
. tests/bench/lib.sh
pf=
trap '[ -n "$pf" ] && kill -TERM "$pf" 2>/dev/null; wait; rm -rf "$log"' EXIT

echo "== restart latency (a worker that lives 20 ms and exits 1, --backoff 1ms..1ms, $restarts restarts)"
stamps="$log/stamps"
: >"$stamps"
STAMP_FILE="$stamps" ${RESTART_LATENCY_WRAPPER:-} "$preforkctl" -n 1 -q --backoff 1ms..1ms --min-uptime 1ms --max-restarts 1000000 \
    -- "$stamp_worker" 20 >/dev/null 2>&1 &
pf=$!
wait_for_starts "$stamps" "$restarts"
kill -TERM "$pf"
wait "$pf" || true
pf=
# Gap between each "exit" and the next "start", minus the 1 ms delay, in microseconds.
awk '$1 == "exit" { died = $2 } $1 == "start" && died { printf "%.0f\n", ($2 - died) / 1000 - 1000; died = 0 }' "$stamps" |
    sort -n | awk '{ v[NR] = $1 } END {
        printf "slot empty beyond the delay: median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us (%d restarts)\n",
               v[int(NR * 0.5)], v[int(NR * 0.9)], v[int(NR * 0.99)], v[NR], NR }'

# The same gap from the kernel's own events, when perf(1) is installed (Debian: linux-perf): from the
# worker's sched_process_exit to the replacement's sched_process_exec, minus the delay. This leaves out the
# worker's own exit path and the new program's start-up that the stamps include, but adds perf's overhead.
if command -v perf >/dev/null && [ "$(perf list 2>/dev/null | grep -c 'sched:sched_process_exec')" -gt 0 ]; then
    echo "== the same from kernel events (perf: worker exit to replacement exec)"
    seconds=$((restarts * 25 / 1000 + 2))
    STAMP_FILE=/dev/null perf record -q -o "$log/perf.data" -e sched:sched_process_exit,sched:sched_process_exec \
        -- timeout -s TERM "$seconds" "$preforkctl" -n 1 -q --backoff 1ms..1ms --min-uptime 1ms \
        --max-restarts 1000000 -- "$stamp_worker" 20 >/dev/null 2>&1 || true
    perf script -i "$log/perf.data" -F comm,time,event 2>/dev/null |
        awk '$1 == "stamp_worker" && /sched_process_exit/ { sub(":", "", $2); died = $2 }
             /sched_process_exec/ && died { sub(":", "", $2); printf "%.0f\n", ($2 - died) * 1e6 - 1000; died = 0 }' |
        sort -n | awk '{ v[NR] = $1 } END {
            printf "exit to exec beyond the delay: median %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us (%d restarts)\n",
                   v[int(NR * 0.5)], v[int(NR * 0.9)], v[int(NR * 0.99)], v[NR], NR }'
fi
