#!/usr/bin/env python3
"""tools/gen_official_safetensors.py: writes tests/data/official.safetensors with the official
`safetensors` library (safetensors.torch.save_file), so tests/test_safetensors.cpp checks that we
read files PyTorch users produce. Contents: the state dict of SCConv(16, 32, stride 2) from
tools/scconv_torch.py with hash-initialised values (prefix "official/"), plus one tensor of each
dtype we support.

Run: pip install safetensors (into a scratch --target is enough), then
     PYTHONPATH=<target> python3 tools/gen_official_safetensors.py
"""
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from scconv_torch import SCConv, hash_init_  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "official.safetensors")

m = SCConv(16, 32, 2, sru={"groups": 4})
hash_init_(m, "official/")
tensors = {k: v.contiguous() for k, v in m.state_dict().items()}
tensors["extra.f64"] = torch.arange(6, dtype=torch.float64).reshape(2, 3) / 4
tensors["extra.i64"] = torch.tensor([-3, 0, 1 << 40], dtype=torch.int64)
tensors["extra.u8"] = torch.tensor([[0, 7], [128, 255]], dtype=torch.uint8)
save_file(tensors, OUT, metadata={"writer": "safetensors.torch.save_file"})
print(f"wrote {len(tensors)} tensors, {os.path.getsize(OUT)} bytes to {OUT}")
