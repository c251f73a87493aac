#!/usr/bin/env bash
# Output relay benchmark (issue 5, SPEC §8). 16 workers each write 64-byte lines as fast as they can (whole
# lines in 64 KiB writes, like a stdio-buffered logger); preforkctl prefixes them ("w.N | ") and its stdout
# goes into a pipe read by `cat >/dev/null`. Reported per run: MB/s and lines/s of worker output, preforkctl's
# own CPU seconds per GB (utime+stime of the preforkctl process from /proc/PID/stat, workers not included),
# and, in a second run with `wc -l` as the reader, the lines lost (must be 0). Beside it, in the same run:
# the same 16 writers straight into one pipe read by `cat` (no relay, lines may interleave there).
# usage: tests/bench/output.sh [BUILD_DIR] [MB_PER_WORKER] [RUNS]
#        (default build/ 64 3; build with -DCMAKE_BUILD_TYPE=Release or RelWithDebInfo first)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
mb_per_worker="${2:-64}"
runs="${3:-3}"
workers=16
preforkctl="$build/src/preforkctl"
writer="$build/tests/probe_worker"
lines_per_worker=$(( mb_per_worker * 1024 * 1024 / 64 ))
total_lines=$(( lines_per_worker * workers ))
input_bytes=$(( total_lines * 64 ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$preforkctl" ] && [ -x "$writer" ] || { echo "build $build first (preforkctl, probe_worker)" >&2; exit 1; }
ticks=$(getconf CLK_TCK)

now() { date +%s.%N; }
rate() {  # rate BYTES LINES SECONDS -> "MB/s lines/s"
    awk -v b="$1" -v l="$2" -v s="$3" 'BEGIN { printf "%7.0f MB/s %6.2f M lines/s", b / s / 1048576, l / s / 1e6 }'
}

# The label "w.N" is padded to the widest slot number: "w.3  | " and "w.15 | " are both 7 bytes.
output_bytes=$(( total_lines * (64 + 7) ))

relay_run() {  # relay_run READER -> prints "seconds cpu_seconds" and leaves the reader's output in $tmp/read
    local reader="$1"
    local start pid wchar stat cpu_ticks end
    start=$(now)
    # Workers stay alive after writing, so that preforkctl's own CPU can be read before anything is reaped.
    "$preforkctl" -n "$workers" --name w --restart never -- "$writer" --fast-lines "$lines_per_worker" \
        2>"$tmp/err" | $reader >"$tmp/read" &
    # $! is the reader; preforkctl is its sibling in the same pipeline.
    pid=""
    for _ in $(seq 400); do
        pid=$(pgrep -n -f "^$preforkctl -n $workers --name w" || true)
        [ -n "$pid" ] && break
        sleep 0.005
    done
    [ -n "$pid" ] || { echo "preforkctl did not start" >&2; cat "$tmp/err" >&2; exit 1; }
    # Done when preforkctl has written all prefixed lines (stderr goes to a file and is counted too).
    while :; do
        wchar=$(awk '/^wchar:/ {print $2}' "/proc/$pid/io")
        [ "$wchar" -ge $(( output_bytes + $(stat -c %s "$tmp/err") )) ] && break
        sleep 0.005
    done
    end=$(now)
    # utime and stime: fields 14 and 15 of /proc/PID/stat, i.e. 12 and 13 after "(comm) ".
    stat=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
    kill -TERM "$pid"
    wait
    awk -v a="$start" -v b="$end" -v t="$stat" -v hz="$ticks" 'BEGIN { printf "%.3f %.2f\n", b - a, t / hz }'
}

echo "== $workers writers x $mb_per_worker MiB of 64-byte lines ($total_lines lines), $runs runs each"
for run in $(seq "$runs"); do
    # Baseline: the same writers straight into one pipe, read by cat.
    start=$(now)
    ( for _ in $(seq "$workers"); do "$writer" --fast-lines "$lines_per_worker" --exit 0 & done; wait ) | cat >/dev/null
    end=$(now)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    printf 'run %d  writers | cat             %s  (%ss)\n' "$run" "$(rate "$input_bytes" "$total_lines" "$seconds")" "$seconds"

    read -r seconds cpu < <(relay_run "cat")
    per_gb=$(awk -v c="$cpu" -v b="$input_bytes" 'BEGIN { printf "%.2f", c / (b / 1073741824) }')
    printf 'run %d  preforkctl | cat          %s  (%ss, preforkctl %s CPU-s = %s CPU-s/GB)\n' "$run" \
        "$(rate "$input_bytes" "$total_lines" "$seconds")" "$seconds" "$cpu" "$per_gb"

    read -r seconds cpu < <(relay_run "wc -l")
    got=$(tr -d ' ' <"$tmp/read")
    printf 'run %d  preforkctl | wc -l        %s  (%ss), lines lost: %d\n' "$run" \
        "$(rate "$input_bytes" "$total_lines" "$seconds")" "$seconds" "$(( total_lines - got ))"
done
