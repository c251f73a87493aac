#!/usr/bin/env bash
# Builds preforkctl and runs the bundled example server behind it: one worker per usable CPU, pinned.
#   examples/run.sh            serves on 127.0.0.1:8080 (PORT=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
port="${PORT:-8080}"

bash contrib/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target preforkctl hello_server

echo "preforkctl: serving the example on http://127.0.0.1:${port}/ -- try: curl http://127.0.0.1:${port}/ (Ctrl-C stops)" >&2
exec build/src/preforkctl -n auto --affinity -l "127.0.0.1:${port},name=http" -- build/examples/hello_server
