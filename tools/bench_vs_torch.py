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
          [--device cuda] [--torch-python VENV/bin/python] [--modes eager,channels_last,compile]
          [--precision fp32,bf16]
--torch-python runs PyTorch's side with another interpreter, e.g. a virtual environment with the
current torch from PyPI (python3 -m venv V && V/bin/pip install torch numpy). PyTorch runs in each
of --modes (default: eager, channels_last and, with torch >= 2, compile): eager NCHW; eager with
the model and input in channels_last; torch.compile (inductor) of the channels_last model, its
compilation inside the warm-up. The table compares us with PyTorch's fastest mode per row and
lists every mode's images/s. --precision bf16 runs ours with --precision bf16 and PyTorch under
torch.autocast("cpu", dtype=torch.bfloat16) (forward and loss; backward follows it).
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


def torch_worker(model, threads, batch, seconds, device="cpu", mode="eager", precision="fp32"):
    """One model in PyTorch, in this (fresh) process, in one mode; prints one JSON line."""
    import contextlib
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
    elif mode in ("channels_last", "compile"):
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    fwd = torch.compile(m) if mode == "compile" else m
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

    def step():
        with autocast():
            loss = F.cross_entropy(fwd(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        with autocast():
            fwd(x)

    m.train()
    train_s = time_steps(step, seconds, sync=sync)
    m.eval()
    with torch.no_grad():
        eval_s = time_steps(infer, seconds, sync=sync)
    print(json.dumps({"model": model, "threads": threads, "batch": batch,
                      "train_images_per_second": batch / train_s,
                      "eval_images_per_second": batch / eval_s,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "device": device, "mode": mode, "precision": precision,
                      "torch_version": torch.__version__}))


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
    ap.add_argument("--torch-python", default=sys.executable, help="the Python whose torch runs PyTorch's side")
    ap.add_argument("--modes", default=None, help="PyTorch's modes: eager, channels_last, compile (default: all its version has)")
    ap.add_argument("--precision", default="fp32", help="fp32, bf16 or both (fp32,bf16)")
    ap.add_argument("--worker", nargs=4, metavar=("MODEL", "THREADS", "MODE", "PRECISION"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads is None:
        a.threads = "0" if a.device == "cuda" else "1,2"
    if a.worker:
        torch_worker(a.worker[0], int(a.worker[1]), a.batch, a.seconds, a.device, a.worker[2], a.worker[3])
        return
    if a.modes is None:
        major = subprocess.run([a.torch_python, "-c", "import torch; print(torch.__version__)"], check=True,
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        a.modes = "eager" if a.device == "cuda" else "eager,channels_last" + (",compile" if int(major.split(".")[0]) >= 2 else "")
        print(f"PyTorch {major} ({a.torch_python}); modes {a.modes}")
    modes = a.modes.split(",")
    rows = []
    hdr = (f"{'model':<22}{'thr':>4}{'prec':>5} | {'train img/s ours':>16}{'torch':>8}{'ratio':>6} | "
           f"{'eval img/s ours':>15}{'torch':>8}{'ratio':>6} | {'peak MiB ours':>13}{'torch':>7}{'ratio':>6} | "
           f"torch train / eval per mode")
    print(hdr)
    print("-" * len(hdr))
    for model in a.models.split(","):
        for t in [int(v) for v in a.threads.split(",")]:
            for prec in a.precision.split(","):
                ours = run_json([a.scconv, "bench", "--json", "--model", model, "--threads", str(t),
                                 "--batch", str(a.batch), "--seconds", str(a.seconds), "--device", a.device,
                                 "--precision", prec])
                per_mode = {mode: run_json([a.torch_python, os.path.abspath(__file__), "--worker", model, str(t), mode, prec,
                                            "--batch", str(a.batch), "--seconds", str(a.seconds), "--device", a.device])
                            for mode in modes}
                # PyTorch's best mode, each measure on its own (the fastest training mode, the
                # fastest inference mode, the smallest memory)
                best = {k: max(per_mode.values(), key=lambda m: m[k])[k]
                        for k in ("train_images_per_second", "eval_images_per_second")}
                best["peak_rss_bytes"] = min(m["peak_rss_bytes"] for m in per_mode.values())
                r = {"model": model, "threads": t, "precision": prec, "ours": ours, "torch": per_mode,
                     "torch_best": best}
                for k in ("train_images_per_second", "eval_images_per_second", "peak_rss_bytes"):
                    r[k + "_ratio"] = ours[k] / best[k]
                rows.append(r)
                mib = 1 << 20
                modes_txt = "  ".join(f"{m} {v['train_images_per_second']:.0f}/{v['eval_images_per_second']:.0f}"
                                      for m, v in per_mode.items())
                print(f"{model:<22}{t:>4}{prec:>5} | {ours['train_images_per_second']:>16.1f}"
                      f"{best['train_images_per_second']:>8.1f}{r['train_images_per_second_ratio']:>6.2f} | "
                      f"{ours['eval_images_per_second']:>15.1f}{best['eval_images_per_second']:>8.1f}"
                      f"{r['eval_images_per_second_ratio']:>6.2f} | {ours['peak_rss_bytes'] / mib:>13.0f}"
                      f"{best['peak_rss_bytes'] / mib:>7.0f}{r['peak_rss_bytes_ratio']:>6.2f} | {modes_txt}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
