#!/usr/bin/env bash
# Output relay benchmark (issue 5, SPEC §8). 16 workers each write 64-byte lines as fast as they can: whole
# lines in 64 KiB writes, like a stdio-buffered logger, or with WRITES=lines one write(2) per line, like a
# logger that writes each line as it comes. preforkctl formats them (prefix "w.N | " by default; the
# PREFORKCTL_OPTIONs choose another format: --log-format json, --timestamps, ...) and its stdout goes into a
# pipe read by `cat >/dev/null`. Reported per run: MiB/s (2^20 bytes per second) and millions of lines per
# second of worker output (what the writers wrote, not the longer formatted text), the CPU seconds per GiB of
# preforkctl itself (utime+stime from /proc/PID/stat), of cat and of the writers, and how busy the machine was
# with other processes meanwhile ("others": cores' worth; a shared machine makes every throughput number
# noisy, CPU per GiB much less so). Then, in a run with `wc -l` as the reader, the lines lost (must be 0).
# Beside it, in the same run: the same 16 writers straight into one pipe read by `cat` (no relay; lines may
# interleave there). Both readers' pipes are 1 MiB, the size preforkctl gives its stdout pipe; the pipes
# between the writers and preforkctl are its own (they start at the kernel's default and grow when found full).
# Ends with the median of every figure over the runs.
# usage: [WRITES=chunks|lines] tests/bench/output.sh [BUILD_DIR] [MIB_PER_WORKER] [RUNS] [PREFORKCTL_OPTION...]
#        (default build/ 64 5; build with -DCMAKE_BUILD_TYPE=Release or RelWithDebInfo first)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
mb_per_worker="${2:-64}"
runs="${3:-5}"
shift $(( $# < 3 ? $# : 3 ))
options=("$@")
writes="${WRITES:-chunks}"
workers=16
preforkctl="$build/src/preforkctl"
writer="$build/tests/probe_worker"
lines_per_worker=$(( mb_per_worker * 1024 * 1024 / 64 ))
case "$writes" in
    chunks) write_option=--fast-lines ;;
    lines) write_option=--line-writes ;;
    *) echo "WRITES must be chunks or lines" >&2; exit 2 ;;
esac
total_lines=$(( lines_per_worker * workers ))
input_bytes=$(( total_lines * 64 ))
tmp=$(mktemp -d)
pf=""
cleanup() {
    [ -n "$pf" ] && kill -TERM "$pf" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
[ -x "$preforkctl" ] && [ -x "$writer" ] || { echo "build $build first (preforkctl, probe_worker)" >&2; exit 1; }
export LC_ALL=C  # ${#text} counts bytes
# Sleeping without forking: a read with a timeout on a FIFO that nobody writes.
mkfifo "$tmp/never"
exec {never}<>"$tmp/never"
ticks=$(getconf CLK_TCK)
cores=$(nproc)

busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu_ticks() {  # cpu_ticks PID...: utime + stime (fields 14 and 15 of /proc/PID/stat, 12 and 13 after "(comm) ")
    local sum=0 pid
    for pid in "$@"; do sum=$(( sum + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }') )); done
    echo "$sum"
}
rate() {  # rate BYTES LINES SECONDS -> "MiB/s lines/s"
    awk -v b="$1" -v l="$2" -v s="$3" 'BEGIN { printf "%7.0f MiB/s %6.2f M lines/s", b / s / 1048576, l / s / 1e6 }'
}
per_gib() { awk -v t="$1" -v hz="$ticks" -v b="$input_bytes" 'BEGIN { printf "%.2f", t / hz / (b / 1073741824) }'; }
# The readers: cat or wc with a 1 MiB pipe (F_SETPIPE_SZ is 1031), as preforkctl makes its stdout pipe.
sized() { exec perl -e 'fcntl(STDIN, 1031, 1 << 20) or die "F_SETPIPE_SZ: $!\n"; exec @ARGV or die "$ARGV[0]: $!\n"' "$@"; }

# What preforkctl writes for all the lines, by format: the label "w.N" is padded to the widest slot number
# ("w.3  | " and "w.15 | " are both 7 bytes); a timestamp adds 25 bytes; a json line is 140 bytes plus the
# digits of its slot and pid (which are known once the workers run).
format=prefix
for ((i = 0; i < ${#options[@]}; i++)); do
    case "${options[i]}" in
        --log-format) format="${options[i + 1]}" ;;
        --log-format=*) format="${options[i]#*=}" ;;
        --timestamps) [ "$format" = prefix ] && format=timestamps ;;
    esac
done
case "$format" in
    prefix) line_bytes=$(( 64 + 7 )) ;;
    timestamps) line_bytes=$(( 25 + 64 + 7 )) ;;
    raw) line_bytes=64 ;;
    json) line_bytes=140 ;;
    *) echo "no output size known for --log-format $format" >&2; exit 2 ;;
esac
output_bytes_of() {  # output_bytes_of PID: all the bytes preforkctl PID writes to stdout for the lines
    local per_worker=$(( line_bytes * workers )) slot pid
    if [ "$format" = json ]; then
        for ((slot = 0; slot < workers; slot++)); do per_worker=$(( per_worker + ${#slot} )); done
        for pid in $(pgrep -P "$1"); do per_worker=$(( per_worker + ${#pid} )); done
    fi
    echo $(( lines_per_worker * per_worker ))
}

relay_run() {  # relay_run READER OUTPUT -> "seconds pf_ticks cat_ticks writer_ticks other_ticks"
    local reader="$1" reader_output="$2"
    local start busy0 wchar end busy1 pf_cpu reader_cpu writers_cpu reader_pid
    rm -f "$tmp/pid"
    busy0=$(busy_ticks)
    start=$EPOCHREALTIME
    # The subshell writes its own pid and becomes preforkctl: no guessing which process is which (a pgrep
    # by command line can also match a worker between fork and exec). Workers stay alive after writing, so
    # that their CPU and preforkctl's can be read before anything is reaped.
    ( echo "$BASHPID" >"$tmp/pid"; exec "$preforkctl" -n "$workers" --name w --restart never "${options[@]}" \
        -- "$writer" "$write_option" "$lines_per_worker" 2>"$tmp/err" {never}<&- ) | sized $reader >"$reader_output" &
    until [ -s "$tmp/pid" ]; do read -r -t 0.001 -u "$never" _ || true; done
    pf=$(cat "$tmp/pid")
    until [ "$(pgrep -c -P "$pf")" -ge "$workers" ]; do
        kill -0 "$pf" 2>/dev/null || { echo "preforkctl ended before its workers started:" >&2; cat "$tmp/err" >&2; exit 1; }
        read -r -t 0.001 -u "$never" _ || true
    done
    local output_bytes
    output_bytes=$(output_bytes_of "$pf")
    # Done when preforkctl has written all formatted lines (stderr goes to a file and is counted too). The
    # check uses shell builtins only: an awk, stat and sleep forked every few ms would cost a good part of a
    # core, taken from the run being measured.
    local line key value err_text
    while :; do
        wchar=0
        while read -r key value; do [ "$key" = "wchar:" ] && wchar=$value; done <"/proc/$pf/io"
        err_text=""
        IFS= read -r -d "" err_text <"$tmp/err" || true
        [ "$wchar" -ge $(( output_bytes + ${#err_text} )) ] && break
        read -r -t 0.005 -u "$never" line || true
    done
    end=$EPOCHREALTIME
    busy1=$(busy_ticks)
    pf_cpu=$(cpu_ticks "$pf")
    # shellcheck disable=SC2046
    writers_cpu=$(cpu_ticks $(pgrep -P "$pf"))
    # The reader is preforkctl's sibling in the pipeline.
    reader_pid=$(pgrep -n -P "$(awk '{ print $4 }' "/proc/$pf/stat")" -x "${reader%% *}" || true)
    reader_cpu=$( [ -n "$reader_pid" ] && cpu_ticks "$reader_pid" || echo 0)
    kill -TERM "$pf"
    wait
    pf=""
    awk -v a="$start" -v b="$end" -v p="$pf_cpu" -v r="$reader_cpu" -v w="$writers_cpu" -v busy=$(( busy1 - busy0 )) \
        'BEGIN { o = busy - p - r - w; printf "%.3f %d %d %d %d\n", b - a, p, r, w, o < 0 ? 0 : o }'
}

echo "== $workers writers x $mb_per_worker MiB of 64-byte lines ($total_lines lines, $writes: $write_option), $runs runs each, $cores cores"
echo "== preforkctl -n $workers --name w --restart never ${options[*]}"
results="$tmp/results"
for run in $(seq "$runs"); do
    # Baseline: the same writers straight into one pipe, read by cat.
    busy0=$(busy_ticks)
    start=$EPOCHREALTIME
    ( for _ in $(seq "$workers"); do "$writer" "$write_option" "$lines_per_worker" --exit 0 & done; wait ) | sized cat >/dev/null
    end=$EPOCHREALTIME
    busy1=$(busy_ticks)
    base_seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    base_busy=$(awk -v t=$(( busy1 - busy0 )) -v hz="$ticks" -v s="$base_seconds" 'BEGIN { printf "%.2f", t / hz / s }')
    printf 'run %d  writers | cat             %s  (%ss, machine busy %s cores)\n' "$run" \
        "$(rate "$input_bytes" "$total_lines" "$base_seconds")" "$base_seconds" "$base_busy"

    read -r seconds pf_cpu cat_cpu writers_cpu other_cpu < <(relay_run "cat" /dev/null)  # as the baseline: cat >/dev/null
    others=$(awk -v t="$other_cpu" -v hz="$ticks" -v s="$seconds" 'BEGIN { printf "%.2f", t / hz / s }')
    printf 'run %d  preforkctl | cat          %s  (%ss; CPU-s/GiB: preforkctl %s, cat %s, writers %s; others %s cores)\n' \
        "$run" "$(rate "$input_bytes" "$total_lines" "$seconds")" "$seconds" "$(per_gib "$pf_cpu")" \
        "$(per_gib "$cat_cpu")" "$(per_gib "$writers_cpu")" "$others"

    read -r lost_seconds _ _ _ _ < <(relay_run "wc -l" "$tmp/read")
    lost=$(( total_lines - $(tr -d ' ' <"$tmp/read") ))
    printf 'run %d  preforkctl | wc -l        %s  (%ss), lines lost: %d\n' "$run" \
        "$(rate "$input_bytes" "$total_lines" "$lost_seconds")" "$lost_seconds" "$lost"
    echo "$base_seconds $seconds $pf_cpu $cat_cpu $writers_cpu $others $lost" >>"$results"
done

median() {  # median COLUMN (1-based) of $results
    awk -v c="$1" '{ print $c }' "$results" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
base=$(median 1)
relay=$(median 2)
echo "== median of $runs runs"
printf 'writers | cat      %s\n' "$(rate "$input_bytes" "$total_lines" "$base")"
printf 'preforkctl | cat   %s  = %s of the baseline\n' "$(rate "$input_bytes" "$total_lines" "$relay")" \
    "$(awk -v a="$base" -v b="$relay" 'BEGIN { printf "%.0f%%", a / b * 100 }')"
printf 'CPU-s per GiB      preforkctl %s, cat %s, writers %s; others kept %s cores busy\n' "$(per_gib "$(median 3)")" \
    "$(per_gib "$(median 4)")" "$(per_gib "$(median 5)")" "$(median 6)"
printf 'lines lost         %d (all runs)\n' "$(awk '{ s += $7 } END { print s }' "$results")"
