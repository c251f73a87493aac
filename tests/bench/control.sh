#!/usr/bin/env bash
# Control plane benchmark (issue 11, SPEC §11). Three figures:
# 1. `preforkctl ctl status` latency (the whole client run: start, connect, answer, table printed) with 64
#    workers whose output preforkctl relays as fast as it can (each writes 64-byte lines in 64 KiB writes,
#    without end; preforkctl's stdout goes into a pipe read by `cat >/dev/null`), and once more with --json.
# 2. Relay throughput of 16 workers writing MIB_PER_WORKER MiB each (as tests/bench/output.sh, prefix
#    format), alone and with a client asking for the status 10 times a second: over one connection (what
#    answering costs preforkctl), and as a `preforkctl ctl status` process each time (what a polling script
#    costs the machine: on 2 cores the client processes take CPU from the writers and the relay too).
#    Alternating runs, medians. The relay may lose less than 2% to the polling. On a small VM the throughput
#    of runs alone varies by more than that, so 2b measures the cost itself: preforkctl's CPU time for 1000
#    status requests (utime+stime from /proc/PID/stat), at 16 and 64 workers.
# 3. Wake-ups of an idle preforkctl (1 worker, a control socket and --metrics open) over IDLE_SECONDS:
#    its voluntary and involuntary context switches from /proc/PID/status (0 expected: no timer runs).
# usage: tests/bench/control.sh [BUILD_DIR] [MIB_PER_WORKER] [RUNS]   (default build/ 256 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
mib_per_worker="${2:-256}"
runs="${3:-5}"
idle_seconds="${IDLE_SECONDS:-20}"
preforkctl="$build/src/preforkctl"
writer="$build/tests/probe_worker"
[ -x "$preforkctl" ] && [ -x "$writer" ] || { echo "build $build first (preforkctl, probe_worker)" >&2; exit 1; }
tmp=$(mktemp -d)
export XDG_RUNTIME_DIR="$tmp/run"  # a control socket directory of this benchmark's own
mkdir -m 0700 "$XDG_RUNTIME_DIR"
pf=""
poller=""
cleanup() {
    [ -n "$poller" ] && kill "$poller" 2>/dev/null || true
    [ -n "$pf" ] && kill -TERM "$pf" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
now_ns() { date +%s%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
percentile() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] }'; }

echo "== 1. ctl status latency, 64 workers relaying at full speed (prefix format, stdout | cat >/dev/null)"
"$preforkctl" --name busy -n 64 -- "$writer" --fast-lines 100000000000 2>"$tmp/busy.err" | cat >/dev/null &
sleep 0.2
pf=$(pgrep -f -n -- "--name busy -n 64") || { cat "$tmp/busy.err" >&2; exit 1; }
for _ in $(seq 100); do "$preforkctl" ctl --name busy status >/dev/null 2>&1 && break; sleep 0.05; done
sleep 2  # the relay at full speed
relayed_bytes() {  # the workers' stdout bytes preforkctl has relayed so far
    "$preforkctl" ctl --name busy status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["out"]["bytes"])'
}
bytes_before=$(relayed_bytes)
time_before=$(now_ns)
for format in table json; do
    args=(status)
    [ "$format" = json ] && args=(status --json)
    : >"$tmp/latency"
    for _ in $(seq 50); do
        start=$(now_ns)
        "$preforkctl" ctl --name busy "${args[@]}" >"$tmp/answer"
        echo $(( ($(now_ns) - start) / 1000 )) >>"$tmp/latency"
    done
    slots=$(grep -c '^[0-9]' "$tmp/answer" || true)
    [ "$format" = json ] && slots=$(grep -c '"slot":' "$tmp/answer" || true)
    printf '  %-5s  %2s slots  median %6.2f ms  p95 %6.2f ms  max %6.2f ms  (50 calls)\n' "$format" "$slots" \
        "$(median <"$tmp/latency" | awk '{ print $1 / 1000 }')" \
        "$(percentile 95 <"$tmp/latency" | awk '{ print $1 / 1000 }')" \
        "$(sort -n "$tmp/latency" | tail -1 | awk '{ print $1 / 1000 }')"
done
bytes_after=$(relayed_bytes)
awk -v b="$(( bytes_after - bytes_before ))" -v ns="$(( $(now_ns) - time_before ))" \
    'BEGIN { printf "  meanwhile the relay moved %.0f MiB/s of worker stdout (%.2f GB/s)\n", b / (ns / 1e9) / 1048576, b / (ns / 1e9) / 1e9 }'
kill -TERM "$pf"; wait "$pf" 2>/dev/null || true; pf=""
wait 2>/dev/null || true

echo "== 2. relay throughput, 16 workers x $mib_per_worker MiB, with and without ctl status 10x/s ($runs runs each)"
lines=$(( mib_per_worker * 1024 * 1024 / 64 ))
bytes=$(( lines * 64 * 16 ))
one_run() {  # one_run NAME POLL(none|connection|process) -> MiB/s
    local name=$1 poll=$2 start end reader
    # The poller starts first and waits for the socket, so that its own start-up (a python3) is not timed.
    if [ "$poll" = process ]; then
        ( while :; do "$preforkctl" ctl --name "$name" status >/dev/null 2>&1 || true; sleep 0.1; done ) &
        poller=$!
    elif [ "$poll" = connection ]; then
        python3 - "$XDG_RUNTIME_DIR/preforkctl/$name.sock" <<'PY' &
import socket, sys, time
path = sys.argv[1]
while True:
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(path)
        break
    except OSError:
        time.sleep(0.01)
reader = client.makefile("rb")
try:
    while True:
        client.sendall(b'{"v":1,"cmd":"status"}\n')
        if not reader.readline():
            break
        time.sleep(0.1)
except OSError:  # preforkctl has exited
    pass
PY
        poller=$!
        sleep 0.3
    fi
    start=$(now_ns)
    "$preforkctl" --name "$name" -n 16 --restart never -- "$writer" --fast-lines "$lines" --exit 0 2>"$tmp/$name.err" \
        | cat >/dev/null &
    reader=$!  # cat: done when preforkctl has exited and its output is read
    wait "$reader" 2>/dev/null || true
    end=$(now_ns)
    if [ -n "$poller" ]; then kill "$poller" 2>/dev/null || true; wait "$poller" 2>/dev/null || true; poller=""; fi
    awk -v b="$bytes" -v ns="$(( end - start ))" 'BEGIN { printf "%.0f\n", b / (ns / 1e9) / 1048576 }'
}
: >"$tmp/none"; : >"$tmp/connection"; : >"$tmp/process"
for run in $(seq "$runs"); do
    for poll in none connection process; do one_run "$poll$run" "$poll" >>"$tmp/$poll"; done
done
alone=$(median <"$tmp/none")
echo "  alone:                                 $(tr '\n' ' ' <"$tmp/none")-> median $alone MiB/s"
for poll in connection process; do
    polled=$(median <"$tmp/$poll")
    label="status 10x/s, one connection:"
    [ "$poll" = process ] && label="ctl status 10x/s, a process each:"
    printf '  %-38s %s-> median %s MiB/s, loss %s\n' "$label" "$(tr '\n' ' ' <"$tmp/$poll")" "$polled" \
        "$(awk -v a="$alone" -v p="$polled" 'BEGIN { printf "%.1f%%", (a - p) / a * 100 }')"
done
echo "  (target: the relay loses < 2% to a client polling status 10x/s)"

echo "== 2b. what answering costs preforkctl: CPU per status request (1000 requests over one connection)"
for count in 16 64; do
    "$preforkctl" --name "cost$count" -n "$count" -- "$writer" >/dev/null 2>"$tmp/cost.err" &
    pf=$!
    for _ in $(seq 100); do "$preforkctl" ctl --name "cost$count" status >/dev/null 2>&1 && break; sleep 0.05; done
    ticks_before=$(sed 's/.*) //' "/proc/$pf/stat" | awk '{ print $12 + $13 }')
    python3 - "$XDG_RUNTIME_DIR/preforkctl/cost$count.sock" <<'PY'
import socket, sys
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(sys.argv[1])
reader = client.makefile("rb")
for _ in range(1000):
    client.sendall(b'{"v":1,"cmd":"status"}\n')
    reader.readline()
PY
    ticks_after=$(sed 's/.*) //' "/proc/$pf/stat" | awk '{ print $12 + $13 }')
    awk -v t="$(( ticks_after - ticks_before ))" -v hz="$(getconf CLK_TCK)" -v n="$count" \
        'BEGIN { ms = t / hz; printf "  %2d workers: %.2f ms of CPU per status; 10 a second take %.2f%% of one core\n", n, ms, ms }'
    kill -TERM "$pf"; wait "$pf" 2>/dev/null || true; pf=""
done

echo "== 3. idle preforkctl: context switches in ${idle_seconds}s (1 worker, control socket, --metrics 127.0.0.1:0)"
"$preforkctl" --name idle -n 1 --metrics 127.0.0.1:0 -- "$writer" >/dev/null 2>"$tmp/idle.err" &
pf=$!
for _ in $(seq 100); do "$preforkctl" ctl --name idle status >/dev/null 2>&1 && break; sleep 0.05; done
sleep 1
switches() { awk '/ctxt_switches/ { sum += $2 } END { print sum }' "/proc/$pf/status"; }
before=$(switches)
sleep "$idle_seconds"
after=$(switches)
echo "  $(( after - before )) context switches (voluntary + involuntary)"
kill -TERM "$pf"; wait "$pf" 2>/dev/null || true; pf=""
