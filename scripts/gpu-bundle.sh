#!/usr/bin/env bash
# scripts/gpu-bundle.sh: gathers what an offline GPU machine lacks for scripts/gpu-check.sh into one
# folder: the Debian packages of our build dependencies (oneDNN, OpenCL headers for oneDNN's CMake
# config, nlohmann-json, doctest, stb; downloaded, not installed) and a 10,000-image cut of
# CIFAR-10 (2,000 records of each training batch, 2,000 test records: the file names and format
# of the real set). Run on a machine with the package mirror, from the repository root:
#   scripts/gpu-bundle.sh [OUT_DIR] [CIFAR_DIR]
#     OUT_DIR    default .gpu-bundle (git-ignored)
#     CIFAR_DIR  default ../shared/cifar10/cifar-10-batches-bin
# The folder plus the source tree stay under 60 MB. gpu-check.sh unpacks the packages into a
# private prefix (nothing is installed system-wide there).
set -euo pipefail
out=${1:-.gpu-bundle}
cifar=${2:-../shared/cifar10/cifar-10-batches-bin}
pkgs=(libdnnl-dev libdnnl2 ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers opencl-clhpp-headers
      nlohmann-json3-dev doctest-dev libstb-dev libstb0)
records=2000
record_bytes=3073  # 1 label byte + 3 x 32 x 32 pixels

command -v apt-get > /dev/null || { echo "gpu-bundle: needs apt-get (a Debian machine with the mirror)" >&2; exit 1; }
[[ -f $cifar/data_batch_1.bin ]] || { echo "gpu-bundle: no CIFAR-10 binary batches in '$cifar'" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/debs" "$out/cifar10"
(cd "$out/debs" && apt-get download "${pkgs[@]}")
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
  head -c $((records * record_bytes)) "$cifar/$f" > "$out/cifar10/$f"
done
[[ -f $cifar/batches.meta.txt ]] && cp "$cifar/batches.meta.txt" "$out/cifar10/"
total=$(( $(du -sb "$out" | cut -f1) + $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) ))
echo "gpu-bundle: $out ($(du -sh "$out" | cut -f1)); with the source tree $((total / 1000000)) MB"
(( total < 60000000 )) || { echo "gpu-bundle: over 60 MB" >&2; exit 1; }
