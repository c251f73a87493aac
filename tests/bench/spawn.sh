#!/usr/bin/env bash
# Spawn benchmark (issue 16): starting N workers of /bin/true under preforkctl against a plain posix_spawn
# loop of the same program (tests/fixtures/spawn_loop.cpp, which gives each child what preforkctl gives a
# worker apart from its output pipes: a session, default signals, an empty mask, stdin from /dev/null,
# nothing above fd 2).
# `preforkctl -n N --restart never -q -- /bin/true` is measured whole: its own start-up (loading, options,
# the plan, the relay's 2 pipes per slot, the control socket), N starts, N reaps, and its exit once every
# slot is done. `-n 1` is shown too: the fixed part of that. Both sides include the N runs of /bin/true
# itself, which is the same work on both sides.
# On a shared machine wall time is noisy, so besides hyperfine's figures it prints what does not depend on
# the load much: the launcher's own CPU time (perf stat --no-inherit, children not counted) and its system
# calls per worker (strace -c, children not followed).
# usage: [PREFORKCTL=BINARY] tests/bench/spawn.sh [BUILD_DIR] [N] [RUNS]   (default build/, 512, 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
count="${2:-512}"
runs="${3:-10}"
preforkctl="${PREFORKCTL:-$build/src/preforkctl}"  # PREFORKCTL=path: another binary (an older one, for a before/after)
spawn_loop="$build/tests/spawn_loop"
program=/bin/true
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
export XDG_RUNTIME_DIR="$log"  # preforkctl's control socket lands here

loop_cmd="$spawn_loop $count $program"
pf_cmd="$preforkctl -n $count --restart never -q -- $program"
pf1_cmd="$preforkctl -n 1 --restart never -q -- $program"

echo "== $count starts of $program (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
if command -v hyperfine >/dev/null; then
    hyperfine -N -w 2 -r "$runs" --export-json "$log/h.json" "$loop_cmd" "$pf_cmd" "$pf1_cmd" >/dev/null
    python3 - "$log/h.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    print(f"  {r['command']}: median {r['median'] * 1000:.1f} ms, mean {r['mean'] * 1000:.1f} ± {r['stddev'] * 1000:.1f} ms "
          f"(min {r['min'] * 1000:.1f}, max {r['max'] * 1000:.1f})")
loop, pf = results[0]["median"], results[1]["median"]
print(f"  preforkctl / posix_spawn loop: {pf / loop:.2f}x (medians)")
EOF
else
    echo "  (hyperfine not installed: wall times skipped)"
fi
echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if command -v perf >/dev/null && perf stat -e task-clock true >/dev/null 2>&1; then
    echo "== the launcher's own CPU time (perf stat --no-inherit task-clock, ms; median of 5)"
    for cmd in "$loop_cmd" "$pf_cmd" "$pf1_cmd"; do
        for _ in 1 2 3 4 5; do
            # shellcheck disable=SC2086
            perf stat -x, -e task-clock --no-inherit -- $cmd 2>&1 >/dev/null | awk -F, '/task-clock/ { print $1 }'
        done | sort -n | awk -v c="$cmd" '{ v[NR] = $1 } END { printf "  %s: %.1f ms\n", c, v[3] }'
    done
fi

if command -v strace >/dev/null; then
    echo "== the launcher's own system calls (strace -c, children not followed), per worker"
    for cmd in "$loop_cmd" "$pf_cmd"; do
        # shellcheck disable=SC2086
        strace -c -o "$log/strace" $cmd >/dev/null 2>&1 || true
        awk -v n="$count" -v c="$cmd" '
            $1 ~ /^[0-9.]+$/ && $NF != "total" { sys[$NF] = $4; total += $4 }
            END { printf "  %s: %.1f per worker:", c, total / n
                  for (s in sys) if (sys[s] >= n / 2) printf " %s %.1f", s, sys[s] / n; print "" }' "$log/strace"
    done
fi
