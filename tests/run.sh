#!/usr/bin/env bash
# Installs what is missing, builds preforkctl and runs the whole test suite: unit, end-to-end, then the
# integration tests with real servers (the examples in examples/servers: gunicorn, uvicorn, nginx, node,
# puma; busybox httpd, redis, memcached and socat under --preload) and Prometheus (promtool, a real scrape),
# all from Debian.
#   tests/run.sh              developer build (warnings as errors) in build/
#   tests/run.sh --sanitize   ASan+UBSan build in build-sanitize/ (unit and end-to-end)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFORKCTL_DEVELOPER_MODE=ON)
servers=(gunicorn python3-gunicorn uvicorn python3-uvicorn nginx-light puma prometheus busybox redis-server memcached socat)
command -v node >/dev/null || servers+=(nodejs)
sanitize=false
if [ "${1:-}" = "--sanitize" ]; then
    sanitize=true
    servers=()
    build_dir=build-sanitize
    cmake_args+=(-DPREFORKCTL_SANITIZE=ON)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi

bash contrib/install-deps.sh "${servers[@]}"

# Runs one step and says how long it took.
step() {
    local start=$SECONDS
    "$@"
    echo "tests/run.sh: '$*' took $((SECONDS - start))s" >&2
}

targets=()
# The sanitizer build runs no integration tests, so it does not build them (Beast under ASan is slow to compile).
$sanitize && targets=(--target unit_tests e2e_tests)  # e2e_tests depends on preforkctl and its fixtures
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
step cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
step ctest --test-dir "$build_dir" -L unit --output-on-failure -j "$(nproc)"
step ctest --test-dir "$build_dir" -L e2e --output-on-failure -j 2
if ! $sanitize; then
    step ctest --test-dir "$build_dir" -L integration --output-on-failure
fi
