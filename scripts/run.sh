#!/usr/bin/env bash
# scripts/run.sh: installs missing packages, builds scconv (Release) and runs the main job.
# Until the training app lands this is `scconv demo`: a small CNN learning synthetic images.
# Extra arguments go to the command:  scripts/run.sh --steps 600 --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j "$(nproc)" --target scconv_app > /dev/null
exec build/release/scconv demo "$@"
