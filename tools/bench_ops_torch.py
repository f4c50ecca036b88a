#!/usr/bin/env python3
"""tools/bench_ops_torch.py: the op list of bench/bench_ops.cpp in PyTorch, in the same run as
ours, with the same thread count, and the ratio PyTorch time / our time (> 1: we are faster).

Run:  python3 tools/bench_ops_torch.py [--threads 2] [--bench build/release/bench_ops]
Needs PyTorch (apt-get install python3-torch); a benchmark, never a test.
"""
import argparse
import json
import subprocess
import time

import torch
import torch.nn.functional as F


def time_it(f):
    f()
    f()
    ts, start = [], time.perf_counter()
    while len(ts) < 5 or (time.perf_counter() - start < 0.4 and len(ts) < 200):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def split_cat(x):
    a, b = torch.split(x, [8, 8], 1)
    return torch.cat([b, a], 1)


def sru(x, g, b, w):
    """The unfused SRU in PyTorch (16 groups of one channel, soft gate), as bench_ops's sru_fused."""
    r = torch.sigmoid(F.group_norm(x, 16, g, b) * w.view(1, -1, 1, 1))
    info = r > 0.5
    x1, x2 = torch.where(info, torch.ones_like(r), r) * x, torch.where(info, torch.zeros_like(r), r) * x
    return torch.cat([x1[:, :8] + x2[:, 8:], x1[:, 8:] + x2[:, :8]], 1)


def cru_fuse(y1, a, b):
    """The CRU fuse (branch softmax) in PyTorch, as bench_ops's cru_fuse."""
    y2 = torch.cat([a, b], 1)
    s = torch.cat([F.adaptive_avg_pool2d(y1, 1), F.adaptive_avg_pool2d(y2, 1)], 1)
    beta = torch.softmax(s.view(s.shape[0], 2, -1), 1)
    n, c = y1.shape[:2]
    return beta[:, 0].reshape(n, c, 1, 1) * y1 + beta[:, 1].reshape(n, c, 1, 1) * y2


def cru_fuse_lower(y1, low, w):
    """bench_ops's cru_fuse_lower_nhwc in PyTorch: the lower branch's 1x1 convolution, then the fuse."""
    y2 = F.conv2d(low, w)
    s = torch.cat([F.adaptive_avg_pool2d(y1, 1), F.adaptive_avg_pool2d(y2, 1)], 1)
    beta = torch.softmax(s.view(s.shape[0], 2, -1), 1)
    n, c = y1.shape[:2]
    return beta[:, 0].reshape(n, c, 1, 1) * y1 + beta[:, 1].reshape(n, c, 1, 1) * y2


LABELS = torch.arange(128) % 10
ACT = (128, 16, 32, 32)
BENCHES = [
    ("conv2d_16x16_3x3", [ACT, (16, 16, 3, 3)], lambda x, w: F.conv2d(x, w, None, 1, 1)),
    ("conv2d_16x32_3x3_s2", [ACT, (32, 16, 3, 3)], lambda x, w: F.conv2d(x, w, None, 2, 1)),
    ("batch_norm_train", [ACT, (16,), (16,)],
     lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)),
    ("group_norm_g4", [ACT, (16,), (16,)], lambda x, g, b: F.group_norm(x, 4, g, b)),
    ("sru_fused", [ACT, (16,), (16,), (16,)], sru),
    ("cru_fuse", [ACT, (128, 8, 32, 32), (128, 8, 32, 32)], cru_fuse),
    ("cru_fuse_lower_nhwc", [ACT, (128, 4, 32, 32), (16, 4, 1, 1)], cru_fuse_lower),
    ("conv1x1_split_nhwc", [ACT, (4, 8, 1, 1), (4, 8, 1, 1)],
     lambda x, a, b: torch.cat([F.conv2d(x[:, :8], a), F.conv2d(x[:, 8:], b)], 1)),
    ("relu", [ACT], torch.relu),
    ("sigmoid", [ACT], torch.sigmoid),
    ("add", [ACT, ACT], torch.add),
    ("mul_per_channel", [ACT, (1, 16, 1, 1)], torch.mul),
    ("sum_0_2_3", [ACT], lambda x: x.sum(dim=(0, 2, 3))),
    ("global_avg_pool", [ACT], lambda x: F.adaptive_avg_pool2d(x, 1)),
    ("max_pool_3s2p1", [ACT], lambda x: F.max_pool2d(x, 3, 2, 1)),
    ("avg_pool_2s2", [ACT], lambda x: F.avg_pool2d(x, 2, 2)),
    ("split_cat", [ACT], split_cat),
    ("pad_channels", [(128, 16, 16, 16)], lambda x: F.pad(x, (0, 0, 0, 0, 8, 8))),
    ("softmax_channels", [(128, 32, 1, 1)], lambda x: torch.softmax(x, 1)),
    ("linear_64x10", [(128, 64), (10, 64), (10,)], F.linear),
    ("cross_entropy", [(128, 10)], lambda x: F.cross_entropy(x, LABELS)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default="build/release/bench_ops")
    a = ap.parse_args()
    ours = {r["name"]: r for r in json.loads(subprocess.check_output(
        [a.bench, "--threads", str(a.threads), "--json"]))}
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 128; "
          "ratio = torch / scconv (> 1: scconv faster)")
    print(f"{'op':22s} {'ours fwd':>9s} {'torch fwd':>9s} {'ratio':>6s}   "
          f"{'ours f+b':>9s} {'torch f+b':>9s} {'ratio':>6s}")
    for name, shapes, fn in BENCHES:
        xs = [torch.randn(s, requires_grad=True) for s in shapes]
        with torch.no_grad():
            gy = torch.randn_like(fn(*xs))

        def fwd():
            with torch.no_grad():
                fn(*xs)

        def both():
            for x in xs:
                x.grad = None
            fn(*xs).backward(gy)

        tf, tb = time_it(fwd) * 1e3, time_it(both) * 1e3
        o = ours.get(name)
        if o is None:
            continue
        print(f"{name:22s} {o['fwd_ms']:9.3f} {tf:9.3f} {tf / o['fwd_ms']:6.2f}   "
              f"{o['fwd_bwd_ms']:9.3f} {tb:9.3f} {tb / o['fwd_bwd_ms']:6.2f}")


if __name__ == "__main__":
    main()
