#!/usr/bin/env python3
"""tools/bench_vs_torch.py: `scconv bench` and the same training step in PyTorch, in the same
run, at the same batch and thread count, with ratios ours / PyTorch (> 1: scconv is faster; for
memory < 1 is better).

The PyTorch models come from tools/scconv_torch.py, built from the same configs/models/ JSON;
the step is the same: forward, cross-entropy, zero_grad, backward, SGD(lr 0.05, momentum 0.9,
weight decay 5e-4), batch 128 of synthetic 32x32 images, after warm-up steps, timed for at least
--seconds. Inference: eval mode under torch.no_grad(). Each measurement (ours and PyTorch's)
runs in a fresh process, so that peak resident memory (ru_maxrss) is its own.

Run:  /usr/bin/python3 tools/bench_vs_torch.py [--models resnet20,resnet20-scconv]
          [--threads 1,2] [--batch 128] [--seconds 5] [--scconv build/release/scconv] [--json F]
          [--device cuda]
With --device cuda both sides train on the GPU: PyTorch eager with channels_last (the layout
scconv's ResNets use), the device synchronised before each clock read; --threads is then the
host's thread count (default 0: all cores, PyTorch's default).
Needs PyTorch (Debian: apt-get install python3-torch, then /usr/bin/python3). A benchmark,
never a test.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ["resnet20", "resnet20-scconv", "resnet56", "resnet56-scconv", "resnet50-cifar",
          "resnet50-cifar-scconv"]


def time_steps(step, seconds, warmup=2, min_steps=3, sync=lambda: None):
    for _ in range(warmup):
        step()
    sync()
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        step()
        n += 1
        if n % 10 == 0:
            sync()
    sync()
    return (time.perf_counter() - t0) / n


def torch_worker(model, threads, batch, seconds, device="cpu"):
    """One model in PyTorch, in this (fresh) process; prints one JSON line."""
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, HERE)
    from scconv_torch import ResNet
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(os.path.join(ROOT, "configs", "models", model + ".json")) as f:
        cfg = json.load(f)
    hw = 224 if cfg.get("stem") == "imagenet" else 32
    m = ResNet(cfg)
    x = torch.randn(batch, 3, hw, hw)
    y = torch.arange(batch) % cfg.get("num_classes", 10)
    sync = lambda: None
    if device == "cuda":
        m = m.to("cuda", memory_format=torch.channels_last)
        x = x.to("cuda").contiguous(memory_format=torch.channels_last)
        y = y.to("cuda")
        sync = torch.cuda.synchronize
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def step():
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    m.train()
    train_s = time_steps(step, seconds, sync=sync)
    m.eval()
    with torch.no_grad():
        eval_s = time_steps(lambda: m(x), seconds, sync=sync)
    print(json.dumps({"model": model, "threads": threads, "batch": batch,
                      "train_images_per_second": batch / train_s,
                      "eval_images_per_second": batch / eval_s,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "device": device, "torch_version": torch.__version__}))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default=None, help="host threads, comma-separated (default 1,2; with --device cuda 0)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--scconv", default=os.path.join(ROOT, "build", "release", "scconv"))
    ap.add_argument("--json", help="also write all rows to this file")
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "THREADS"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads is None:
        a.threads = "0" if a.device == "cuda" else "1,2"
    if a.worker:
        torch_worker(a.worker[0], int(a.worker[1]), a.batch, a.seconds, a.device)
        return
    rows = []
    hdr = (f"{'model':<24}{'thr':>4} | {'train img/s ours':>16}{'torch':>8}{'ratio':>7} | "
           f"{'eval img/s ours':>15}{'torch':>8}{'ratio':>7} | {'peak MiB ours':>13}{'torch':>7}{'ratio':>7}")
    print(hdr)
    print("-" * len(hdr))
    for model in a.models.split(","):
        for t in [int(v) for v in a.threads.split(",")]:
            ours = run_json([a.scconv, "bench", "--json", "--model", model, "--threads", str(t),
                             "--batch", str(a.batch), "--seconds", str(a.seconds), "--device", a.device])
            torch_row = run_json([sys.executable, os.path.abspath(__file__), "--worker", model, str(t),
                                  "--batch", str(a.batch), "--seconds", str(a.seconds), "--device", a.device])
            r = {"model": model, "threads": t, "ours": ours, "torch": torch_row}
            for k in ("train_images_per_second", "eval_images_per_second", "peak_rss_bytes"):
                r[k + "_ratio"] = ours[k] / torch_row[k]
            rows.append(r)
            mib = 1 << 20
            print(f"{model:<24}{t:>4} | {ours['train_images_per_second']:>16.1f}"
                  f"{torch_row['train_images_per_second']:>8.1f}{r['train_images_per_second_ratio']:>7.2f} | "
                  f"{ours['eval_images_per_second']:>15.1f}{torch_row['eval_images_per_second']:>8.1f}"
                  f"{r['eval_images_per_second_ratio']:>7.2f} | {ours['peak_rss_bytes'] / mib:>13.0f}"
                  f"{torch_row['peak_rss_bytes'] / mib:>7.0f}{r['peak_rss_bytes_ratio']:>7.2f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
