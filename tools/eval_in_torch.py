#!/usr/bin/env python3
"""tools/eval_in_torch.py: evaluates a model trained by `scconv train` in PyTorch, with the standard
torchvision preprocessing (pixel / 255 - mean) / std, on the CIFAR-10 test set: the check that a
checkpoint means the same in PyTorch as in `scconv eval` (docs/reliability.md).

  /usr/bin/python3 tools/eval_in_torch.py --checkpoint runs/quick --data data/cifar-10-batches-bin

--checkpoint takes a run directory, a checkpoint directory or a model .safetensors file. The
weights load strictly (every name and shape) into tools/scconv_torch.py's ResNet built from the
model config in the file's metadata (the weight average, ema.safetensors, where the run kept one);
--tta flip averages the logits of each image and its mirror (default: the run's eval.tta).
Prints the accuracy and loss as JSON.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from scconv_torch import ResNet  # noqa: E402

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, meta


def model_file(path):
    if os.path.isfile(path):
        return path
    for sub in ("checkpoint", "checkpoint.old", "."):
        # as scconv eval: the weight average where the run kept one (ema.decay)
        for name in ("ema.safetensors", "model.safetensors"):
            p = os.path.join(path, sub, name)
            if os.path.isfile(p):
                return p
    sys.exit(f"eval_in_torch: no model.safetensors under {path}")


def cifar10_test(data_dir):
    raw = np.fromfile(os.path.join(data_dir, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", default="data/cifar-10-batches-bin")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tta", choices=["none", "flip"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = model_file(args.checkpoint)
    tensors, meta = read_safetensors(path)
    if meta.get("input") != "(pixel / 255 - mean) / std":
        sys.exit(f"eval_in_torch: {path} has input convention {meta.get('input')!r}")
    config = json.loads(meta["config"])
    tta = args.tta or config.get("eval", {}).get("tta", "none")
    model = ResNet(config["model"])
    model.load_state_dict(tensors, strict=True)
    model.eval()
    mean = torch.tensor(config["data"]["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(config["data"]["std"], dtype=torch.float32).view(1, 3, 1, 1)
    images, labels = cifar10_test(args.data)
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for b in range(0, len(labels), 500):
            x = torch.from_numpy(images[b:b + 500]).float().div(255).sub(mean).div(std)
            y = torch.from_numpy(labels[b:b + 500])
            logits = model(x)
            if tta == "flip":
                logits = (logits + model(torch.flip(x, dims=[3]))) * 0.5
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    print(json.dumps({"model_file": path, "images": len(labels), "test_acc": correct / len(labels),
                      "test_loss": loss_sum / len(labels), "tta": tta, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
