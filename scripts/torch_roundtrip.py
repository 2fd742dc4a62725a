#!/usr/bin/python3
"""The PyTorch side of the interop round trips on Fashion-MNIST (28x28x1, ifa's normalisation).

  /usr/bin/python3 scripts/torch_roundtrip.py train OUT.pth [--epochs 1] [--limit-train N] [--data-dir DIR]
      trains RepDistiller's resnet8 (scripts/torch_golden.py's definition) with SGD (lr 0.05,
      momentum 0.9, weight decay 5e-4, batch 64, random crop with 2-pixel padding), saves its
      state dict with torch.save and prints its test top-1 as JSON;
  /usr/bin/python3 scripts/torch_roundtrip.py eval FILE.safetensors|FILE.pth [--model resnet8]
      loads a state dict (e.g. written by `ifa export`) into the PyTorch definition with
      load_state_dict(strict=True) and prints its test top-1/top-5 as JSON.

Compare with `ifa import --model resnet8 --input 28x28x1 --dataset fashion-mnist OUT.pth --out RUN`
and `ifa test --checkpoint RUN --format json`. Needs Debian's python3-torch.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_golden import build  # noqa: E402

MEAN, STD = 0.28604059698879547, 0.3530242445149227  # ifa's data.FashionMNISTMean/Std


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def split(data_dir, prefix):
    def find(name):
        for n in (name + ".gz", name):
            if os.path.exists(os.path.join(data_dir, n)):
                return os.path.join(data_dir, n)
        raise SystemExit("no %s in %s" % (name, data_dir))
    x = read_idx(find(prefix + "-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(prefix + "-labels-idx1-ubyte")).astype(np.int64)
    x = (x - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def evaluate(model, x, y, batch=500):
    model.eval()
    top1 = top5 = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i:i + batch])[0]
            rank = (logits > logits.gather(1, y[i:i + batch, None])).sum(1)
            top1 += int((rank < 1).sum())
            top5 += int((rank < 5).sum())
    return 100.0 * top1 / len(x), 100.0 * top5 / len(x)


def load_state(path):
    if path.endswith(".safetensors"):
        with open(path, "rb") as f:
            raw = f.read()
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n])
        hdr.pop("__metadata__", None)
        dt = {"F32": torch.float32, "I64": torch.int64}
        out = {}
        for k, v in hdr.items():
            a, b = v["data_offsets"]
            out[k] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=dt[v["dtype"]]).reshape(v["shape"])
        return out
    sd = torch.load(path, map_location="cpu")
    return sd.get("model", sd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "eval"])
    ap.add_argument("file")
    ap.add_argument("--model", default="resnet8")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit-train", type=int, default=0, help="train on the first N images only (0: all)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xt, yt = split(a.data_dir, "t10k")
    model = build(a.model, 10, 1)
    if a.cmd == "eval":
        model.load_state_dict(load_state(a.file), strict=True)
        t1, t5 = evaluate(model, xt, yt)
        print(json.dumps({"file": a.file, "model": a.model, "images": len(xt), "top1": t1, "top5": t5}))
        return
    x, y = split(a.data_dir, "train")
    if a.limit_train > 0:
        x, y = x[:a.limit_train], y[:a.limit_train]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(a.seed)
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            xb = F.pad(x[idx], (2, 2, 2, 2))
            dx, dy = torch.randint(0, 5, (2,), generator=g).tolist()
            xb = xb[:, :, dy:dy + 28, dx:dx + 28]
            loss = F.cross_entropy(model(xb)[0], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(json.dumps({"epoch": epoch + 1, "loss": float(loss)}), file=sys.stderr)
    torch.save({"epoch": a.epochs, "model": model.state_dict()}, a.file)
    t1, t5 = evaluate(model, xt, yt)
    print(json.dumps({"file": a.file, "model": a.model, "images": len(xt), "top1": t1, "top5": t5}))


if __name__ == "__main__":
    sys.exit(main())
