#!/usr/bin/env bash
# scripts/test.sh: installs missing packages, builds and runs the whole test suite.
#   scripts/test.sh            Release build + tests (the Slurm test included: it starts a
#                              one-node cluster); where nvcc is present, the CUDA build
#                              (-DSCCONV_CUDA=ON) and its tests (the dispatch-crossing part of the
#                              CPU suite; the gpu-labelled parity suite reports itself skipped
#                              without a GPU); then Debug + ASan/UBSan build + tests (all but
#                              the Slurm one and the one on the real CIFAR-10 test set), then
#                              every fuzz target for 60 s
#                              (scripts/fuzz.sh; clang + libFuzzer)
#   scripts/test.sh --quick    Release build + tests only
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--quick" ]]; then scripts/install-deps.sh --browser --slurm; else scripts/install-deps.sh --browser --slurm --fuzz; fi
jobs=$(nproc)

run_suite() {  # <build dir> [ctest arguments --] <cmake args...>
  local dir=$1; shift
  local select=()
  if [[ " $* " == *" -- "* ]]; then
    while [[ $1 != "--" ]]; do select+=("$1"); shift; done
    shift
  fi
  echo "== configure $dir ($*)"
  cmake -S . -B "$dir" "$@" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
  echo "== build $dir"
  cmake --build "$dir" -j "$jobs" 2>&1 | grep -E "error|warning:|Error" || true
  cmake --build "$dir" -j "$jobs" > /dev/null   # fails loudly if the build failed
  echo "== test $dir"
  ctest --test-dir "$dir" --output-on-failure "${select[@]}"
}

mkdir -p build
run_suite build/release -DCMAKE_BUILD_TYPE=Release
if [[ "${1:-}" != "--quick" ]]; then
  if command -v nvcc > /dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then
    # the CUDA build's own tests and the ones that cross its dispatch point (the Release suite
    # above already ran the rest of the CPU suite on the same sources)
    run_suite build/cuda -R "test_cuda|test_device|test_tensor|test_autograd|test_layers|test_apps|test_errors" -- \
      -DCMAKE_BUILD_TYPE=Release -DSCCONV_CUDA=ON
  else
    echo "== no nvcc here: the CUDA build (-DSCCONV_CUDA=ON) is not checked"
  fi
fi
if [[ "${1:-}" != "--quick" ]]; then
  # (the Slurm test drives the daemons and the binary from outside, and test_pretrained_accuracy,
  # label data, evaluates on the real test set: the Release suite runs them)
  ASAN_OPTIONS=detect_leaks=1 run_suite build/asan -LE "slurm|data" -- -DCMAKE_BUILD_TYPE=Debug -DSCCONV_SANITIZE=ON
  scripts/fuzz.sh 60
fi
