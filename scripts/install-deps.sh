#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test scconv. Idempotent: installs
# only missing packages. Run as root (or with sudo available).
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --torch    also python3-torch (only for tools/: reference data, benchmarks)
#   scripts/install-deps.sh --fuzz     also clang and its runtimes (libFuzzer, sanitizers: scripts/fuzz.sh)
#   scripts/install-deps.sh --browser  also chromium (the test that opens `scconv report`'s page headless)
#   scripts/install-deps.sh --slurm    also Slurm and munge (tests/slurm/test_slurm.sh starts a one-node cluster)
set -euo pipefail
# ocl-icd-opencl-dev: Debian's oneDNN CMake config requires OpenCL (a "Recommends" of libdnnl-dev).
pkgs=(build-essential cmake libdnnl-dev ocl-icd-opencl-dev nlohmann-json3-dev doctest-dev libstb-dev)
for a in "$@"; do
  case "$a" in
    --torch) pkgs+=(python3-torch python3-numpy) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    --browser) pkgs+=(chromium) ;;
    --slurm) pkgs+=(slurmctld slurmd slurm-client munge) ;;
    *) echo "install-deps: unknown option $a" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all present (${pkgs[*]})"
fi
