#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs every test stage.
#   1. formatting (clang-format, fails on unformatted code)
#   2. the 'ci' preset (g++, -Werror): every unit and integration test, the end-to-end demo
#      (scripts/demo.sh on the ci build), then the benchmarks
#      (they print JSON lines; a missed speed goal is reported, not failed, since CI machines
#      are noisy)
#   3. the 'asan' preset (clang ASan+UBSan, -O0): the unit tests under the sanitizers
#   4. the 'fuzz' preset (clang libFuzzer): a short smoke of every fuzz target
# Environment: SKILLCARD_STAGES="format ci asan fuzz" picks stages; SKILLCARD_FUZZ_SECONDS
# sets each fuzz smoke's length (default 4: CI's 30 minutes on 2 cores; longer campaigns by hand).
set -euo pipefail
cd "$(dirname "$0")/.."

stages=${SKILLCARD_STAGES:-"format ci asan fuzz"}
fuzz_seconds=${SKILLCARD_FUZZ_SECONDS:-4}
start=$(date +%s)
say() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

say "installing missing packages"
bash scripts/install-deps.sh

for stage in $stages; do
  case $stage in
    format)
      say "checking formatting (clang-format)"
      mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' 2>/dev/null || find . -name '*.[ch]pp' -not -path './build/*')
      if ! clang-format --dry-run --Werror "${files[@]}"; then
        echo "test.sh: unformatted code; run: clang-format -i \$(git ls-files '*.cpp' '*.hpp')" >&2
        exit 1
      fi
      ;;
    ci)
      say "building the ci preset (g++, -Werror)"
      cmake --preset ci >/dev/null
      cmake --build --preset ci
      say "running the tests (ci preset)"
      ctest --preset ci
      say "running the end-to-end demo on the ci build (the README's main command, without its release build)"
      rm -rf build/ci/demo-out
      SKILLCARD_DEMO_BUILD=build/ci bash scripts/demo.sh build/ci/demo-out
      say "running the benchmarks (JSON lines; goals reported, not enforced)"
      # ledger_bench's PostgreSQL lines run against a throwaway cluster of their own.
      pg_bench_dir=build/ci/bench-pg
      if tests/ledger/pg_fixture.sh start "$pg_bench_dir" 29972 >/dev/null; then
        export SKILLCARD_PG_CONNINFO="host=127.0.0.1 port=29972 dbname=skillcard user=postgres"
      else
        echo "test.sh: no PostgreSQL for ledger_bench; its PostgreSQL lines are skipped" >&2
      fi
      for b in build/ci/tools/bench/*_bench; do
        [ -x "$b" ] && { "$b" --quick || echo "test.sh: $(basename "$b") missed a goal (see 'met' above)"; }
      done
      tests/ledger/pg_fixture.sh stop "$pg_bench_dir" >/dev/null || true
      unset SKILLCARD_PG_CONNINFO
      ;;
    asan)
      # The unit-labelled tests only (parsers, card, ledger incl. its process races and power cuts,
      # service handler, host workflows, tools): three full builds do not fit CI's 30 minutes on
      # 2 cores; the integration tests (pcscd, PostgreSQL, service processes) run in the ci stage.
      say "building the asan preset (clang ASan+UBSan), unit tests"
      cmake --preset asan >/dev/null
      cmake --build --preset asan --target unit_tests
      say "running the unit tests under ASan+UBSan"
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --preset asan -L unit
      ;;
    fuzz)
      say "building the fuzz preset (clang libFuzzer)"
      cmake --preset fuzz -DSKILLCARD_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
      cmake --build --preset fuzz
      say "running each fuzz target for ${fuzz_seconds}s"
      ctest --preset fuzz
      ;;
    *)
      echo "test.sh: unknown stage '$stage' (known: format ci asan fuzz)" >&2
      exit 2
      ;;
  esac
done
say "all stages passed: $stages"
