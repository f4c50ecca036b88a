#!/usr/bin/env python3
"""tools/gen_torch_reference.py: writes tests/data/torch_ops.safetensors, the PyTorch reference
data for tests/test_torch.cpp.

For every case of tests/op_cases.h (same names, same functions, written here with torch), it
stores float32 inputs `<case>.in<k>`, a projection `<case>.proj`, the output `<case>.out` and the
gradients `<case>.grad<k>` of sum(out * proj), computed by PyTorch in float64 from the float32
inputs. Batch-norm training also stores the updated running statistics.

Run (needs PyTorch: apt-get install python3-torch):  python3 tools/gen_torch_reference.py
Never needed by the build or the tests: the output file is committed.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "torch_ops.safetensors")


def labels(n, c):
    return torch.tensor([(i * 7 + 3) % c for i in range(n)], dtype=torch.int64)


def running(c, var):
    return torch.tensor([0.5 + 0.25 * i if var else 0.1 * i - 0.2 for i in range(c)],
                        dtype=torch.float64)


def seed_gn(x, groups, gamma, beta, eps=1e-10):
    n, c, h, w = x.shape
    v = x.reshape(n, groups, -1)
    v = (v - v.mean(dim=2, keepdim=True)) / (v.std(dim=2, keepdim=True) + eps)
    return v.reshape(n, c, h, w) * gamma + beta


def split_cat_swap(x):
    a, b = torch.split(x, [2, 3], dim=1)
    return torch.cat([b, a], dim=1)


def sru_op(x, gamma, beta, w, groups, gate, gn="torch", t=0.5):
    """The fused SRU op of autograd/ops.h: the channel weights w are an input."""
    if gn == "torch":
        g = F.group_norm(x, groups, gamma, beta, eps=1e-5)
    else:
        g = seed_gn(x, groups, gamma.view(-1, 1, 1), beta.view(-1, 1, 1))
    r = torch.sigmoid(g * w.view(1, -1, 1, 1))
    info = r > t
    one, zero = torch.ones_like(r), torch.zeros_like(r)
    if gate == "soft":
        w1, w2 = torch.where(info, one, r), torch.where(info, zero, r)
    elif gate == "hard":
        w1, w2 = info.to(x.dtype), (~info).to(x.dtype)
    else:
        w1, w2 = torch.where(info, r, zero), torch.where(info, zero, r)
    x1, x2 = w1 * x, w2 * x
    h = x.shape[1] // 2
    return torch.cat([x1[:, :h] + x2[:, h:], x1[:, h:] + x2[:, :h]], dim=1)


def cru_fuse_op(y1, p0, p1, kind):
    """The fused CRU fuse of autograd/ops.h: y2 = cat(p0, p1)."""
    return fuse(y1, torch.cat([p0, p1], 1), kind)


def cru_fuse_lower_op(y1, low, w, kind):
    """cru_fuse_lower of autograd/ops.h: y2 = conv1x1(low, w)."""
    return fuse(y1, F.conv2d(low, w), kind)


def fuse(y1, y2, kind):
    n, c = y1.shape[:2]
    if kind == "channel":
        z = torch.cat([y1, y2], 1)
        z = torch.softmax(F.adaptive_avg_pool2d(z, 1), 1) * z
        return z[:, :c] + z[:, c:]
    s = torch.cat([F.adaptive_avg_pool2d(y1, 1), F.adaptive_avg_pool2d(y2, 1)], 1)
    beta = torch.softmax(s.view(n, 2, c), 1)
    return beta[:, 0].reshape(n, c, 1, 1) * y1 + beta[:, 1].reshape(n, c, 1, 1) * y2


AUX = {}


def bn_train(x, g, b):
    rm, rv = running(3, False), running(3, True)
    y = F.batch_norm(x, rm, rv, g, b, training=True, momentum=0.1, eps=1e-5)
    AUX["batch_norm_train.running_mean"] = rm
    AUX["batch_norm_train.running_var"] = rv
    return y


# name: (input shapes, function, positive inputs)
CASES = {
    "add_full": ([(2, 3, 4, 5), (2, 3, 4, 5)], lambda a, b: a + b, False),
    "add_channel": ([(2, 3, 4, 5), (1, 3, 1, 1)], lambda a, b: a + b, False),
    "add_scalar_tensor": ([(2, 3, 4, 5), ()], lambda a, b: a + b, False),
    "sub_bcast": ([(2, 3, 4, 5), (3, 1, 5)], lambda a, b: a - b, False),
    "mul_full": ([(3, 7), (3, 7)], lambda a, b: a * b, False),
    "mul_channel": ([(2, 3, 4, 5), (1, 3, 1, 1)], lambda a, b: a * b, False),
    "div_bcast": ([(2, 3, 4, 5), (1, 3, 1, 1)], lambda a, b: a / b, True),
    "neg": ([(2, 3, 5)], lambda x: -x, False),
    "relu": ([(2, 3, 5, 5)], torch.relu, False),
    "sigmoid": ([(2, 3, 5)], torch.sigmoid, False),
    "exp": ([(2, 3, 5)], torch.exp, False),
    "log": ([(2, 3, 5)], torch.log, True),
    "sqrt": ([(2, 3, 5)], torch.sqrt, True),
    "pow2": ([(2, 3, 5)], lambda x: x ** 2, False),
    "pow3": ([(2, 3, 5)], lambda x: x ** 3, False),
    "pow_frac": ([(2, 3, 5)], lambda x: x ** 1.5, True),
    "clamp": ([(2, 3, 5)], lambda x: torch.clamp(x, -0.5, 0.5), False),
    "where_gt": ([(2, 3, 4), (2, 3, 4)], lambda a, b: torch.where(a > 0, a, b), False),
    "where_bcast": ([(2, 3, 4), (1, 3, 1)], lambda a, b: torch.where(a > 0, b, a), False),
    "sum_023": ([(2, 3, 4, 5)], lambda x: x.sum(dim=(0, 2, 3), keepdim=True), False),
    "sum_1": ([(2, 3, 4, 5)], lambda x: x.sum(dim=1), False),
    "sum_all": ([(2, 3, 4, 5)], lambda x: x.sum(), False),
    "mean_23": ([(2, 3, 4, 5)], lambda x: x.mean(dim=(2, 3)), False),
    "mean_all": ([(3, 7)], lambda x: x.mean(), False),
    "global_avg_pool": ([(2, 3, 5, 7)], lambda x: F.adaptive_avg_pool2d(x, 1), False),
    "max_pool_3s2p1": ([(2, 3, 7, 7)], lambda x: F.max_pool2d(x, 3, 2, 1), False),
    "max_pool_2s2": ([(1, 2, 6, 5)], lambda x: F.max_pool2d(x, 2, 2), False),
    "avg_pool_3s1p1": ([(2, 3, 5, 5)], lambda x: F.avg_pool2d(x, 3, 1, 1), False),
    "avg_pool_2s2": ([(1, 2, 6, 6)], lambda x: F.avg_pool2d(x, 2, 2), False),
    "matmul": ([(3, 5), (5, 4)], torch.matmul, False),
    "linear": ([(4, 6), (3, 6), (3,)], F.linear, False),
    "conv_3x3_p1_bias": ([(2, 3, 6, 6), (4, 3, 3, 3), (4,)],
                         lambda x, w, b: F.conv2d(x, w, b, 1, 1), False),
    "conv_3x3_s2": ([(2, 4, 7, 7), (6, 4, 3, 3)], lambda x, w: F.conv2d(x, w, None, 2, 1), False),
    "conv_groups2": ([(1, 4, 5, 5), (6, 2, 3, 3), (6,)],
                     lambda x, w, b: F.conv2d(x, w, b, 1, 1, 1, 2), False),
    "conv_dilation2": ([(2, 2, 7, 7), (3, 2, 3, 3)],
                       lambda x, w: F.conv2d(x, w, None, 1, 2, 2), False),
    "conv_narrow_4to16_3x3": ([(1, 4, 5, 6), (16, 4, 3, 3)], lambda x, w: F.conv2d(x, w, None, 1, 1), False),
    "conv_narrow_8to32_3x3": ([(1, 8, 6, 7), (32, 8, 3, 3)], lambda x, w: F.conv2d(x, w, None, 1, 1), False),
    "conv_narrow_4to64_3x3_p0": ([(1, 4, 5, 6), (64, 4, 3, 3)], lambda x, w: F.conv2d(x, w, None, 1, 0), False),
    "conv_narrow_4to32_3x3_s2": ([(1, 4, 7, 8), (32, 4, 3, 3)], lambda x, w: F.conv2d(x, w, None, 2, 1), False),
    "conv_narrow_8to16_5x5_s2_p2": ([(1, 8, 9, 6), (16, 8, 5, 5)], lambda x, w: F.conv2d(x, w, None, 2, 2), False),
    "conv_narrow_8to64_2x3_p1": ([(1, 8, 5, 4), (64, 8, 2, 3)], lambda x, w: F.conv2d(x, w, None, 1, 1), False),
    "conv_1x1_s2": ([(3, 5, 5, 5), (7, 5, 1, 1)], lambda x, w: F.conv2d(x, w, None, 2), False),
    "conv_batch1_odd": ([(1, 3, 5, 7), (2, 3, 3, 3), (2,)],
                        lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 0)), False),
    "batch_norm_train": ([(2, 3, 4, 5), (3,), (3,)], bn_train, False),
    "batch_norm_eval": ([(2, 3, 4, 5), (3,), (3,)],
                        lambda x, g, b: F.batch_norm(x, running(3, False), running(3, True), g, b,
                                                     training=False, eps=1e-5), False),
    "batch_norm_2d_input": ([(5, 3), (3,), (3,)],
                            lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), False),
    "group_norm_g2": ([(2, 4, 3, 3), (4,), (4,)], lambda x, g, b: F.group_norm(x, 2, g, b), False),
    "group_norm_g1_batch1": ([(1, 3, 4, 5), (3,), (3,)],
                             lambda x, g, b: F.group_norm(x, 1, g, b), False),
    "group_norm_seed_g2": ([(2, 4, 3, 3), (4, 1, 1), (4, 1, 1)],
                           lambda x, g, b: seed_gn(x, 2, g, b), False),
    "slice_channels": ([(2, 5, 3, 3)], lambda x: x[:, 1:4], False),
    "split_cat_swap": ([(2, 5, 3, 3)], split_cat_swap, False),
    "conv1x1_split_two": ([(2, 5, 3, 4), (2, 3, 1, 1), (3, 2, 1, 1)], lambda x, a, b: torch.cat(
        [F.conv2d(x[:, 3:], b), 2 * F.conv2d(x[:, :3], a)], 1), False),
    "conv1x1_split_second_only": ([(1, 6, 3, 3), (2, 4, 1, 1), (3, 2, 1, 1)],
                                  lambda x, a, b: F.conv2d(x[:, 4:], b), False),
    "conv1x1_split_16_to_8": ([(1, 16, 3, 3), (4, 8, 1, 1), (4, 8, 1, 1)], lambda x, a, b: torch.cat(
        [F.conv2d(x[:, :8], a), F.conv2d(x[:, 8:], b)], 1), False),
    "conv1x1_split_16_to_8_second_only": ([(1, 16, 3, 3), (4, 8, 1, 1), (4, 8, 1, 1)],
                                          lambda x, a, b: F.conv2d(x[:, 8:], b), False),
    "cat_two": ([(2, 3, 4, 4), (2, 2, 4, 4)], lambda a, b: torch.cat([a, b], 1), False),
    "subsample2": ([(2, 3, 5, 5)], lambda x: x[:, :, ::2, ::2], False),
    "pad_channels": ([(2, 3, 4, 4)], lambda x: F.pad(x, (0, 0, 0, 0, 2, 1)), False),
    "flatten": ([(2, 3, 4, 5)], lambda x: torch.flatten(x, 1), False),
    "softmax_rows": ([(3, 5)], lambda x: torch.softmax(x, 1), False),
    "softmax_mid": ([(2, 4, 3)], lambda x: torch.softmax(x, 1), False),
    "log_softmax": ([(3, 5)], lambda x: torch.log_softmax(x, -1), False),
    "cross_entropy": ([(5, 4)], lambda x: F.cross_entropy(x, labels(5, 4)), False),
    "cross_entropy_smooth": ([(6, 3)],
                             lambda x: F.cross_entropy(x, labels(6, 3), label_smoothing=0.1), False),
    "sru_soft": ([(2, 4, 3, 3), (4,), (4,), (4,)], lambda x, g, b, w: sru_op(x, g, b, w, 2, "soft"), False),
    "sru_hard_seed_gn": ([(2, 4, 3, 3), (4,), (4,), (4,)],
                         lambda x, g, b, w: sru_op(x, g, b, w, 2, "hard", "seed"), False),
    "sru_reweighted_g4": ([(1, 4, 3, 5), (4,), (4,), (4,)],
                          lambda x, g, b, w: sru_op(x, g, b, w, 4, "hard_reweighted", t=0.4), False),
    "sru_soft_c16": ([(1, 16, 3, 3), (16,), (16,), (16,)], lambda x, g, b, w: sru_op(x, g, b, w, 4, "soft"), False),
    "batch_norm_relu_train": ([(2, 3, 4, 5), (3,), (3,)],
                              lambda x, g, b: F.relu(F.batch_norm(x, running(3, False), running(3, True), g, b,
                                                                   training=True)), False),
    "batch_norm_add_relu_train": ([(2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5)],
                                  lambda x, g, b, r: F.relu(F.batch_norm(x, None, None, g, b, training=True) + r),
                                  False),
    "batch_norm_add_relu_eval": ([(2, 3, 4, 5), (3,), (3,), (2, 3, 4, 5)],
                                 lambda x, g, b, r: F.relu(F.batch_norm(x, running(3, False), running(3, True), g, b,
                                                                        training=False) + r), False),
    "cru_fuse_branch": ([(2, 5, 3, 4), (2, 3, 3, 4), (2, 2, 3, 4)],
                        lambda y1, a, b: cru_fuse_op(y1, a, b, "branch"), False),
    "cru_fuse_channel": ([(2, 5, 3, 4), (2, 1, 3, 4), (2, 4, 3, 4)],
                         lambda y1, a, b: cru_fuse_op(y1, a, b, "channel"), False),
    "cru_fuse_lower_branch": ([(2, 5, 3, 4), (2, 3, 3, 4), (5, 3, 1, 1)],
                              lambda y1, low, w: cru_fuse_lower_op(y1, low, w, "branch"), False),
    "cru_fuse_lower_channel": ([(2, 6, 3, 3), (2, 2, 3, 3), (6, 2, 1, 1)],
                               lambda y1, low, w: cru_fuse_lower_op(y1, low, w, "channel"), False),
    "cru_fuse_lower_16from4": ([(1, 16, 3, 3), (1, 4, 3, 3), (16, 4, 1, 1)],
                               lambda y1, low, w: cru_fuse_lower_op(y1, low, w, "branch"), False),
}


def save_safetensors(path, tensors, metadata=None):
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        if t.dtype == torch.bfloat16:  # (numpy has no bfloat16: its bits as int16)
            a, dtype = t.view(torch.int16).numpy(), "BF16"
        else:
            a = t.numpy()  # (np.ascontiguousarray makes 0-d 1-d)
            dtype = {np.float32: "F32", np.float64: "F64", np.int64: "I64"}[a.dtype.type]
        raw = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def main():
    rng = np.random.default_rng(20260101)
    out = {}
    for name, (shapes, fn, positive) in CASES.items():
        ins32 = [torch.from_numpy(np.asarray(rng.uniform(0.5, 1.5, s) if positive
                                             else rng.standard_normal(s), dtype=np.float32))
                 for s in shapes]
        ins = [t.double().requires_grad_(True) for t in ins32]
        y = fn(*ins)
        proj = torch.from_numpy(rng.standard_normal(tuple(y.shape)).astype(np.float32))
        (y * proj.double()).sum().backward()
        for k, t in enumerate(ins32):
            out[f"{name}.in{k}"] = t
            # an input the output does not depend on (e.g. w under the hard gate) gets no grad
            grad = ins[k].grad if ins[k].grad is not None else torch.zeros_like(ins[k])
            out[f"{name}.grad{k}"] = grad.float()
        out[f"{name}.proj"] = proj
        out[f"{name}.out"] = y.detach().float()
    for k, v in AUX.items():
        out[k] = v.float()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_safetensors(OUT, out)
    print(f"wrote {len(CASES)} cases, {len(out)} tensors, {os.path.getsize(OUT)} bytes to {OUT}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
