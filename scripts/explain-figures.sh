#!/usr/bin/env bash
# scripts/explain-figures.sh: regenerates docs/figures/, the figures of docs/scconv.md's
# walkthrough, from a real short CIFAR-10 run. Trains resnet20-scconv for a few epochs with gate
# statistics every epoch (explain.every 1) into runs/explain-walkthrough, runs `scconv explain`
# on two test images for a shallow and a deep SCConv unit, writes the run's report
# (runs/explain-walkthrough/report.html) and copies the figures the page shows.
# About 7 min on 2 cores (5 epochs). Needs CIFAR-10: scripts/get-cifar10.sh, or --data DIR.
#   scripts/explain-figures.sh [--data DIR] [--epochs N]
set -euo pipefail
cd "$(dirname "$0")/.."
data=data/cifar-10-batches-bin
epochs=5
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    *) echo "explain-figures: unknown option $1 (--data DIR, --epochs N)" >&2; exit 2 ;;
  esac
done
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j "$(nproc)" --target scconv_app > /dev/null
scconv=build/release/scconv
run=runs/explain-walkthrough
rm -rf "$run"
$scconv train --config resnet20-scconv --data "$data" --set epochs="$epochs" --set schedule.kind=cosine \
  --set explain.every=1 --set out="$run"
$scconv explain --checkpoint "$run" --image 0 --image 3 --layer layer1.0.conv1 --layer layer3.2.conv1 \
  --out "$run/explain"
$scconv report "$run" --out "$run/report.html" --png "$run/curves"
out=docs/figures
mkdir -p "$out"
u1=$run/explain/layer1.0.conv1 u3=$run/explain/layer3.2.conv1
cp "$u1/input_test0.png" "$u1/sru_R_test0.png" "$u1/sru_X1_test0.png" "$u1/sru_X2_test0.png" "$u1/fig5_test0.png" \
   "$u1/bars_w.png" "$u1/bars_informative.png" "$u1/bars_beta.png" "$out/" 
cp "$u3/bars_beta.png" "$out/layer3_bars_beta.png"
cp "$run/curves/accuracy.png" "$run/curves/gates_informative_fraction_explain-walkthrough.png" \
   "$run/curves/gates_beta1_explain-walkthrough.png" "$out/"
cp "$u1/stats.json" "$out/layer1.0.conv1_stats.json"
echo "explain-figures: wrote $(ls "$out" | wc -l) files to $out (report: $run/report.html)"
