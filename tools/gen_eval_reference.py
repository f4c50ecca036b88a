#!/usr/bin/env python3
"""tools/gen_eval_reference.py: writes tests/data/eval_torch/, the check that a model trained in
PyTorch scores the same in `scconv eval` as in PyTorch (tests/test_apps.cpp).

  test_batch.bin          200 synthetic CIFAR-10-format test images (label byte + R, G, B planes)
  resnet20.safetensors    a CIFAR ResNet-20 trained here in PyTorch on images from the same
                          generator, saved by name (state_dict, as safetensors.torch.save_file
                          would); metadata: PyTorch's test accuracy, confusion matrix, predictions

PyTorch evaluates with the standard torchvision preprocessing, x = (pixel / 255 - mean) / std
with CIFAR-10's mean and std: the convention of core/math/pixels.h. The images are "real looking"
in the sense that matters here: per-channel pixel statistics close to CIFAR-10's, so a pipeline
that skips the division by 255 feeds the model values ~255x too large and scores near chance.

Run (Debian's python3-torch): /usr/bin/python3 tools/gen_eval_reference.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_reference import save_safetensors  # noqa: E402
from scconv_torch import ResNet  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "eval_torch")
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2470, 0.2435, 0.2616]


def make_images(n, rng):
    """Class k: stripes at angle 18k degrees plus a class tint, on noise; uint8 (n, 3, 32, 32)."""
    labels = rng.integers(0, 10, n)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    imgs = np.empty((n, 3, 32, 32), np.float64)
    for i, k in enumerate(labels):
        a = np.pi * k / 10 + rng.normal(0, 0.15)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = np.sin((np.cos(a) * xx + np.sin(a) * yy) * 0.6 + phase)
        tint = 0.08 * np.array([np.cos(k), np.sin(k), np.cos(2 * k)])
        for c in range(3):
            imgs[i, c] = MEAN[c] + tint[c] + 0.13 * stripes + rng.normal(0, 0.18, (32, 32))
    return np.clip(np.rint(imgs * 255), 0, 255).astype(np.uint8), labels


def normalise(u8):  # torchvision: ToTensor() then Normalize(MEAN, STD), in float32
    x = torch.from_numpy(u8).float().div(255)
    return x.sub(torch.tensor(MEAN).view(1, 3, 1, 1)).div(torch.tensor(STD).view(1, 3, 1, 1))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(14)
    train_x, train_y = make_images(3000, rng)
    test_x, test_y = make_images(200, rng)
    model = ResNet({"arch": "resnet20"})
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    xs, ys = normalise(train_x), torch.from_numpy(train_y)
    model.train()
    for epoch in range(3):
        perm = torch.randperm(len(ys))
        for b in range(0, len(ys), 64):
            idx = perm[b:b + 64]
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}")
    model.eval()
    with torch.no_grad():
        logits = model(normalise(test_x))
        # the old scconv loader's mistake: (pixel - mean) / std, no division by 255
        wrong_scale = model(normalise(test_x) * 255 + torch.tensor(MEAN).view(1, 3, 1, 1) *
                            (255 - 1) / torch.tensor(STD).view(1, 3, 1, 1))
    pred = logits.argmax(1).numpy()
    top2 = logits.topk(2, 1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    acc = float((pred == test_y).mean())
    acc_wrong = float((wrong_scale.argmax(1).numpy() == test_y).mean())
    confusion = np.zeros((10, 10), np.int64)
    for t, p in zip(test_y, pred):
        confusion[t, p] += 1
    print(f"PyTorch test accuracy {acc:.4f} (without the / 255: {acc_wrong:.4f}); "
          f"smallest top-2 logit margin {margin:.3g}")
    os.makedirs(OUT, exist_ok=True)
    rec = np.concatenate([test_y.astype(np.uint8)[:, None], test_x.reshape(len(test_y), -1)], 1)
    with open(os.path.join(OUT, "test_batch.bin"), "wb") as f:
        f.write(rec.tobytes())
    meta = {"accuracy": json.dumps(acc), "confusion": json.dumps(confusion.tolist()),
            "predictions": json.dumps(pred.tolist()), "min_logit_margin": json.dumps(margin),
            "torch": torch.__version__, "preprocessing": "(pixel / 255 - mean) / std",
            "accuracy_without_division_by_255": json.dumps(acc_wrong)}
    save_safetensors(os.path.join(OUT, "resnet20.safetensors"), model.state_dict(), meta)
    print(f"wrote {OUT}/test_batch.bin and resnet20.safetensors")


if __name__ == "__main__":
    main()
