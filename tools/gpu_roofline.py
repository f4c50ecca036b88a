#!/usr/bin/env python3
"""tools/gpu_roofline.py: a per-layer roofline estimate of one training step on a GPU, from
`scconv summary --json` (output shapes, MACs) and `scconv bench --json` (backend calls per step,
each at least one kernel launch on the GPU). An estimate, not a measurement: the bytes assume each
kernel of our CUDA backend (core/cuda/) reads and writes whole tensors once per pass, as counted
below; cuDNN's own traffic and cache reuse are not modelled.

Passes over a layer's output-sized tensor per training step (forward + backward), from the
kernels in core/cuda/:
  Conv2d       6  (forward: read x, write y; backward-data: read grad_y, write grad_x;
                   backward-weights: read grad_y and x), plus the weights
  BatchNorm2d  13 (stats 2 reads, apply read + residual + write; backward reduce 3 reads,
                   grad_x 3 reads + 2 writes)
  SRU          10 (stats, read, write; backward: 2 + 4 reads, 1 write), on the SRU's input
  CRU fuse     11 (pools 2, apply 2 + 1 write; backward 3 + 1 reads, 2 writes), on the CRU output
Run:  python3 tools/gpu_roofline.py [--model resnet20-scconv] [--batch 128] [--scconv build/release/scconv]
      [--flops 67e12] [--bandwidth 4.3e12] [--launch-us 4]
(FP32 FMA rate and copy bandwidth of an H200: the datasheet's 67 TFLOP/s, and the 4.3 TB/s a
device-to-device copy reached on the workplace's H200, docs of the device tool.)
"""
import argparse
import json
import subprocess
from collections import OrderedDict

PASSES = {"Conv2d": 6, "Linear": 6, "BatchNorm2d": 13, "SRU": 10, "CRU": 11, "AdaptiveAvgPool2d": 3}


def stage_of(name):
    head = name.split(".")[0]
    return head if head.startswith("layer") else ("stem" if head in ("conv1", "bn1") else "head")


def kind_of(layer):
    n, t = layer["name"], layer["type"]
    if t == "Conv2d":
        for part in ("squeeze", "GWC", "PWC1", "PWC2"):
            if "CRU." + part in n:
                return "CRU " + ("squeeze 1x1" if part == "squeeze" else part)
        return "conv 3x3" if layer["macs"] else "conv"
    if t == "CRU":
        return "CRU fuse"
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20-scconv")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--scconv", default="build/release/scconv")
    ap.add_argument("--flops", type=float, default=67e12)
    ap.add_argument("--bandwidth", type=float, default=4.3e12)
    ap.add_argument("--launch-us", type=float, default=4.0)
    a = ap.parse_args()
    summ = json.loads(subprocess.run([a.scconv, "summary", "--model", a.model, "--json"], check=True,
                                     stdout=subprocess.PIPE, text=True).stdout)
    rows = OrderedDict()
    for l in summ["layers"]:
        t = l["type"]
        if t not in PASSES and t != "CRU":
            continue
        elems = a.batch
        for d in l["output"]:
            elems *= d
        key = (stage_of(l["name"]), kind_of(l))
        r = rows.setdefault(key, {"count": 0, "flops": 0.0, "bytes": 0.0})
        r["count"] += 1
        r["flops"] += 6.0 * l["macs"] * a.batch
        r["bytes"] += 4.0 * (PASSES.get(t, 11) * elems + 3 * l["params"])
    bench = json.loads(subprocess.run([a.scconv, "bench", "--json", "--model", a.model, "--batch", "32",
                                       "--threads", "1", "--seconds", "0.5"], check=True,
                                      stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1])
    calls = {f["family"]: f["calls_per_step"] for f in bench["train_time_by_family"]}
    print(f"| stage | layer kind | layers | GFLOP | MB | floor (us) | bound |")
    print(f"|---|---|---:|---:|---:|---:|---|")
    tf = tb = tfloor = 0.0
    for (stage, kind), r in rows.items():
        ft, bt = r["flops"] / a.flops, r["bytes"] / a.bandwidth
        tf += r["flops"]
        tb += r["bytes"]
        tfloor += max(ft, bt)
        print(f"| {stage} | {kind} | {r['count']} | {r['flops'] / 1e9:.2f} | {r['bytes'] / 1e6:.1f} | "
              f"{max(ft, bt) * 1e6:.0f} | {'compute' if ft > bt else 'memory'} |")
    launches = sum(calls.values())
    print(f"| all | | | {tf / 1e9:.2f} | {tb / 1e6:.1f} | {tfloor * 1e6:.0f} | |")
    print()
    print(f"Backend calls per training step (each >= 1 kernel launch on the GPU): {launches} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v)}).")
    print(f"Launch floor at {a.launch_us:g} us per call: {launches * a.launch_us / 1000:.2f} ms; "
          f"roofline floor of the arithmetic and bytes: {tfloor * 1000:.2f} ms per step of batch {a.batch}.")


if __name__ == "__main__":
    main()
