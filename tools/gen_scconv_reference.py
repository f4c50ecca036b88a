#!/usr/bin/env python3
"""tools/gen_scconv_reference.py: writes tests/data/scconv_torch.safetensors, the PyTorch
reference data for tests/test_scconv_torch.cpp: SRU, CRU and SCConv for every option the spec
names, and whole ResNets (plain and with SCConv), forward and backward, in float64.

Weights and inputs are not stored: both sides draw them from the tensors' names
(tools/scconv_torch.py hash_fill == tests/hash_init.h). The case list travels in the file's
metadata (`cases`, JSON), so the C++ test runs exactly the cases generated here.
Stored per module case: out, grad.input, grad.<param>. Per model case (training mode, mean
cross-entropy on labels (i*7+3) % classes): logits, loss, buffer.<name> after the update, and
per parameter either grad.<name> (<= 4096 elements) or gradstats.<name> = [sum, sum(g*r),
sum(g^2)] with r = hash_uniform("<case>/r/<name>", -1, 1).

Run (needs PyTorch: apt-get install python3-torch):  python3 tools/gen_scconv_reference.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_reference import save_safetensors  # noqa: E402
from scconv_torch import CRU, SRU, ResNet, _scconv_from, hash_init_, hash_uniform  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "scconv_torch.safetensors")

G4 = {"groups": 4}
MODULE_CASES = [
    # name, kind, c_in, c_out, stride, input shape, options (the model config's "scconv" object)
    ("sru_soft", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": G4}),
    ("sru_hard", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "gate": "hard"}}),
    ("sru_hard_reweighted", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "gate": "hard_reweighted"}}),
    ("sru_softmax_norm", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "gamma_norm": "softmax"}}),
    ("sru_seed_gn", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "gn": "seed"}}),
    ("sru_groups16_threshold", "sru", 16, 16, 1, [1, 16, 6, 5], {"sru": {"groups": 16, "threshold": 0.48}}),
    ("cru_branch_softmax", "cru", 16, 16, 1, [2, 16, 6, 6], {}),
    ("cru_cin_ne_cout_stride2", "cru", 16, 32, 2, [2, 16, 7, 7], {}),
    ("cru_channel_softmax", "cru", 16, 32, 2, [2, 16, 7, 7], {"cru": {"fuse": "channel_softmax"}}),
    ("cru_split_conv", "cru", 16, 16, 1, [2, 16, 6, 6], {"cru": {"fuse": "split_conv"}}),
    ("cru_alpha_075", "cru", 16, 24, 1, [2, 16, 6, 6], {"alpha": 0.75}),
    ("cru_kernel5_groups4", "cru", 16, 16, 1, [2, 16, 6, 6], {"kernel": 5, "groups": 4}),
    ("cru_squeeze4", "cru", 16, 16, 2, [1, 16, 8, 8], {"squeeze": 4}),
    ("scconv_sc_stride2", "scconv", 16, 32, 2, [2, 16, 7, 7], {"sru": G4}),
    ("scconv_cs", "scconv", 16, 32, 2, [2, 16, 7, 7], {"order": "C+S", "sru": G4}),
    ("scconv_parallel", "scconv", 16, 16, 1, [2, 16, 6, 6], {"order": "parallel", "sru": G4}),
    ("scconv_s", "scconv", 16, 32, 2, [2, 16, 7, 7], {"order": "S", "sru": G4}),
    ("scconv_c", "scconv", 16, 32, 2, [2, 16, 7, 7], {"order": "C"}),
    ("scconv_seed_variants", "scconv", 16, 32, 2, [2, 16, 7, 7],
     {"sru": {**G4, "gn": "seed", "gamma_norm": "softmax", "gate": "hard_reweighted"},
      "cru": {"fuse": "channel_softmax"}}),
    # "parallel" where SRU(x) and CRU(x) differ in shape: SRU(x) taken at every stride-th pixel and
    # zero-padded to c_out channels, as the option-A shortcut maps x (docs/scconv.md)
    ("scconv_parallel_stride2", "scconv", 16, 32, 2, [2, 16, 7, 7], {"order": "parallel", "sru": G4}),
    ("scconv_parallel_stride2_same_width", "scconv", 16, 16, 2, [2, 16, 8, 8], {"order": "parallel", "sru": G4}),
    # seed 003: the mask on w = softmax(gamma) per channel (gamma ~ [0.8, 1.2] puts w near 1/16:
    # t = 0.0625 splits the channels), reweighted by R; and the soft gate with a mask on w
    ("sru_mask_on_w_seed003", "sru", 16, 16, 1, [2, 16, 5, 5],
     {"sru": {**G4, "mask_on": "w", "gate": "hard_reweighted", "gamma_norm": "softmax", "threshold": 0.0625}}),
    ("sru_mask_on_w_soft", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "mask_on": "w", "threshold": 0.0625}}),
    # seed 004's threshold warm-up min(0.5, 0.3 + 0.2 epoch / epochs) at epoch 3 of 10: t = 0.36
    ("sru_threshold_warmup_epoch3", "sru", 16, 16, 1, [2, 16, 5, 5], {"sru": {**G4, "threshold": 0.36}}),
    # seed 000: the GWC without bias
    ("cru_gwc_no_bias", "cru", 16, 32, 2, [2, 16, 7, 7], {"cru": {"gwc_bias": False}}),
    # seed 004: a linear layer on the pooled branches, softmax over the two branches; and the
    # channel-striding squeeze (every (C / (C / r))-th channel, no weights), also where it is uneven
    ("cru_branch_fc", "cru", 16, 32, 2, [2, 16, 7, 7], {"cru": {"fuse": "branch_fc"}}),
    ("cru_channel_stride", "cru", 16, 16, 1, [2, 16, 6, 6], {"cru": {"squeeze_kind": "channel_stride"}}),
    ("cru_channel_stride_uneven", "cru", 24, 24, 1, [2, 24, 6, 6],
     {"alpha": 0.75, "squeeze": 4, "cru": {"squeeze_kind": "channel_stride"}}),
    ("scconv_seed004", "scconv", 16, 32, 2, [2, 16, 7, 7],
     {"sru": G4, "cru": {"fuse": "branch_fc", "squeeze_kind": "channel_stride"}}),
]

SC = {"conv": "scconv"}
MODEL_CASES = [
    # name, model config, input shape
    ("resnet20_A", {"arch": "resnet20"}, [2, 3, 16, 16]),
    ("resnet20_B", {"arch": "resnet20", "shortcut": "B"}, [2, 3, 16, 16]),
    # With gamma_norm "sum" the SRU's R = sigmoid(GN(x) gamma / sum(gamma)) lies within ~0.05
    # of 0.5 (here 0.47-0.63), so at the default t = 0.5 the 50k-135k gate values of a model
    # have one within float32 rounding of t (smallest |R - t|: 2.7e-7 and 4e-8 here), and a
    # float32 run may take the other branch there (a jump of R x). These two cases, which the
    # float32 test also compares, use thresholds with a wide smallest |R - t| (printed, and
    # stored as "gate_margin"): 9.8e-6 at 0.48 (0.6% of the values below it), 8.9e-5 at 0.6.
    # t = 0.5 is pinned in float64 by resnet50_cifar_scconv and the module cases.
    ("resnet20_scconv", {"arch": "resnet20", **SC, "scconv": {"sru": {"threshold": 0.48}}}, [2, 3, 16, 16]),
    ("resnet56_scconv", {"arch": "resnet56", **SC, "scconv": {"sru": {"threshold": 0.6}}}, [2, 3, 16, 16]),
    # (inputs leave 2x2 maps in the last stage: with 1x1 maps and batch 2 every BN there
    #  normalises two values, its input gradient is pure cancellation and no comparison holds)
    ("resnet50_cifar_scconv", {"arch": "resnet50", "stem": "cifar", **SC}, [2, 3, 16, 16]),
    # Table 1's "C & S (parallel)" on a whole model: every conv1, stride-2 and widening ones included
    ("resnet20_scconv_parallel", {"arch": "resnet20", **SC, "scconv": {"order": "parallel", "sru": {"threshold": 0.48}}},
     [2, 3, 16, 16]),
    ("resnet50_imagenet_stem", {"arch": "resnet50", "stem": "imagenet", "num_classes": 7}, [2, 3, 64, 64]),
]


def module_of(kind, c_in, c_out, stride, opts):
    if kind == "sru":
        return SRU(c_in, **opts.get("sru", {}))
    if kind == "cru":
        cru = {k: opts[k] for k in ("alpha", "squeeze", "groups", "kernel") if k in opts}
        cru.update(opts.get("cru", {}))
        return CRU(c_in, c_out, stride, **cru)
    return _scconv_from({"scconv": opts}, c_in, c_out, stride)


def main():
    torch.set_default_dtype(torch.float64)
    SRU.track_gate_margin = True
    out, meta_modules, meta_models = {}, [], []
    for name, kind, c_in, c_out, stride, shape, opts in MODULE_CASES:
        m = module_of(kind, c_in, c_out, stride, opts).double()
        hash_init_(m, name + "/")
        x = hash_uniform(name + "/input", shape, -1, 1).requires_grad_(True)
        y = m(x)
        proj = hash_uniform(name + "/proj", list(y.shape), -1, 1)
        (y * proj).sum().backward()
        out[f"{name}.out"] = y.detach()
        out[f"{name}.grad.input"] = x.grad
        for pn, p in m.named_parameters():  # (the hard gate gives the GN no gradient: zeros)
            out[f"{name}.grad.{pn}"] = p.grad if p.grad is not None else torch.zeros_like(p)
        meta_modules.append({"name": name, "kind": kind, "c_in": c_in, "c_out": c_out,
                             "stride": stride, "input": shape, "scconv": opts})
    for name, cfg, shape in MODEL_CASES:
        m = ResNet(cfg).double()
        hash_init_(m, name + "/")
        m.train()
        x = hash_uniform(name + "/input", shape, -1, 1)
        classes = cfg.get("num_classes", 10)
        labels = torch.tensor([(i * 7 + 3) % classes for i in range(shape[0])])
        SRU.min_gate_margin = float("inf")
        logits = m(x)
        margin = SRU.min_gate_margin
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        out[f"{name}.logits"] = logits.detach()
        out[f"{name}.loss"] = loss.detach()
        for pn, p in m.named_parameters():
            if p.numel() <= 4096:
                out[f"{name}.grad.{pn}"] = p.grad
            else:
                r = hash_uniform(f"{name}/r/{pn}", list(p.shape), -1, 1)
                out[f"{name}.gradstats.{pn}"] = torch.stack(
                    [p.grad.sum(), (p.grad * r).sum(), (p.grad * p.grad).sum()])
        for bn, b in m.named_buffers():
            out[f"{name}.buffer.{bn}"] = b.detach().clone()
        meta_models.append({"name": name, "config": cfg, "input": shape,
                            "gate_margin": margin if margin != float("inf") else None})
        print(f"{name}: loss {loss.item():.6f}, {sum(p.numel() for p in m.parameters())} params, "
              f"smallest |R - t| {margin:.2e}")
    meta = {"cases": json.dumps({"modules": meta_modules, "models": meta_models})}
    save_safetensors(OUT, out, meta)
    print(f"wrote {len(out)} tensors, {os.path.getsize(OUT)} bytes to {OUT}")


if __name__ == "__main__":
    main()
