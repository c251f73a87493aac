#!/usr/bin/env bash
# Fuzzing: builds every libFuzzer target of tests/fuzz (NAME_fuzz.cpp) in build-fuzz with Clang, ASan and
# UBSan, and runs each for SECONDS on a scratch copy of its seeds (corpus/NAME/), so the repository is never
# written to. Fails on the first crash, leak, sanitizer report or hang; libFuzzer then names the input, kept
# as build-fuzz/artifacts/NAME_fuzz-crash-... (replay: build-fuzz/tests/fuzz/NAME_fuzz FILE). Runs as many
# targets at once as there are CPUs.
# usage: tests/fuzz/run.sh SECONDS
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:?usage: tests/fuzz/run.sh SECONDS}"
# clang alone does not bring libFuzzer and the sanitizer runtimes: Debian only recommends libclang-rt-14-dev.
bash contrib/install-deps.sh clang libclang-rt-14-dev
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPREFORKCTL_FUZZ=ON -DPREFORKCTL_BUILD_TESTS=OFF -DPREFORKCTL_DEVELOPER_MODE=ON "${launcher[@]}" >/dev/null
targets=()
for source in tests/fuzz/*_fuzz.cpp; do
    target=$(basename "$source" .cpp)
    targets+=("$target")
done
cmake --build build-fuzz --target "${targets[@]}" -j "$(nproc)"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p build-fuzz/artifacts

# Runs one target for SECONDS; its log is printed when it fails, its figures when it passes.
fuzz_one() {
    local target=$1 name=${1%_fuzz}
    mkdir "$scratch/$name"
    [ -d "tests/fuzz/corpus/$name" ] && cp -R "tests/fuzz/corpus/$name/." "$scratch/$name/"
    echo "=== fuzz: $target for ${seconds}s ($(find "$scratch/$name" -type f | wc -l) seeds)" >&2
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: the default, said out loud.
    if ! "build-fuzz/tests/fuzz/$target" "$scratch/$name" -max_total_time="$seconds" -timeout=10 \
            -rss_limit_mb=2048 -artifact_prefix="build-fuzz/artifacts/$target-" -print_final_stats=1 \
            2>"$scratch/$target.log"; then
        tail -n 60 "$scratch/$target.log" >&2
        echo "=== fuzz: $target FAILED (input kept in build-fuzz/artifacts/)" >&2
        return 1
    fi
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb' "$scratch/$target.log" \
        | sed "s/^/$target: /" >&2 || true
}

# One target per CPU at a time: each fuzzer is a single process, so the time in all is SECONDS for every
# nproc targets, and every target still gets its SECONDS of a whole CPU.
failed=0
running=0
for target in "${targets[@]}"; do
    if [ "$running" -ge "$(nproc)" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$target" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
[ "$failed" -eq 0 ] || exit 1
echo "=== fuzz: ${targets[*]} ran ${seconds}s each without a failure" >&2
