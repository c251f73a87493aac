#!/usr/bin/env bash
# Memory benchmark (issue 16): what the supervisor process itself holds, idle after start-up, workers not
# counted. For preforkctl at -n 2 and -n 64, and beside it for tini and catatonit, the entrypoints users
# compare it with; those run one child only (that is all they can run), so their row is "one child".
# Every worker is `sleep 1000`. Figures come from /proc/PID/smaps_rollup: Rss (pages mapped and present),
# Pss (Rss with each shared page divided among the processes that map it), Anonymous (heap, stacks,
# writable data: what no other process can share, and what grows with n if anything does).
# usage: tests/bench/memory.sh [PREFORKCTL_BINARY] [RUNS]   (default build/src/preforkctl, 3 runs)
#        MEMORY_SMAPS=1 also prints preforkctl's mappings at -n 64 with their Rss and Anonymous kB.
#        MEMORY_WORKERS="2 64" chooses the worker counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
preforkctl="${1:-build/src/preforkctl}"
runs="${2:-3}"
counts="${MEMORY_WORKERS:-2 64}"
[ -x "$preforkctl" ] || { echo "no preforkctl binary at $preforkctl" >&2; exit 2; }
preforkctl=$(realpath "$preforkctl")
log=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$log"' EXIT
export XDG_RUNTIME_DIR="$log"  # preforkctl's control socket lands here

# children PID: how many direct children PID has.
children() {
    cat /proc/"$1"/task/*/children 2>/dev/null | wc -w
}

# measure N COMMAND...: starts COMMAND, waits until it has N children and 1 s more of idling, prints
# "rss_kb pss_kb anon_kb" of the supervisor, and stops it.
measure() {
    local want="$1"
    shift
    "$@" >"$log/out" 2>"$log/err" &
    pid=$!
    for _ in $(seq 400); do
        [ "$(children "$pid")" -ge "$want" ] && break
        sleep 0.025
    done
    if [ "$(children "$pid")" -lt "$want" ]; then
        echo "$* did not start $want children" >&2
        cat "$log/err" >&2
        exit 1
    fi
    sleep 1
    awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 } END { print r, p, a }' \
        /proc/"$pid"/smaps_rollup
    if [ -n "${MEMORY_SMAPS_NOW:-}" ]; then
        # Per mapping: the file (or [heap], [stack], anonymous) and its Rss / Anonymous, largest first.
        awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "(anonymous " $1 ")" : $6) }
             /^Rss:/ { rss[name] += $2 } /^Anonymous:/ { anon[name] += $2 }
             END { for (n in rss) if (rss[n] > 0) printf "%8d %8d  %s\n", rss[n], anon[n], n }' \
            /proc/"$pid"/smaps | sort -rn >"$log/smaps"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # preforkctl stops its workers; tini and catatonit forward TERM to their one child.
    wait "$pid" 2>/dev/null || true
    pid=
}

# median_of "a b c" ...: the median of each column over the lines on stdin.
median_of() {
    awk '{ for (i = 1; i <= NF; i++) v[i, NR] = $i; cols = NF }
         END { for (i = 1; i <= cols; i++) {
                   n = NR; for (j = 1; j <= n; j++) a[j] = v[i, j]
                   for (j = 1; j <= n; j++) for (k = j + 1; k <= n; k++) if (a[k] < a[j]) { t = a[j]; a[j] = a[k]; a[k] = t }
                   printf "%s%.2f", (i > 1 ? " " : ""), a[int((n + 1) / 2)] / 1024 } print "" }'
}

row() {
    local label="$1"
    shift
    local lines=""
    for _ in $(seq "$runs"); do
        lines+="$(measure "$@")"$'\n'
    done
    read -r rss pss anon < <(printf '%s' "$lines" | median_of)
    printf '%-44s %8s %8s %8s\n' "$label" "$rss" "$pss" "$anon"
}

echo "== supervisor memory, idle, workers excluded (MiB, median of $runs; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "   preforkctl: $preforkctl"
printf '%-44s %8s %8s %8s\n' "supervisor" "RSS" "PSS" "anon"
for n in $counts; do
    row "preforkctl -n $n" "$n" "$preforkctl" -n "$n" -q -- sleep 1000
done
if command -v tini >/dev/null; then
    # -s: a subreaper, since it is not PID 1 here.
    row "tini (one child)" 1 tini -s -- sleep 1000
fi
if command -v catatonit >/dev/null; then
    row "catatonit (one child)" 1 catatonit -- sleep 1000
fi
if [ -n "${MEMORY_SMAPS:-}" ]; then
    n=$(echo "$counts" | awk '{ print $NF }')
    MEMORY_SMAPS_NOW=1 measure "$n" "$preforkctl" -n "$n" -q -- sleep 1000 >/dev/null
    echo "== preforkctl -n $n, per mapping: Rss kB, Anonymous kB, mapping"
    cat "$log/smaps"
fi
