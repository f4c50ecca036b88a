#!/usr/bin/env bash
# scripts/run.sh: the main job. Installs what is missing, builds scconv (Release), fetches
# CIFAR-10 (scripts/get-cifar10.sh) and trains ResNet-20 with the `quick` recipe (about 30 min
# on 2 cores) into runs/quick. Extra arguments go to `scconv train`, e.g.
#   scripts/run.sh --config resnet20-scconv        (another preset; the last --config wins)
#   scripts/run.sh --set epochs=1
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/get-cifar10.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j "$(nproc)" --target scconv_app > /dev/null
# default: the quick recipe; a second invocation continues (or reports) the same run
args=(--config quick)
[[ -f runs/quick/checkpoint/state.json || -f runs/quick/checkpoint.old/state.json ]] && args=(--resume runs/quick)
for a in "$@"; do [[ "$a" == "--config" || "$a" == "--resume" ]] && args=(); done
exec build/release/scconv train "${args[@]}" "$@"
