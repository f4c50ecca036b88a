"""tools/scconv_torch.py: a PyTorch definition of SRU, CRU, SCConv and the ResNets, written from
../shared/docs/scconv-spec.md and the seeds' community code, with the same parameter names as
scconv's C++ modules. Used only to generate reference data (tools/gen_scconv_reference.py) and
for benchmarks; never by the build or the tests.

Also `hash_fill`: deterministic pseudo-random values from a tensor's name, identical to
tests/hash_init.h, so both sides get the same weights without storing them.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- hash-based values (mirror of core/math/random.h + tests/hash_init.h) ------------------------
M64 = (1 << 64) - 1


def _mix64(z):
    z = (z + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(M64)
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(M64)
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(M64)
    return z ^ (z >> np.uint64(31))


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def hash_uniform(name, shape, lo, hi):
    n = int(np.prod(shape)) if len(shape) else 1
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64)
        u = (_mix64(np.uint64(fnv1a64(name)) ^ _mix64(idx)) >> np.uint64(11)).astype(np.float64)
    u = u * (1.0 / 9007199254740992.0)
    return torch.from_numpy((lo + (hi - lo) * u).reshape(shape))


def hash_fill(name, t):
    """The value rule of tests/hash_init.h, by name and rank."""
    shape = tuple(t.shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if name.endswith("running_var"):
        return hash_uniform(name, shape, 0.5, 1.5)
    if name.endswith("running_mean"):
        return hash_uniform(name, shape, -0.1, 0.1)
    if t.dim() in (2, 4):  # conv / linear weights: variance 1 / fan_in
        b = math.sqrt(3.0 / (t[0].numel()))
        return hash_uniform(name, shape, -b, b)
    if name.endswith("weight") or name.endswith("gamma"):  # norm scales
        return hash_uniform(name, shape, 0.8, 1.2)
    return hash_uniform(name, shape, -0.1, 0.1)  # biases, norm shifts


def hash_init_(module, prefix=""):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            t.copy_(hash_fill(prefix + name, t).to(t.dtype))


# ---- SRU -------------------------------------------------------------------------------------------
class GroupBatchnorm2d(nn.Module):
    """The seeds' group norm: (x - mean) / (unbiased std + eps), gamma/beta of shape (C, 1, 1)."""

    def __init__(self, c, groups, eps=1e-10):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.gamma = nn.Parameter(torch.randn(c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(c, 1, 1))

    def forward(self, x):
        n, c, h, w = x.shape
        v = x.reshape(n, self.groups, -1)
        v = (v - v.mean(dim=2, keepdim=True)) / (v.std(dim=2, keepdim=True) + self.eps)
        return v.reshape(n, c, h, w) * self.gamma + self.beta


class SRU(nn.Module):
    # With track_gate_margin on (tools/gen_scconv_reference.py; off for timing runs such as
    # tools/bench_vs_torch.py, where it would add a pass), the smallest |R - t| any SRU has seen
    # since it was last reset: the distance of the data from the gate's jump. A float32 run of
    # data within float32 rounding of it (about 6e-8 at t = 0.5) may land on the other side, so
    # reference data should keep it larger.
    track_gate_margin = False
    min_gate_margin = float("inf")

    def __init__(self, c, groups=16, threshold=0.5, gate="soft", gamma_norm="sum", gn="torch",
                 mask_on="R"):
        super().__init__()
        self.gn = nn.GroupNorm(groups, c) if gn == "torch" else GroupBatchnorm2d(c, groups)
        self.t, self.gate, self.gamma_norm, self.kind = threshold, gate, gamma_norm, gn
        self.mask_on = mask_on  # "w": seed 003's info_mask = w_gamma > t, one mask per channel

    def forward(self, x):
        g = self.gn(x)
        gamma = (self.gn.weight if self.kind == "torch" else self.gn.gamma).reshape(-1)
        w = gamma / gamma.sum() if self.gamma_norm == "sum" else F.softmax(gamma, 0)
        r = torch.sigmoid(g * w.view(1, -1, 1, 1))
        if SRU.track_gate_margin:
            SRU.min_gate_margin = min(SRU.min_gate_margin, (r - self.t).abs().min().item())
        info = r > self.t if self.mask_on == "R" else (w.view(1, -1, 1, 1) > self.t).expand_as(r)
        one, zero = torch.ones_like(r), torch.zeros_like(r)
        if self.gate == "soft":
            w1, w2 = torch.where(info, one, r), torch.where(info, zero, r)
        elif self.gate == "hard":
            w1, w2 = info.to(x.dtype), (~info).to(x.dtype)
        else:  # hard_reweighted
            w1, w2 = torch.where(info, r, zero), torch.where(info, zero, r)
        x1, x2 = w1 * x, w2 * x
        h = x.shape[1] // 2
        return torch.cat([x1[:, :h] + x2[:, h:], x1[:, h:] + x2[:, :h]], dim=1)


# ---- CRU -------------------------------------------------------------------------------------------
class CRU(nn.Module):
    def __init__(self, c_in, c_out, stride=1, alpha=0.5, squeeze=2, groups=2, kernel=3,
                 fuse="branch_softmax", squeeze_kind="conv", gwc_bias=True):
        super().__init__()
        self.up = int(math.floor(alpha * c_in))
        self.low = c_in - self.up
        ups, lows = self.up // squeeze, self.low // squeeze
        self.ups, self.lows = ups, lows
        self.fuse, self.stride, self.c_out, self.squeeze_kind = fuse, stride, c_out, squeeze_kind
        if fuse == "split_conv":
            self.split_conv_up = nn.Conv2d(c_in, self.up, 1, bias=False)
            self.split_conv_low = nn.Conv2d(c_in, self.low, 1, bias=False)
        if squeeze_kind == "conv":
            self.squeeze1 = nn.Conv2d(self.up, ups, 1, bias=False)
            self.squeeze2 = nn.Conv2d(self.low, lows, 1, bias=False)
        self.GWC = nn.Conv2d(ups, c_out, kernel, stride, kernel // 2, groups=groups, bias=gwc_bias)
        self.PWC1 = nn.Conv2d(ups, c_out, 1, stride, bias=False)
        self.PWC2 = nn.Conv2d(lows, c_out - lows, 1, stride, bias=False)
        if fuse == "branch_fc":  # seed 004: a linear layer on the pooled branches -> 2 logits
            self.fc = nn.Linear(2 * c_out, 2)

    def forward(self, x):
        if self.fuse == "split_conv":
            up, low = self.split_conv_up(x), self.split_conv_low(x)
        else:
            up, low = torch.split(x, [self.up, self.low], dim=1)
        if self.squeeze_kind == "conv":
            up, low = self.squeeze1(up), self.squeeze2(low)
        else:  # seed 004's x_up[:, ::s], s = C // (C // r), its first C // r channels
            up = up[:, ::self.up // self.ups][:, :self.ups]
            low = low[:, ::self.low // self.lows][:, :self.lows]
        y1 = self.GWC(up) + self.PWC1(up)
        y2 = torch.cat([self.PWC2(low), low[:, :, ::self.stride, ::self.stride]], dim=1)
        if self.fuse == "channel_softmax":
            z = torch.cat([y1, y2], dim=1)
            z = F.softmax(F.adaptive_avg_pool2d(z, 1), dim=1) * z
            a, b = torch.split(z, z.shape[1] // 2, dim=1)
            return a + b
        s = torch.cat([F.adaptive_avg_pool2d(y1, 1), F.adaptive_avg_pool2d(y2, 1)], dim=1)
        if self.fuse == "branch_fc":
            b = F.softmax(self.fc(s.flatten(1)), dim=1)  # (N, 2), over the branches
            return b[:, 0].view(-1, 1, 1, 1) * y1 + b[:, 1].view(-1, 1, 1, 1) * y2
        beta = F.softmax(s.view(s.shape[0], 2, self.c_out), dim=1)
        b1 = beta[:, 0].reshape(-1, self.c_out, 1, 1)
        b2 = beta[:, 1].reshape(-1, self.c_out, 1, 1)
        return b1 * y1 + b2 * y2


# ---- SCConv ----------------------------------------------------------------------------------------
class SCConv(nn.Module):
    def __init__(self, c_in, c_out, stride=1, order="S+C", sru=None, cru=None, kernel=3):
        super().__init__()
        sru, cru = dict(sru or {}), dict(cru or {})
        cru.setdefault("kernel", kernel)
        self.order, self.stride, self.extra = order, stride, c_out - c_in
        if order in ("S+C", "parallel"):
            self.SRU = SRU(c_in, **sru)
            self.CRU = CRU(c_in, c_out, stride, **cru)
        elif order == "C+S":
            self.CRU = CRU(c_in, c_out, stride, **cru)
            self.SRU = SRU(c_out, **sru)
        elif order == "S":
            self.SRU = SRU(c_in, **sru)
            k = cru["kernel"]
            self.conv = nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False)
        else:
            self.CRU = CRU(c_in, c_out, stride, **cru)

    def forward(self, x):
        if self.order == "S+C":
            return self.CRU(self.SRU(x))
        if self.order == "C+S":
            return self.SRU(self.CRU(x))
        if self.order == "parallel":  # the SRU's output mapped as an option-A shortcut maps x
            s = self.SRU(x)[:, :, ::self.stride, ::self.stride]
            if self.extra > 0:
                s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return s + self.CRU(x)
        if self.order == "S":
            return self.conv(self.SRU(x))
        return self.CRU(x)


# ---- ResNets from a model config -----------------------------------------------------------------
def _scconv_from(cfg, c_in, c_out, stride):
    s = cfg.get("scconv", {})
    cru = {k: s[k] for k in ("alpha", "squeeze", "groups", "kernel") if k in s}
    cru.update(s.get("cru", {}))
    return SCConv(c_in, c_out, stride, s.get("order", "S+C"), s.get("sru", {}), cru)


def _place(cfg, is_conv1, stride, bottleneck):
    if cfg.get("conv", "standard") != "scconv":
        return False
    p = cfg.get("scconv", {}).get("placement", "conv2" if bottleneck else "conv1")
    return {"conv1": is_conv1, "conv2": not is_conv1, "both": True,
            "stride1_only": stride == 1}[p]


def _conv3x3(cfg, c_in, c_out, stride, sc):
    return _scconv_from(cfg, c_in, c_out, stride) if sc else nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, c_in, planes, stride, cfg):
        super().__init__()
        self.conv1 = _conv3x3(cfg, c_in, planes, stride, _place(cfg, True, stride, False))
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(cfg, planes, planes, 1, _place(cfg, False, 1, False))
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.pad = stride, None
        if stride != 1 or c_in != planes:
            if cfg.get("shortcut", "A") == "B":
                self.shortcut = nn.Sequential(nn.Conv2d(c_in, planes, 1, stride, bias=False),
                                              nn.BatchNorm2d(planes))
            else:
                before = (planes - c_in) // 2
                self.pad = (before, planes - c_in - before)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if hasattr(self, "shortcut"):
            idn = self.shortcut(x)
        elif self.pad is not None:
            idn = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0) + self.pad)
        else:
            idn = x
        return F.relu(out + idn)


class Bottleneck(nn.Module):
    def __init__(self, c_in, planes, stride, cfg):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(cfg, planes, planes, stride, _place(cfg, False, stride, True))
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        if stride != 1 or c_in != out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if hasattr(self, "downsample") else x))


class ResNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        depth = int(cfg["arch"][6:])
        bottleneck = depth in (50, 101)
        nc = cfg.get("num_classes", 10)
        imagenet = bottleneck and cfg.get("stem", "cifar") == "imagenet"
        stem = 64 if bottleneck else 16
        self.conv1 = (nn.Conv2d(3, stem, 7, 2, 3, bias=False) if imagenet
                      else nn.Conv2d(3, stem, 3, 1, 1, bias=False))
        self.bn1 = nn.BatchNorm2d(stem)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else None
        if bottleneck:
            blocks, planes = ([3, 4, 6, 3] if depth == 50 else [3, 4, 23, 3]), [64, 128, 256, 512]
        else:
            n = (depth - 2) // 6
            blocks, planes = [n, n, n], [16, 32, 64]
        c = stem
        for s, (nb, p) in enumerate(zip(blocks, planes)):
            layer = []
            for i in range(nb):
                stride = 2 if (i == 0 and s > 0) else 1
                layer.append((Bottleneck if bottleneck else BasicBlock)(c, p, stride, cfg))
                c = p * 4 if bottleneck else p
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.nstages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        setattr(self, "fc" if bottleneck else "linear", nn.Linear(c, nc))
        self.head = "fc" if bottleneck else "linear"

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            h = self.maxpool(h)
        for s in range(self.nstages):
            h = getattr(self, f"layer{s + 1}")(h)
        return getattr(self, self.head)(torch.flatten(self.avgpool(h), 1))
