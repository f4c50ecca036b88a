#!/usr/bin/env bash
# scripts/gpu-check.sh: the CUDA backend's check on a GPU machine, in one go (about 8 minutes on
# 16 cores and one H100/H200): build with -DSCCONV_CUDA=ON, the parity suite (ctest label gpu),
# `scconv bench --device cuda` for the models of docs/performance.md at batch 128 and 512,
# tools/bench_vs_torch.py --device cuda where PyTorch is there, and a 3-epoch resnet20 run on the
# CIFAR-10 cut. Writes a Markdown report (REPORT, default $OUT/gpu-report.md or
# build/gpu-check/gpu-report.md) with every number and the commands that produced them.
#   scripts/gpu-check.sh [BUNDLE]       BUNDLE: from scripts/gpu-bundle.sh (default .gpu-bundle)
# Offline machines lack our Debian packages: the bundle's .deb files are unpacked into a private
# prefix (build/gpu-prefix) and found through CMAKE_PREFIX_PATH / LD_LIBRARY_PATH. cuDNN is taken
# from the CUDA toolkit or from pip's nvidia-cudnn package (PyTorch's). Steps that fail are
# reported and the script goes on; its exit status is that of the parity suite (2 when it was
# skipped: no usable GPU).
set -uo pipefail
bundle=${1:-.gpu-bundle}
out_dir=${OUT:-build/gpu-check}
mkdir -p "$out_dir"
report=${REPORT:-$out_dir/gpu-report.md}
log=$out_dir/gpu-check.log
jobs=$(nproc)
start=$SECONDS
: > "$log"
say() { echo "$*" | tee -a "$report"; }
step() { echo "== $* ($((SECONDS - start)) s)" | tee -a "$log"; }

# ---- dependencies --------------------------------------------------------------------------
prefix=$PWD/build/gpu-prefix
if [[ -d $bundle/debs ]]; then
  mkdir -p "$prefix"
  for d in "$bundle"/debs/*.deb; do dpkg-deb -x "$d" "$prefix"; done
  export CMAKE_PREFIX_PATH=$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
# cuDNN (and cuBLAS) from the toolkit, else from pip's nvidia-* packages (PyTorch's): the folder
# above the one holding the header
pip_root() {  # <header> -> the package folder with include/ and lib/, or nothing
  python3 - "$1" 2> /dev/null <<'PY'
import glob, os, site, sys
for d in site.getsitepackages() + [site.getusersitepackages()]:
    hits = sorted(glob.glob(os.path.join(d, "nvidia", "**", sys.argv[1]), recursive=True))
    if hits:
        print(os.path.dirname(os.path.dirname(hits[0])))
        break
PY
}
cudnn_root="" cublas_root=""
if ! ls /usr/local/cuda/include/cudnn.h > /dev/null 2>&1; then
  cudnn_root=$(pip_root cudnn.h)
  [[ -n $cudnn_root ]] && export LD_LIBRARY_PATH=$cudnn_root/lib:$LD_LIBRARY_PATH
fi
if ! ls /usr/local/cuda/lib64/libcublas.so > /dev/null 2>&1; then
  cublas_root=$(pip_root cublas_v2.h)
  [[ -n $cublas_root ]] && export LD_LIBRARY_PATH=$cublas_root/lib:$LD_LIBRARY_PATH
fi

{
  echo "# GPU check ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | head -3 ||
    echo "(no nvidia-smi)"
  "$nvcc" --version 2>&1 | tail -1
  echo "cuDNN: ${cudnn_root:-CUDA toolkit}; cuBLAS: ${cublas_root:-CUDA toolkit}; host: $(nproc) cores"
  echo '```'
} > "$report"

# ---- build -----------------------------------------------------------------------------------
step "configure + build"
gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
if ! cmake -S . -B build/gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSCCONV_CUDA=ON -DSCCONV_CUDA_ARCHS=90 \
     -DCMAKE_CUDA_COMPILER="$nvcc" ${cudnn_root:+-DSCCONV_CUDNN_ROOT=$cudnn_root} \
     ${cublas_root:+-DSCCONV_CUBLAS_ROOT=$cublas_root} >> "$log" 2>&1 ||
   ! cmake --build build/gpu -j "$jobs" >> "$log" 2>&1; then
  say ""; say "**Build failed** ($((SECONDS - start)) s); the end of the log:"; say '```'
  tail -40 "$log" | tee -a "$report"; say '```'
  exit 1
fi
say ""; say "Build: $((SECONDS - start)) s (sm_90)."
bin=build/gpu/scconv

# ---- parity suite ----------------------------------------------------------------------------
step "parity suite"
t=$SECONDS
(cd build/gpu && ctest -L gpu -V) > "$out_dir/parity.log" 2>&1
parity=$?
verdict=$([[ $parity == 0 ]] && echo passed || echo FAILED)
# a skipped suite (no usable GPU) has not passed: ctest itself exits 0 for it
if grep -q "SKIPPED\|\*\*\*Skipped" "$out_dir/parity.log"; then verdict="SKIPPED, so NOT passed"; parity=2; fi
say ""; say "## Parity suite (\`ctest -L gpu\`): $verdict in $((SECONDS - t)) s"
say '```'; grep -E "test cases|assertions|Passed|Failed|SKIPPED|ERROR|tests passed" "$out_dir/parity.log" | tail -12 | tee -a "$report"; say '```'

# ---- benchmarks ------------------------------------------------------------------------------
models=resnet20,resnet20-scconv,resnet56,resnet56-scconv,resnet50-cifar,resnet50-cifar-scconv
for batch in 128 512; do
  step "bench batch $batch"
  say ""; say "## \`$bin bench --device cuda --batch $batch --models $models --threads $jobs --seconds 2\`"
  say '```'
  timeout 150 "$bin" bench --device cuda --batch "$batch" --models "$models" --threads "$jobs" --seconds 2 2>&1 |
    tee -a "$log" | tail -16 | tee -a "$report"
  say '```'
done
if python3 -c 'import torch; assert torch.cuda.is_available()' 2> /dev/null; then
  step "versus PyTorch"
  say ""; say "## \`python3 tools/bench_vs_torch.py --device cuda --models resnet20,resnet20-scconv --batch 128 --seconds 3\`"
  say '```'
  timeout 150 python3 tools/bench_vs_torch.py --device cuda --models resnet20,resnet20-scconv --batch 128 --seconds 3 \
    --scconv "$bin" --json "$out_dir/versus-torch.json" 2>&1 | tee -a "$log" | tail -6 | tee -a "$report"
  say '```'
fi

# ---- a short training run on the CIFAR-10 cut -----------------------------------------------
if [[ -f $bundle/cifar10/data_batch_1.bin ]]; then
  step "train"
  say ""; say "## \`$bin train --config resnet20 --device cuda --set epochs=3 --set data.dir=$bundle/cifar10\` (10,000 images)"
  t=$SECONDS
  say '```'
  rm -rf build/gpu-run
  timeout 240 "$bin" train --config resnet20 --device cuda --set epochs=3 --set "data.dir=$bundle/cifar10" \
    --set data.val_split=0 --set out=build/gpu-run 2>&1 | tee -a "$log" | tail -8 | tee -a "$report"
  say '```'
  say "Wall time $((SECONDS - t)) s."
fi
say ""; say "Total $((SECONDS - start)) s."
exit $parity
