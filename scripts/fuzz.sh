#!/usr/bin/env bash
# scripts/fuzz.sh: builds the libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan) in build/fuzz
# and runs each for SECONDS (default 60), two at a time, starting from a scratch copy of its
# committed seed corpus (tests/fuzz/corpus/<target>). Fails on any finding: the crashing input is
# kept in build/fuzz/findings/<target>/ and printed as a replay command. A table of executions
# per target goes to stdout (and build/fuzz/report.txt).
#   scripts/fuzz.sh                 every target, 60 s each (what CI runs)
#   scripts/fuzz.sh 3600 state      one target for an hour
# Needs the Debian packages clang and libclang-rt-14-dev (scripts/install-deps.sh --fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(safetensors cifar image config set state)
jobs=$(nproc)

echo "== configure build/fuzz (clang, libFuzzer, ASan + UBSan)"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DSCCONV_FUZZ=ON > build/fuzz.configure.log 2>&1 ||
  { cat build/fuzz.configure.log; exit 1; }
echo "== build build/fuzz"
cmake --build build/fuzz -j "$jobs" --target fuzz_all > build/fuzz.build.log 2>&1 || { tail -50 build/fuzz.build.log; exit 1; }

run_one() {  # <target>: fuzz it; writes build/fuzz/logs/<target>.log, returns libFuzzer's status
  local t=$1 work=build/fuzz/work/$t
  rm -rf "$work" "build/fuzz/findings/$t"
  mkdir -p "$work" "build/fuzz/findings/$t" build/fuzz/logs
  cp tests/fuzz/corpus/"$t"/* "$work"/
  # (-rss_limit_mb: the readers must stay bounded; -timeout: no input may hang them)
  build/fuzz/tests/fuzz/fuzz_"$t" "$work" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="build/fuzz/findings/$t/" > build/fuzz/logs/"$t".log 2>&1
}

echo "== fuzz ${targets[*]} for ${seconds} s each"
status=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if ((${#pids[@]} >= 2)); then
    wait "${pids[0]}" || { echo "fuzz_${names[0]}: FINDING"; status=1; }
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "fuzz_${names[$i]}: FINDING"; status=1; }; done

{
  printf "%-12s %8s %12s %8s %s\n" target seconds executions corpus result
  for t in "${targets[@]}"; do
    log=build/fuzz/logs/$t.log
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
    corpus=$(ls build/fuzz/work/"$t" | wc -l)
    result=ok
    if ls build/fuzz/findings/"$t"/* > /dev/null 2>&1; then result="FINDING: $(ls build/fuzz/findings/"$t"/* | head -1)"; fi
    printf "%-12s %8s %12s %8s %s\n" "$t" "$seconds" "$execs" "$corpus" "$result"
  done
} | tee build/fuzz/report.txt
if ((status)); then
  for t in "${targets[@]}"; do
    if ls build/fuzz/findings/"$t"/* > /dev/null 2>&1; then
      echo "---- fuzz_$t (log: build/fuzz/logs/$t.log)"
      grep -E "ERROR|SUMMARY|property failed|terminate|what\(\)" build/fuzz/logs/"$t".log | head -20 || true
      echo "replay: build/fuzz/tests/fuzz/fuzz_$t $(ls build/fuzz/findings/"$t"/* | head -1)"
    fi
  done
fi
exit $status
