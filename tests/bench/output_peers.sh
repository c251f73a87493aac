#!/usr/bin/env bash
# Output relay against a peer (SPEC §10: performance as ratios against peers). The same 16 writers as
# output.sh (64-byte lines in 64 KiB writes, as fast as they can) run under
#   - preforkctl (prefix mode), and
#   - supervisord (Debian's `supervisor`; each program's stdout_logfile=/dev/stdout, the usual container set-up),
# each launcher's stdout going into a pipe read by `cat >/dev/null`. Both get the same pipe sizes: 1 MiB for
# the pipe into the reader (preforkctl gives its stdout that size; the reader sets it for supervisord) and for
# each writer's pipe into the launcher (preforkctl grows a pipe it finds full up to 1 MiB; under supervisord
# each writer sets its own stdout pipe to 1 MiB before it starts writing). Reported per launcher: MiB/s
# (2^20 bytes per second) and lines/s of worker output until cat has read all of it, the launcher's CPU
# seconds per GiB, and, in a second run whose
# reader checks every line, how many writer lines did not arrive whole (lost, or torn into pieces: an output
# line that is not exactly one 63-byte writer line after the launcher's prefix is a piece). Ends with medians
# and the ratios preforkctl / supervisord.
# usage: tests/bench/output_peers.sh [BUILD_DIR] [MIB_PER_WORKER] [RUNS]     (default build/ 64 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
mb_per_worker="${2:-64}"
runs="${3:-3}"
workers=16
preforkctl="$build/src/preforkctl"
writer="$(realpath "$build/tests/probe_worker")"
lines_per_worker=$(( mb_per_worker * 1024 * 1024 / 64 ))
total_lines=$(( lines_per_worker * workers ))
input_bytes=$(( total_lines * 64 ))
[ -x "$preforkctl" ] && [ -x "$writer" ] || { echo "build $build first (preforkctl, probe_worker)" >&2; exit 1; }
command -v supervisord >/dev/null || bash contrib/install-deps.sh supervisor
tmp=$(mktemp -d)
launcher_pid=""
cleanup() {
    [ -n "$launcher_pid" ] && kill -TERM "$launcher_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export LC_ALL=C
ticks=$(getconf CLK_TCK)
# Sleeping without forking: a read with a timeout on a FIFO that nobody writes.
mkfifo "$tmp/never"
exec {never}<>"$tmp/never"

. tests/bench/lib.sh
supervisord_config "$tmp" >"$tmp/supervisord.conf"
cat >>"$tmp/supervisord.conf" <<EOF
[program:w]
command=perl -e 'fcntl(STDOUT, 1031, 1 << 20) or die "F_SETPIPE_SZ: \$!\\n"; exec @ARGV' $writer --fast-lines $lines_per_worker
numprocs=$workers
process_name=%(program_name)s_%(process_num)02d
autostart=true
autorestart=false
startsecs=0
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0
EOF

# Each launcher: its command and the bytes it writes for all the lines (preforkctl adds "w.N  | ").
launch() {  # launch NAME
    case "$1" in
        preforkctl) exec "$preforkctl" -n "$workers" --name w --restart never -- "$writer" --fast-lines "$lines_per_worker" ;;
        supervisord) exec supervisord -c "$tmp/supervisord.conf" ;;
    esac
}
# A reader with a 1 MiB pipe (F_SETPIPE_SZ is 1031), the size preforkctl makes its stdout pipe.
sized() { exec perl -e 'fcntl(STDIN, 1031, 1 << 20) or die "F_SETPIPE_SZ: $!\n"; exec @ARGV or die "$ARGV[0]: $!\n"' "$@"; }
output_bytes() { case "$1" in preforkctl) echo $(( total_lines * (64 + 7) )) ;; *) echo "$input_bytes" ;; esac; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
read_bytes() {  # read_bytes PID: bytes the process has read so far (builtins only)
    local key value bytes=0
    while read -r key value; do [ "$key" = "rchar:" ] && bytes=$value; done <"/proc/$1/io" 2>/dev/null
    echo "$bytes"
}

# run NAME READER...: starts the launcher with its stdout into READER, waits until READER has read everything,
# and prints "seconds launcher_ticks reader_ticks". The reader's output goes to $tmp/read.
run() {
    local name="$1"
    shift
    local want start reader_pid end launcher_cpu reader_cpu bytes
    want=$(output_bytes "$name")
    rm -f "$tmp/pid"
    start=$EPOCHREALTIME
    ( echo "$BASHPID" >"$tmp/pid"; launch "$name" 2>"$tmp/err" {never}<&- ) | sized "$@" >"$tmp/read" &
    reader_pid=$!
    until [ -s "$tmp/pid" ]; do read -r -t 0.001 -u "$never" _ || true; done
    launcher_pid=$(<"$tmp/pid")
    while :; do
        bytes=0
        while read -r key value; do [ "$key" = "rchar:" ] && bytes=$value; done <"/proc/$reader_pid/io"
        [ "$bytes" -ge "$want" ] && break
        read -r -t 0.005 -u "$never" _ || true
    done
    end=$EPOCHREALTIME
    launcher_cpu=$(cpu_ticks "$launcher_pid")
    reader_cpu=$(cpu_ticks "$reader_pid")
    kill -TERM "$launcher_pid"
    wait
    launcher_pid=""
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f ", b - a }'
    echo "$launcher_cpu $reader_cpu"
}

# The reader of the checking run prints "whole_lines pieces" of what it read.
check_lines='{ sub(/^w\.[0-9]+ +\| /, ""); if (length($0) == 63) whole++; else pieces++ } END { print whole + 0, pieces + 0 }'

rate() { awk -v b="$input_bytes" -v l="$total_lines" -v s="$1" 'BEGIN { printf "%6.0f MiB/s %6.2f M lines/s", b / s / 1048576, l / s / 1e6 }'; }
per_gib() { awk -v t="$1" -v hz="$ticks" -v b="$input_bytes" 'BEGIN { printf "%.2f", t / hz / (b / 1073741824) }'; }

echo "== $workers writers x $mb_per_worker MiB of 64-byte lines ($total_lines lines), $runs runs, $(nproc) cores"
for round in $(seq "$runs"); do
    for name in preforkctl supervisord; do
        read -r seconds launcher_cpu cat_cpu < <(run "$name" cat)
        run "$name" awk "$check_lines" >/dev/null
        read -r whole pieces <"$tmp/read"
        printf 'run %d  %-11s | cat  %s  (%ss; CPU-s/GiB: launcher %s, cat %s)  not whole %d (%d pieces)\n' "$round" \
            "$name" "$(rate "$seconds")" "$seconds" "$(per_gib "$launcher_cpu")" "$(per_gib "$cat_cpu")" \
            $(( total_lines - whole )) "$pieces"
        echo "$name $seconds $launcher_cpu $(( total_lines - whole )) $pieces" >>"$tmp/results"
    done
done

median() {  # median NAME COLUMN
    awk -v n="$1" -v c="$2" '$1 == n { print $c }' "$tmp/results" | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo "== median of $runs runs"
for name in preforkctl supervisord; do
    printf '%-11s %s, launcher %s CPU-s/GiB; lines not whole %d (%d pieces; all runs)\n' "$name" "$(rate "$(median "$name" 2)")" \
        "$(per_gib "$(median "$name" 3)")" "$(awk -v n="$name" '$1 == n { s += $4 } END { print s }' "$tmp/results")" \
        "$(awk -v n="$name" '$1 == n { s += $5 } END { print s }' "$tmp/results")"
done
awk -v a="$(median preforkctl 2)" -v b="$(median supervisord 2)" -v c="$(median preforkctl 3)" -v d="$(median supervisord 3)" \
    'BEGIN { printf "preforkctl / supervisord: %.1fx the throughput, %.1fx less CPU per GiB\n", b / a, d / c }'
