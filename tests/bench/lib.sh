# Shared by the wrk benchmarks (sourced): the example server under preforkctl on 127.0.0.1.
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
