#!/usr/bin/python3
"""Writes torchio/testdata: small files saved by torch.save (zip and legacy formats) and the values
the Go tests expect from them (expected.json). Needs Debian's python3-torch; the Go tests do not.

Usage: /usr/bin/python3 scripts/torchio_fixtures.py [OUT_DIR]   (default torchio/testdata)

The zip files are byte-for-byte reproducible; the legacy files name their storages by memory
address, so those keys (and only those) differ from run to run.
"""
import argparse
import collections
import json
import os
import sys

import torch
import torch.nn as nn


def tensors():
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = collections.OrderedDict()
    sd["fc.weight"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    sd["row"] = base[1]  # a view: storage offset 4 in a 12-element storage
    sd["transposed"] = base.t()  # strides (1, 4)
    sd["f64"] = torch.tensor([1.5, -2.25], dtype=torch.float64)
    sd["f16"] = torch.tensor([0.5, -3.0, 65504.0], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -0.15625], dtype=torch.bfloat16)
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 4)
    return sd


def describe(sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        vals = v.reshape(-1).tolist() if v.numel() else []
        out[k] = {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""), "values": vals}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="torchio/testdata")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    sd = tensors()
    p = lambda n: os.path.join(a.out, n)
    torch.save(sd, p("plain_zip.pth"))
    torch.save(sd, p("plain_legacy.pth"), _use_new_zipfile_serialization=False)
    # RepDistiller's checkpoint wrapper, with a module state dict (it ends with BUILD _metadata).
    m = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    with torch.no_grad():
        m[0].weight.copy_(torch.arange(18, dtype=torch.float32).reshape(2, 1, 3, 3) / 10)
        m[1].running_mean.copy_(torch.tensor([0.25, -0.5]))
    wrapped = {"epoch": 240, "model": m.state_dict(), "best_acc": torch.tensor(75.25), "optimizer": {"state": {}, "param_groups": [{"lr": 0.05, "momentum": 0.9, "params": [0, 1]}]}}
    torch.save(wrapped, p("wrapped_zip.pth"))
    torch.save(wrapped, p("wrapped_legacy.pth"), _use_new_zipfile_serialization=False)
    # DataParallel's "module." prefix.
    torch.save(collections.OrderedDict(("module." + k, v) for k, v in m.state_dict().items()), p("module_prefix.pth"))
    # RepDistiller's *_last.pth carries an argparse.Namespace: it must be rejected.
    torch.save({"opt": argparse.Namespace(model="resnet8"), "model": m.state_dict()}, p("namespace.pth"))
    # A RepDistiller-style teacher checkpoint of resnet8 (10 classes, 1 channel) as PyTorch 0.4
    # wrote it: legacy format, no num_batches_tracked, no _metadata, in the {"epoch", "model",
    # "accuracy", "optimizer"} wrapper with SGD momentum buffers.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_golden import build, init_det
    r8 = build("resnet8", 10, 1)
    init_det(r8)
    opt = torch.optim.SGD(r8.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    r8(torch.ones(2, 1, 8, 8))[0].sum().backward()
    opt.step()
    old = collections.OrderedDict((k, v) for k, v in r8.state_dict().items() if not k.endswith("num_batches_tracked"))
    torch.save({"epoch": 240, "model": old, "accuracy": torch.tensor(91.5), "optimizer": opt.state_dict()},
               p("rd_resnet8_legacy.pth"), _use_new_zipfile_serialization=False)
    exp = {"plain": describe(sd), "wrapped": describe(m.state_dict())}
    with open(p("expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
