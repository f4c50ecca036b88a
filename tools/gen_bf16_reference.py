#!/usr/bin/env python3
"""tools/gen_bf16_reference.py: writes tests/data/bf16_torch.safetensors, the PyTorch reference
data for the bf16 cases of tests/test_bf16.cpp.

- `round.f32` (float32 values chosen to hit the rounding's edge cases: ties to even, the largest
  values, subnormals, infinities, NaN) and `round.bf16`, PyTorch's `.to(torch.bfloat16)` of them,
  stored as safetensors BF16.
- For each convolution and linear case: float32 inputs `<case>.in<k>` and projection `<case>.proj`,
  and `<case>.out`, `<case>.grad<k>`: the output and the gradients of sum(out * proj) that
  PyTorch computes in float64 with every factor of a product rounded to bfloat16 -- what
  scconv's Precision::BFloat16 defines (core/dtype.h): the input and the weight, and in backward
  the projection where it multiplies one of them; the bias, and the sum that is its gradient,
  stay unrounded.

Run (needs PyTorch: apt-get install python3-torch):  python3 tools/gen_bf16_reference.py
Never needed by the build or the tests: the output file is committed.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_reference import save_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "bf16_torch.safetensors")

# name: (input shapes, function of float64 tensors); the same cases as tests/test_bf16.cpp
CASES = {
    "conv_3x3_16_16": ([(2, 16, 8, 8), (16, 16, 3, 3)],
                       lambda x, w: F.conv2d(x, w, padding=1)),
    "conv_3x3_s2_16_32_bias": ([(2, 16, 8, 8), (32, 16, 3, 3), (32,)],
                               lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    "conv_stem_3_16": ([(2, 3, 8, 8), (16, 3, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1)),
    "conv_1x1_32_16": ([(2, 32, 6, 6), (16, 32, 1, 1)], lambda x, w: F.conv2d(x, w)),
    "conv_3x3_g2_8_16": ([(2, 8, 6, 6), (16, 4, 3, 3)], lambda x, w: F.conv2d(x, w, padding=1, groups=2)),
    "linear_64_10": ([(8, 64), (10, 64), (10,)], lambda x, w, b: F.linear(x, w, b)),
}


def bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


def rounding_values():
    bits = [0x3f808000, 0x3f818000, 0x3f808001, 0x3f817fff,  # ties to even (down, up), just above/below
            0x7f7fffff, 0x7f7f7fff, 0xff7fffff,              # the largest float32 (rounds to inf), below it
            0x00000001, 0x00008000, 0x00018000, 0x807fffff,  # subnormals
            0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,  # inf, -inf, NaN, a signalling NaN
            0x00000000, 0x80000000, 0x3f800000, 0xc0490fdb]  # zeros, 1, -pi
    f = np.array(bits, dtype=np.uint32).view(np.float32)
    rng = np.random.default_rng(7)
    f = np.concatenate([f, rng.standard_normal(45).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 45)])
    return torch.from_numpy(f.astype(np.float32))


def main():
    rng = np.random.default_rng(20261203)
    r = rounding_values()
    out = {"round.f32": r, "round.bf16": r.to(torch.bfloat16)}
    for name, (shapes, fn) in CASES.items():
        ins32 = [torch.from_numpy(rng.standard_normal(s).astype(np.float32)) for s in shapes]
        ins = [(bf16(t) if k < 2 else t).double().requires_grad_(True) for k, t in enumerate(ins32)]
        y = fn(*ins)
        proj32 = torch.from_numpy(rng.standard_normal(tuple(y.shape)).astype(np.float32))
        grads = torch.autograd.grad((y * bf16(proj32).double()).sum(), ins[:2], retain_graph=True)
        if len(ins) == 3:
            grads += torch.autograd.grad((y * proj32.double()).sum(), ins[2:])
        for k, t in enumerate(ins32):
            out[f"{name}.in{k}"] = t
            out[f"{name}.grad{k}"] = grads[k]
        out[f"{name}.proj"] = proj32
        out[f"{name}.out"] = y.detach()
    save_safetensors(OUT, out)
    print(f"wrote {OUT} ({len(out)} tensors)")


if __name__ == "__main__":
    main()
