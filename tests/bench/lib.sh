# Shared by the benchmarks (sourced).

# ---- the example server under preforkctl on 127.0.0.1, for the wrk benchmarks.
# The caller sets preforkctl, server, workers, port and log (a temporary directory).

# start_example MODE [PREFORKCTL_OPTION...]: starts preforkctl in socket mode MODE, sets pf, and waits until
# every worker says it is serving.
start_example() {
    local mode="$1"
    shift
    "$preforkctl" -n "$workers" --affinity --socket-mode "$mode" -l "127.0.0.1:$port" "$@" \
        -- "$server" >"$log/out" 2>"$log/err" &
    pf=$!
    for _ in $(seq 200); do
        [ "$(grep -c ' serving ' "$log/out" 2>/dev/null)" -ge "$workers" ] && return 0
        sleep 0.05
    done
    echo "preforkctl did not start" >&2
    cat "$log/err" >&2
    exit 1
}

# stop_example: stops the preforkctl of start_example, if one runs (also from an EXIT trap).
stop_example() {
    [ -n "${pf:-}" ] || return 0
    kill -TERM "$pf" 2>/dev/null || true
    wait "$pf" 2>/dev/null || true
    pf=
}

# ---- restarts of tests/fixtures/stamp_worker.cpp, which writes "start NS" and "exit NS" lines.
# wait_for_starts STAMPS N: waits until the worker has started more than N times (about 2 s per start at most).
wait_for_starts() {
    local _
    for _ in $(seq $(($2 * 40 + 200))); do
        [ "$(grep -c '^start' "$1")" -gt "$2" ] && return 0
        sleep 0.05
    done
}

# ---- supervisord (Debian's `supervisor`) as a peer.
# supervisord_config DIR: the [supervisord] section of a foreground supervisord that keeps its files in DIR and
# logs errors only (its own messages would go to the same stdout as its programs' output).
supervisord_config() {
    printf '[supervisord]\nnodaemon=true\nuser=root\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nloglevel=error\n\n' \
        "$1" "$1"
}
