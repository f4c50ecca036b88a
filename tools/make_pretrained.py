#!/usr/bin/env python3
"""tools/make_pretrained.py: adds a finished run's final model to pretrained/ (the reference models
that tests/test_pretrained.cpp checks and pretrained/README.md lists).

  python3 tools/make_pretrained.py --run runs/fast --name resnet20-fast \\
      --command "scconv train --config fast --data ../shared/cifar10/cifar-10-batches-bin"

Copies the model the run evaluated last (checkpoint/ema.safetensors with a weight average, else
checkpoint/model.safetensors: the final epoch's, never best.safetensors, which a run without a
validation split picks on the test set) to pretrained/NAME.safetensors, evaluates it with
`scconv eval --json` in the run's precision and in float32, and records both accuracies, the run's
summary (final accuracy, wall time) and the command in pretrained/manifest.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def evaluate(binary, model, data, precision):
    out = subprocess.run([binary, "eval", "--checkpoint", model, "--data", data, "--precision", precision,
                          "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="a finished run directory")
    ap.add_argument("--name", required=True, help="pretrained/NAME.safetensors")
    ap.add_argument("--command", required=True, help="the command that trained it")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "cifar10", "cifar-10-batches-bin"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "scconv"))
    ap.add_argument("--machine", default="", help="where it trained (cores, processor)")
    args = ap.parse_args()
    ckpt = os.path.join(args.run, "checkpoint")
    src = next((os.path.join(ckpt, f) for f in ("ema.safetensors", "model.safetensors")
                if os.path.isfile(os.path.join(ckpt, f))), None)
    if src is None or not os.path.isfile(os.path.join(args.run, "summary.json")):
        sys.exit(f"make_pretrained: {args.run} is not a finished run (no checkpoint model or summary.json)")
    with open(os.path.join(args.run, "summary.json")) as f:
        summary = json.load(f)
    dst = os.path.join(ROOT, "pretrained", args.name + ".safetensors")
    shutil.copyfile(src, dst + ".tmp")
    os.replace(dst + ".tmp", dst)
    with open(os.path.join(args.run, "checkpoint", "state.json")) as f:
        config = json.load(f)["config"]
    native = evaluate(args.binary, dst, args.data, config["precision"])
    fp32 = evaluate(args.binary, dst, args.data, "fp32")
    manifest_path = os.path.join(ROOT, "pretrained", "manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.isfile(manifest_path) else {}
    manifest[args.name] = {
        "file": args.name + ".safetensors", "model": config["model"].get("arch", "") +
        (" + SCConv" if config["model"].get("conv") == "scconv" else ""),
        "precision": config["precision"], "tta": config["eval"]["tta"], "ema_decay": config["ema"]["decay"],
        "epochs": summary["epochs"], "seed": config["seed"],
        "test_acc": native["accuracy"], "test_acc_fp32": fp32["accuracy"],
        "run_final_test_acc": summary["final_test_acc"], "wall_seconds": summary["wall_seconds"],
        "command": args.command, "machine": args.machine}
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(manifest_path + ".tmp", manifest_path)
    print(json.dumps(manifest[args.name], indent=1))


if __name__ == "__main__":
    main()
