#!/usr/bin/env bash
# Restart latency against a peer (SPEC §10: performance as ratios against peers): how long the slot stays
# empty between a worker's exit and its replacement's first instruction after exec, restart delay included.
# The two cannot run with equal settings: supervisord (Debian's `supervisor`; autorestart=true, startsecs=0,
# so no back-off state) has no restart delay to set, it restarts an exited program on the next turn of its
# main loop. preforkctl runs twice: with --backoff 1ms..1ms, its shortest delay (a delay of 0 is refused: a
# restart loop needs one), and with its default --backoff 100ms..10s; both with --min-uptime 1ms, so that
# the delay is MIN at every restart. The worker is tests/fixtures/stamp_worker.cpp: it writes "start NS"
# right after exec and "exit NS" just before it exits (CLOCK_MONOTONIC), lives 20 ms and exits 1.
# usage: tests/bench/restart_latency_peers.sh [BUILD_DIR] [RESTARTS]   (default build/ and 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
restarts="${2:-20}"
preforkctl="$build/src/preforkctl"
stamp_worker="$(realpath "$build/tests/stamp_worker")"
[ -x "$preforkctl" ] && [ -x "$stamp_worker" ] || { echo "build $build first (preforkctl, stamp_worker)" >&2; exit 1; }
command -v supervisord >/dev/null || bash contrib/install-deps.sh supervisor
tmp=$(mktemp -d)
launcher=
trap '[ -n "$launcher" ] && kill -TERM "$launcher" 2>/dev/null; wait; rm -rf "$tmp"' EXIT

. tests/bench/lib.sh
supervisord_config "$tmp" >"$tmp/supervisord.conf"
cat >>"$tmp/supervisord.conf" <<EOF
[program:w]
command=$stamp_worker 20
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile=/dev/null
stderr_logfile=/dev/null
EOF

# measure NAME COMMAND...: runs COMMAND until the worker has started RESTARTS + 1 times, then prints the gaps.
measure() {
    local name="$1"
    shift
    local stamps="$tmp/$name.stamps"
    : >"$stamps"
    STAMP_FILE="$stamps" "$@" >/dev/null 2>&1 &
    launcher=$!
    wait_for_starts "$stamps" "$restarts"
    kill -TERM "$launcher"
    wait "$launcher" || true
    launcher=
    awk '$1 == "exit" { died = $2 } $1 == "start" && died { printf "%.0f\n", ($2 - died) / 1000; died = 0 }' "$stamps" |
        sort -n | awk -v n="$name" '{ v[NR] = $1 } END {
            printf "%-16s slot empty: median %8.0f us, p90 %8.0f us, max %8.0f us (%d restarts)\n",
                   n, v[int(NR * 0.5) + (NR % 2)], v[int(NR * 0.9)], v[NR], NR }' | tee -a "$tmp/summary"
}

echo "== restart latency, delay included (a worker that lives 20 ms and exits 1; $restarts restarts each)"
measure preforkctl-1ms "$preforkctl" -n 1 -q --backoff 1ms..1ms --min-uptime 1ms --max-restarts 1000000 -- \
    "$stamp_worker" 20
measure preforkctl-100ms "$preforkctl" -n 1 -q --min-uptime 1ms --max-restarts 1000000 -- "$stamp_worker" 20
measure supervisord supervisord -c "$tmp/supervisord.conf"
awk '{ m[$1] = $5 } END {
        printf "supervisord / preforkctl: %.0fx longer without a worker than preforkctl at --backoff 1ms..1ms, %.1fx at its default 100ms..10s\n",
               m["supervisord"] / m["preforkctl-1ms"], m["supervisord"] / m["preforkctl-100ms"] }' "$tmp/summary"
