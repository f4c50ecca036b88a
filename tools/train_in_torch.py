#!/usr/bin/env python3
"""tools/train_in_torch.py: trains a CIFAR-10 model in PyTorch (tools/scconv_torch.py's ResNet,
the standard torchvision preprocessing and augmentation: (pixel / 255 - mean) / std, random crop
with 4 pixels of zero padding, horizontal flip), evaluates it, and saves its state dict as
safetensors: the other half of the PyTorch round trip (docs/reliability.md). Then
  scconv eval --weights OUT --model resnet20 --data DIR
must report the accuracy printed here.

  /usr/bin/python3 tools/train_in_torch.py --data data/cifar-10-batches-bin --epochs 2 --out /tmp/torch_r20.safetensors
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_reference import save_safetensors  # noqa: E402
from scconv_torch import ResNet  # noqa: E402

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load(data_dir, names):
    raw = np.concatenate([np.fromfile(os.path.join(data_dir, n), dtype=np.uint8).reshape(-1, 3073) for n in names])
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


def normalise(u8):
    return u8.float().div(255).sub(MEAN).div(STD)


def augment(u8, gen):
    n = u8.shape[0]
    padded = F.pad(u8, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(u8)
    for i in range(n):
        img = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = img.flip(2) if flip[i] else img
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/cifar-10-batches-bin")
    ap.add_argument("--arch", default="resnet20")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    train_x, train_y = load(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test_x, test_y = load(args.data, ["test_batch.bin"])
    model = ResNet({"arch": args.arch})
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = args.epochs * ((len(train_y) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train_y), generator=gen)
        for b in range(0, len(train_y), 128):
            idx = perm[b:b + 128]
            loss = F.cross_entropy(model(normalise(augment(train_x[idx], gen))), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}", flush=True)
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for b in range(0, len(test_y), 500):
            logits = model(normalise(test_x[b:b + 500]))
            loss_sum += F.cross_entropy(logits, test_y[b:b + 500], reduction="sum").item()
            correct += (logits.argmax(1) == test_y[b:b + 500]).sum().item()
    result = {"test_acc": correct / len(test_y), "test_loss": loss_sum / len(test_y), "torch": torch.__version__}
    save_safetensors(args.out, model.state_dict(), {"trained_by": "tools/train_in_torch.py", **{k: json.dumps(v) for k, v in result.items()}})
    print(json.dumps({"out": args.out, **result}))


if __name__ == "__main__":
    main()
