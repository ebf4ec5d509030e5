#!/bin/sh
# Runs the whole test suite: a normal build, the same suite under ASan + UBSan, then each fuzz
# target for a short fixed time. Needs the packages of scripts/setup-deps.sh.
# Environment: SYM_TEST_JOBS (parallel jobs, default: cores), SYM_FUZZ_SECONDS (default 30).
set -eu
cd "$(dirname "$0")/.."
JOBS=${SYM_TEST_JOBS:-$(nproc)}

echo "== build + tests (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYM_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"

echo "== Release build (-O3 warnings differ from -O2's)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSYM_WERROR=ON >/dev/null
cmake --build build-release -j "$JOBS" --target symbiote

echo "== build + tests under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSYM_WERROR=ON -DSYM_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
# Mesa's lavapipe keeps a few allocations for the life of the process; leaks of our own are
# caught by the CPU tests, which run with leak detection on.
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE "slow|gpu"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" -L gpu -LE slow

echo "== GPU tests under the Vulkan validation layer (any validation error fails them)"
SYM_VK_VALIDATION=1 ctest --test-dir build --output-on-failure -j "$JOBS" -L gpu -LE slow

if [ -d tests/fuzz ]; then
  echo "== fuzzing (${SYM_FUZZ_SECONDS:-30} s per target)"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSYM_FUZZ=ON -DSYM_VULKAN=OFF \
    -DSYM_WERROR=ON >/dev/null
  cmake --build build-fuzz -j "$JOBS" --target fuzz_targets
  for f in build-fuzz/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    mkdir -p "build-fuzz/corpus/$name"
    # a crash, leak or timeout fails the run (the log's tail shows what, the artifact is kept)
    if ! "$f" -max_total_time="${SYM_FUZZ_SECONDS:-30}" -rss_limit_mb=2048 \
        -artifact_prefix="build-fuzz/$name-" "build-fuzz/corpus/$name" tests/fuzz/seeds/"$name" \
        >"build-fuzz/$name.log" 2>&1; then
      tail -n 40 "build-fuzz/$name.log"
      echo "== $name failed: build-fuzz/$name-*"
      exit 1
    fi
    tail -n 3 "build-fuzz/$name.log"
  done
fi
echo "== all tests passed"
