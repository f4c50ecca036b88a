#!/usr/bin/env python3
"""tools/gen_optim_reference.py: writes tests/data/optim_torch.safetensors, PyTorch reference
trajectories for tests/test_optim.cpp:
  - torch.optim.SGD over 5 steps for several settings (momentum, Nesterov, dampening, weight
    decay with and without the norm/bias exclusion), float64, parameters and gradients drawn
    from names (tools/scconv_torch.py hash_uniform == tests/hash_init.h);
  - learning rates of MultiStepLR, CosineAnnealingLR (per epoch) and LinearLR warm-up (per
    iteration).
Run (needs PyTorch): python3 tools/gen_optim_reference.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_reference import save_safetensors  # noqa: E402
from scconv_torch import hash_uniform  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "optim_torch.safetensors")
LRS = [0.1, 0.1, 0.05, 0.05, 0.01]
SGD_CASES = [
    ("momentum", dict(momentum=0.9, weight_decay=5e-4), True),
    ("nesterov", dict(momentum=0.9, nesterov=True, weight_decay=5e-4), True),
    ("dampening", dict(momentum=0.9, dampening=0.1, weight_decay=1e-3), True),
    ("plain", dict(momentum=0.0, weight_decay=5e-4), True),
    ("exclude_norm_bias", dict(momentum=0.9, weight_decay=5e-4), False),
]


def main():
    torch.set_default_dtype(torch.float64)
    out = {}
    for name, kw, decay_all in SGD_CASES:
        w = hash_uniform(f"{name}/w", [4, 3], -1, 1).clone().requires_grad_(True)
        b = hash_uniform(f"{name}/b", [3], -1, 1).clone().requires_grad_(True)
        wd = kw.pop("weight_decay")
        groups = ([{"params": [w, b], "weight_decay": wd}] if decay_all else
                  [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}])
        opt = torch.optim.SGD(groups, lr=LRS[0], **kw)
        for k, lr in enumerate(LRS):
            for g in opt.param_groups:
                g["lr"] = lr
            w.grad = hash_uniform(f"{name}/g{k}/w", [4, 3], -1, 1)
            b.grad = hash_uniform(f"{name}/g{k}/b", [3], -1, 1)
            opt.step()
            out[f"sgd.{name}.step{k}.w"] = w.detach().clone()
            out[f"sgd.{name}.step{k}.b"] = b.detach().clone()
    p = [torch.zeros(1, requires_grad=True)]

    def trajectory(make_sched, n):
        opt = torch.optim.SGD(p, lr=0.1)
        s = make_sched(opt)
        lrs = []
        for _ in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        return torch.tensor(lrs)

    out["lr.multistep"] = trajectory(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 4], 0.1), 7)
    out["lr.cosine"] = trajectory(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 6, eta_min=0.001), 7)
    out["lr.warmup"] = trajectory(lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, total_iters=5), 8)
    save_safetensors(OUT, out, {"lrs": json.dumps(LRS)})
    print(f"wrote {len(out)} tensors to {OUT}")


if __name__ == "__main__":
    main()
