#!/usr/bin/env bash
# CPU-local steering benchmark (--steer cpu, SPEC §13). Runs the example server under preforkctl on 127.0.0.1
# (one worker per usable CPU, --affinity, --socket-mode reuseport), with and without --steer cpu:
#   1. locality: a client pinned to each CPU in turn makes N fresh connections; the share of them served by
#      the worker pinned to that CPU (on loopback the receiving CPU is the client's; goal with steering: 99 %);
#   2. throughput: req/s under wrk (Debian package), keep-alive and Connection: close, rounds alternating
#      between the two settings because the machine may be shared.
# usage: tests/bench/steer.sh [BUILD_DIR] [CONNECTIONS_PER_CPU] [ROUNDS]   (default build/, 500, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
connections="${2:-500}"
rounds="${3:-3}"
preforkctl="$build/src/preforkctl"
server="$build/examples/hello_server"
port=18994
workers=$(nproc)
duration=5
log=$(mktemp -d)
. tests/bench/lib.sh
trap 'stop_example; rm -rf "$log"' EXIT  # a benchmark that fails half-way leaves nothing running

# local_share CPU: "LOCAL TOTAL" for $connections fresh connections from a client pinned to CPU; LOCAL counts
# the answers of the worker whose Cpus_allowed_list is that CPU.
local_share() {
    python3 - "$port" "$1" "$connections" <<'EOF'
import os, socket, sys
port, cpu, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
os.sched_setaffinity(0, {cpu})
cpus_of = {}
local = 0
for _ in range(count):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    pid = answer.split(b"pid=")[1].split()[0].decode()
    if pid not in cpus_of:
        with open(f"/proc/{pid}/status") as status:
            cpus_of[pid] = next(l.split(":")[1].strip() for l in status if l.startswith("Cpus_allowed_list"))
    local += cpus_of[pid] == str(cpu)
print(local, count)
EOF
}

settings_of() { [ "$1" = cpu ] && echo "--steer cpu" || echo "--steer none"; }

echo "== locality: $connections fresh connections from a client pinned to each CPU ($workers workers, --affinity, reuseport)"
for steer in none cpu; do
    start_example reuseport --steer "$steer"
    total_local=0
    total=0
    for cpu in $(seq 0 $((workers - 1))); do
        read -r local count < <(local_share "$cpu")
        printf '%-12s client on CPU %d: %d of %d served on CPU %d\n' "$(settings_of "$steer")" "$cpu" "$local" \
            "$count" "$cpu"
        total_local=$((total_local + local))
        total=$((total + count))
    done
    stop_example
    awk -v s="$(settings_of "$steer")" -v l="$total_local" -v t="$total" \
        'BEGIN { printf "%-12s served on the receiving CPU: %.1f %% (%d of %d)\n", s, 100 * l / t, l, t }'
done

if ! command -v wrk >/dev/null; then
    echo "== throughput: skipped (wrk is missing: bash contrib/install-deps.sh wrk)"
    exit 0
fi
echo "== throughput: wrk -t2 -c64 -d${duration}s, $rounds rounds alternating ($workers workers, --affinity, reuseport)"
for kind in keep-alive close; do
    header=()
    [ "$kind" = close ] && header=(-H 'Connection: close')
    for round in $(seq "$rounds"); do
        for steer in none cpu; do
            start_example reuseport --steer "$steer"
            wrk -t2 -c64 -d"${duration}s" "${header[@]}" "http://127.0.0.1:$port/" >"$log/wrk"
            stop_example
            rps=$(awk '/Requests\/sec/ {print $2}' "$log/wrk")
            echo "$rps" >>"$log/rps-$kind-$steer"
            printf '%-10s %-12s round %d: %s req/s\n' "$kind" "$(settings_of "$steer")" "$round" "$rps"
        done
    done
    for steer in none cpu; do
        sort -n "$log/rps-$kind-$steer" | awk -v k="$kind" -v s="$(settings_of "$steer")" \
            '{ v[NR] = $1 } END { printf "%-10s %-12s median %.0f req/s (min %.0f, max %.0f, %d rounds)\n",
                                  k, s, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
    done
done
