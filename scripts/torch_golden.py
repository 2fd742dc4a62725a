#!/usr/bin/python3
"""Writes interop/testdata/golden/*.safetensors: PyTorch's outputs for ifa's parity tests.

Usage: /usr/bin/python3 scripts/torch_golden.py [OUT_DIR]   (Debian's python3-torch; default
interop/testdata/golden). The Go tests read the files and need no torch.

The PyTorch models below are written from the model specifications (METHODS.md §4.1 and §1.2;
RepDistiller's module and parameter names, timm's for the ViT). Their weights are not stored: both
sides derive every tensor from its state-dict key with the same counter-based generator
(det_uniform: splitmix64 of FNV-1a(key) + index), so the files hold only the fixed input batch, the
outputs, the feature taps and the gradients. Everything is computed in float32 on the CPU with one
thread; the files are byte-for-byte reproducible on the same CPU model and torch build (PyTorch picks
its CPU kernels by instruction set: on another CPU the values differ by about 1e-6 relative).

Per model (file <model>.safetensors):
  input            [B, H, W, C] (channels-last, as ifa takes it)
  labels           [B] int64
  {eval,train}.logits, {eval,train}.tap.<i> (channels-last), {eval,train}.pooled
  train.loss       the cross-entropy of train.logits against labels
  grad.input, grad.<key>   gradients of train.loss for the input and a few parameters
The train.* and grad.* entries are left out for the models listed in EVAL_ONLY.
"""
import argparse
import collections
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MASK = (1 << 64) - 1


def fnv1a(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & MASK
    return h


def det_uniform(key, n):
    """n values in [-1, 1) from key (the same sequence as interop's detUniform): value i is
    splitmix64(FNV-1a(key) + i) >> 11 scaled to [0, 1), then to [-1, 1)."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a(key)) + np.arange(n, dtype=np.uint64)
        x = x + np.uint64(0x9e3779b97f4a7c15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (2.0 ** -53) * 2 - 1


def det_tensor(key, shape):
    """The deterministic value of a state-dict entry (interop's detValue)."""
    n = math.prod(shape)
    u = torch.from_numpy(det_uniform(key, n))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.tensor(3, dtype=torch.int64)
    if leaf == "running_mean":
        v = 0.1 * u
    elif leaf == "running_var":
        v = 1 + 0.5 * u
    elif leaf == "weight" and len(shape) == 1:  # BatchNorm / LayerNorm gain
        v = 1 + 0.2 * u
    elif leaf == "bias":
        v = 0.1 * u
    else:  # weights, tokens, embeddings: uniform with variance 1/fan_in
        fan_in = n // shape[0] if len(shape) > 1 and key not in ("cls_token", "pos_embed") else shape[-1]
        v = u * math.sqrt(3.0 / fan_in)
    return v.to(torch.float32).reshape(shape)


def det_input(nhwc_shape):
    """A unit-variance input batch, generated channels-last and returned NCHW."""
    u = torch.from_numpy(det_uniform("input", math.prod(nhwc_shape)) * math.sqrt(3.0)).to(torch.float32)
    return u.reshape(nhwc_shape).permute(0, 3, 1, 2).contiguous()


def init_det(model):
    sd = model.state_dict()
    model.load_state_dict(collections.OrderedDict((k, det_tensor(k, list(v.shape))) for k, v in sd.items()))


# ---- CIFAR ResNet (RepDistiller resnet.py names) ----
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        inner = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(inner)) + (x if self.downsample is None else self.downsample(x))
        return inner, F.relu(out)


class ResNet(nn.Module):
    def __init__(self, depth, widths, classes, cin):
        super().__init__()
        n = (depth - 2) // 6
        self.n = n
        self.conv1 = nn.Conv2d(cin, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c = widths[0]
        for s in range(3):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(c, widths[s + 1], 2 if (s > 0 and i == 0) else 1))
                c = widths[s + 1]
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        taps = []
        for s in (1, 2, 3):
            for b in getattr(self, "layer%d" % s):
                inner, x = b(x)
                if s == 3:
                    taps += [inner, x]
            if s == 2 and self.n == 1:
                taps.append(x)
        pooled = x.mean((2, 3))
        return self.fc(pooled), pooled, taps


# ---- Wide ResNet (RepDistiller wrn.py names) ----
class WRNBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        a1 = F.relu(self.bn1(x))
        a2 = F.relu(self.bn2(self.conv1(a1)))
        out = self.conv2(a2)
        return a1, a2, out + (x if self.equal else self.convShortcut(a1))


class WRNGroup(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WRNBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)])


class WRN(nn.Module):
    def __init__(self, depth, k, classes, cin):
        super().__init__()
        n = (depth - 4) // 6
        w = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.block1 = WRNGroup(n, w[0], w[1], 1)
        self.block2 = WRNGroup(n, w[1], w[2], 2)
        self.block3 = WRNGroup(n, w[2], w[3], 2)
        self.bn1 = nn.BatchNorm2d(w[3])
        self.fc = nn.Linear(w[3], classes)

    def forward(self, x):
        x = self.conv1(x)
        for g in (self.block1, self.block2, self.block3):
            for b in g.layer:
                a1, a2, x = b(x)
        out = F.relu(self.bn1(x))
        pooled = out.mean((2, 3))
        return self.fc(pooled), pooled, [a1, a2, out]


# ---- VGG with BatchNorm (RepDistiller vgg.py names) ----
class VGG(nn.Module):
    def __init__(self, groups, classes, cin):
        super().__init__()
        c = cin
        for g, widths in enumerate(groups):
            layers = []
            for w in widths:
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
                c = w
            setattr(self, "block%d" % g, nn.Sequential(*layers[:-1]))
        self.classifier = nn.Linear(c, classes)
        self.ngroups = len(groups)

    def forward(self, x):
        h = x.shape[2]
        stages = []
        for g in range(self.ngroups):
            x = F.relu(getattr(self, "block%d" % g)(x))
            stages.append(x)
            if g <= 2 or (g == 3 and h == 64):
                x = F.max_pool2d(x, 2, 2)
        pooled = x.mean((2, 3))
        return self.classifier(pooled), pooled, stages[2:5]


# ---- ResNet50 with the CIFAR stem (RepDistiller resnetv2.py names) ----
class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = 4 * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        r1 = F.relu(self.bn1(self.conv1(x)))
        r2 = F.relu(self.bn2(self.conv2(r1)))
        out = F.relu(self.bn3(self.conv3(r2)) + (x if self.shortcut is None else self.shortcut(x)))
        return [r1, r2, out], out


class ResNet50(nn.Module):
    def __init__(self, classes, cin, blocks=(3, 4, 6, 3), width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        c = width
        for s in range(4):
            layer = []
            for i in range(blocks[s]):
                layer.append(Bottleneck(c, width << s, 2 if (s > 0 and i == 0) else 1))
                c = 4 * (width << s)
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layer))
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        taps = []
        for s in (1, 2, 3, 4):
            for b in getattr(self, "layer%d" % s):
                t, x = b(x)
                if s == 4:
                    taps += t
        pooled = x.mean((2, 3))
        return self.linear(pooled), pooled, taps


# ---- ShuffleNets (RepDistiller ShuffleNetv1.py / ShuffleNetv2.py names) ----
def channel_shuffle(x, g):
    """Output channel i*g + j is input channel j*(C/g) + i."""
    n, c, h, w = x.shape
    return x.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride, groups, first):
        super().__init__()
        mid = cout // 4
        self.g, self.stride = (1 if first else groups), stride
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=self.g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x):
        r1 = F.relu(self.bn1(self.conv1(x)))
        r2 = F.relu(self.bn2(self.conv2(channel_shuffle(r1, self.g))))
        h = self.bn3(self.conv3(r2))
        if self.stride == 2:  # the 3x3 average pool counts its zero padding
            out = F.relu(torch.cat([h, F.avg_pool2d(x, 3, 2, 1, count_include_pad=True)], 1))
        else:
            out = F.relu(h + x)
        return [r1, r2, out], out


class ShuffleNetV1(nn.Module):
    def __init__(self, classes, cin, stem=24, outs=(240, 480, 960), blocks=(4, 8, 4), groups=3):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, stem, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        c = stem
        for s in range(3):
            layer = []
            for i in range(blocks[s]):
                layer.append(ShuffleUnit(c, outs[s] - c if i == 0 else outs[s], 2 if i == 0 else 1, groups, s == 0 and i == 0))
                c = outs[s]
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*layer))
        self.linear = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        taps = []
        for s in (1, 2, 3):
            for b in getattr(self, "layer%d" % s):
                t, x = b(x)
                if s == 3:
                    taps += t
        pooled = x.mean((2, 3))
        return self.linear(pooled), pooled, taps


class DownUnit(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        mid = cout // 2
        self.conv1 = nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        r3 = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(r3)))))
        return [left, r3, right], channel_shuffle(torch.cat([left, right], 1), 2)


class SplitUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.conv1 = nn.Conv2d(h, h, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(h)
        self.conv2 = nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False)
        self.bn2 = nn.BatchNorm2d(h)
        self.conv3 = nn.Conv2d(h, h, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(h)

    def forward(self, x):
        h = x.shape[1] // 2
        r1 = F.relu(self.bn1(self.conv1(x[:, h:])))
        r3 = F.relu(self.bn3(self.conv3(self.bn2(self.conv2(r1)))))
        return [r1, r3], channel_shuffle(torch.cat([x[:, :h], r3], 1), 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, classes, cin, stem=24, widths=(116, 232, 464, 1024), blocks=(3, 7, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, stem, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        c = stem
        for s in range(3):
            setattr(self, "layer%d" % (s + 1), nn.Sequential(DownUnit(c, widths[s]), *[SplitUnit(widths[s]) for _ in range(blocks[s])]))
            c = widths[s]
        self.conv2 = nn.Conv2d(c, widths[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        taps = []
        for s in (1, 2, 3):
            for b in getattr(self, "layer%d" % s):
                t, x = b(x)
                if s == 3:
                    taps += t
        head = F.relu(self.bn2(self.conv2(x)))
        pooled = head.mean((2, 3))
        return self.linear(pooled), pooled, taps + [head]


# ---- MobileNetV2, width 0.5 (RepDistiller mobilenetv2.py names) ----
class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hid = inp * t
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU(),
            nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid), nn.ReLU(),
            nn.Conv2d(hid, oup, 1, bias=False), nn.BatchNorm2d(oup))
        self.residual = stride == 1 and inp == oup

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    # (expansion, channels, blocks, stride) per stage, channels before the width multiplier.
    SETTING = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, classes, cin, width=0.5):
        super().__init__()
        c = int(32 * width)
        self.conv1 = nn.Sequential(nn.Conv2d(cin, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        stages = []
        for t, ch, n, s in self.SETTING:
            out = int(ch * width)
            stages.append(nn.Sequential(*[InvertedResidual(c if i == 0 else out, out, s if i == 0 else 1, t) for i in range(n)]))
            c = out
        self.blocks = nn.ModuleList(stages)
        self.conv2 = nn.Sequential(nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(1280, classes))

    def forward(self, x):
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        pooled = self.conv2(x).mean((2, 3))
        return self.classifier(pooled), pooled, []


# ---- ViT (timm's names; package vit's architecture) ----
class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        dh = d // self.heads
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), -1) @ v
        return self.proj(a.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, d, m):
        super().__init__()
        self.fc1 = nn.Linear(d, m)
        self.fc2 = nn.Linear(m, d)


class Block(nn.Module):
    def __init__(self, d, m, heads, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, m)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class PatchEmbed(nn.Module):
    def __init__(self, cin, d, p):
        super().__init__()
        self.proj = nn.Conv2d(cin, d, p, p)


class ViT(nn.Module):
    def __init__(self, d, m, heads, depth, patch, size, cin, classes, eps=1e-12):
        super().__init__()
        self.patch_embed = PatchEmbed(cin, d, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + (size // patch) ** 2, d))
        self.blocks = nn.ModuleList([Block(d, m, heads, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=eps)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        taps = []
        for b in self.blocks:
            x = b(x)
            taps.append(x)
        pooled = self.norm(x[:, 0])
        return self.head(pooled), pooled, taps


VGG_GROUPS = {"vgg8": [[64], [128], [256], [512], [512]], "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]}


def build(name, classes, cin):
    if name == "resnet50":
        return ResNet50(classes, cin)
    if name == "shufflev1":
        return ShuffleNetV1(classes, cin)
    if name == "shufflev2":
        return ShuffleNetV2(classes, cin)
    if name.startswith("resnet"):
        x4 = name.endswith("x4")
        depth = int(name[len("resnet"):].replace("x4", ""))
        widths = (32, 64, 128, 256) if x4 else (16, 16, 32, 64)
        return ResNet(depth, widths, classes, cin)
    if name.startswith("wrn_"):
        _, d, k = name.split("_")
        return WRN(int(d), int(k), classes, cin)
    if name in VGG_GROUPS:
        return VGG(VGG_GROUPS[name], classes, cin)
    if name == "mobilenetv2":
        return MobileNetV2(classes, cin)
    if name == "vit:nano":
        return ViT(64, 128, 4, 4, 4, 28, cin, classes)
    raise ValueError(name)


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t.contiguous()


# ---- safetensors writer (Debian has no safetensors package) ----
def save_safetensors(path, tensors):
    hdr, blobs, off = {}, [], 0
    dt = {torch.float32: "F32", torch.int64: "I64"}
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous()
        if t.dim() == 0:
            t = t.reshape(1)
        b = t.numpy().tobytes()
        hdr[k] = {"dtype": dt[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(hdr, separators=(",", ":"), sort_keys=True).encode()
    js += b" " * (-len(js) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
    os.replace(path + ".tmp", path)


# Parameters whose gradients are stored (besides the input's).
GRAD_KEYS = {
    "resnet8x4": ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.1.weight", "fc.weight", "fc.bias"],
    "resnet32x4": ["conv1.weight", "layer3.4.bn2.bias", "fc.weight"],
    "wrn_16_2": ["conv1.weight", "block1.layer.0.convShortcut.weight", "block3.layer.1.bn1.weight", "bn1.bias", "fc.weight"],
    "vgg8": ["block0.0.weight", "block0.1.bias", "block4.1.weight", "classifier.weight"],  # conv biases feed BatchNorms: zero gradient in training mode
    "shufflev1": ["conv1.weight", "layer1.0.conv1.weight", "layer2.1.conv1.weight", "layer3.0.conv2.weight", "layer3.3.bn3.weight", "linear.bias"],
    "shufflev2": ["conv1.weight", "layer1.0.conv1.weight", "layer2.0.conv4.weight", "layer2.1.conv1.weight", "layer3.3.bn3.weight", "bn2.bias", "linear.bias"],
    "vit:nano": ["patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.0.attn.qkv.weight", "blocks.3.mlp.fc2.bias", "norm.weight", "head.weight"],
}

# The models of the talk's six pairs and of RepDistiller's cross-architecture pairs (MobileNetV2
# aside): logits only (eval mode) at 32x32x3, 100 classes.
PAIR_MODELS = ["wrn_40_2", "wrn_16_2", "wrn_40_1", "vgg13", "vgg8", "resnet56", "resnet20", "resnet32x4", "resnet8x4", "resnet110",
               "resnet50", "shufflev1", "shufflev2"]


# Models whose training-mode pass is too ill-conditioned for a float32 comparison: with batch
# statistics over few values, PyTorch's own float32 gradients of resnet50 differ from its float64
# ones by 1.5e-2 to 1.6e-1 of their largest value (batch 2-8, 8x8 to 32x32 inputs). Their golden
# files hold the evaluation-mode pass only.
EVAL_ONLY = {"resnet50"}


def golden(name, classes, size, cin, batch):
    torch.manual_seed(0)
    model = build(name, classes, cin)
    init_det(model)
    x = det_input([batch, size, size, cin])
    labels = torch.tensor([i % classes for i in range(batch)], dtype=torch.int64)
    out = {"input": nhwc(x), "labels": labels}
    model.eval()
    with torch.no_grad():
        logits, pooled, taps = model(x)
    out["eval.logits"], out["eval.pooled"] = logits, pooled
    for i, t in enumerate(taps):
        out["eval.tap.%d" % i] = nhwc(t)
    if name in EVAL_ONLY:
        return out
    model.train()
    xg = x.clone().requires_grad_(True)
    logits, pooled, taps = model(xg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    out["train.logits"], out["train.pooled"], out["train.loss"] = logits, pooled, loss.reshape(1)
    for i, t in enumerate(taps):
        out["train.tap.%d" % i] = nhwc(t)
    out["grad.input"] = nhwc(xg.grad)
    params = dict(model.named_parameters())
    for k in GRAD_KEYS.get(name, []):
        out["grad." + k] = params[k].grad
    # Running statistics after the training-mode forward (momentum 0.1, unbiased variance).
    sd = model.state_dict()
    for k in GRAD_KEYS.get(name, []):
        bn = k.rsplit(".", 1)[0]
        if bn + ".running_mean" in sd:
            out["train.running_mean." + bn] = sd[bn + ".running_mean"]
            out["train.running_var." + bn] = sd[bn + ".running_var"]
    return out


# ---- Losses and one optimiser step (file losses.safetensors) ----
def det_plain(key, shape, scale=1.0):
    """Values u·scale (u uniform in [-1, 1) from key), float32."""
    return (torch.from_numpy(det_uniform(key, math.prod(shape))) * scale).to(torch.float32).reshape(shape)


def head_value(path, shape):
    """Deterministic value of an ifa head variable by its ifa path (interop's headValue)."""
    leaf = path.rsplit("/", 1)[-1]
    u = torch.from_numpy(det_uniform(path, math.prod(shape)))
    if leaf == "weights":
        v = u * math.sqrt(3.0 / shape[0])
    elif leaf == "scale":
        v = 1 + 0.2 * u
    else:  # biases, offset
        v = 0.1 * u
    return v.to(torch.float32).reshape(shape)


def kd_loss(ys, yt, T):
    """RepDistiller's DistillKL: KL(softmax(yt/T) || softmax(ys/T)) summed, · T² / batch."""
    return F.kl_div(F.log_softmax(ys / T, 1), F.softmax(yt / T, 1), reduction="sum") * T * T / ys.shape[0]


def supcon(features, labels, temperature, base_temperature):
    """Khosla et al.'s SupConLoss ('all' anchors), written from METHODS.md §3.1: features [B, V, D]
    normalised; labels [B] or None (the views of a sample are its positives)."""
    b, v, _ = features.shape
    if labels is None:
        mask = torch.eye(b)
    else:
        mask = (labels[:, None] == labels[None, :]).float()
    contrast = torch.cat(torch.unbind(features, 1), 0)  # [V·B, D], view-major
    logits = contrast @ contrast.T / temperature
    logits = logits - logits.max(1, keepdim=True).values.detach()
    mask = mask.repeat(v, v)
    self_mask = 1 - torch.eye(b * v)
    mask = mask * self_mask
    exp = torch.exp(logits) * self_mask
    log_prob = logits - torch.log(exp.sum(1, keepdim=True))
    mean_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return (-(temperature / base_temperature) * mean_pos).mean()


def bn_train(x, scale, offset, eps=1e-5):
    mean = x.mean(0)
    var = x.var(0, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * scale + offset


def ifacd_loss(student, taps, layers, feat, tau, heads):
    """IFACD (METHODS.md §2.2-2.4): the student's pooled feature through proj_s and the teacher's last
    `layers` tap vectors each through its rescaler (onto the last tap's width) and the shared
    projector proj_t (each call with its own batch statistics), L2-normalised, stacked as the views
    of one image and contrasted with label-free SupCon (τ = τ_b)."""
    def head(scope, x, out):
        w = heads(scope + "/fc_0/weights", [x.shape[1], out])
        bias = heads(scope + "/fc_0/biases", [out])
        return bn_train(x @ w + bias, heads(scope + "/norm_0/scale", [out]), heads(scope + "/norm_0/offset", [out]))
    dt = taps[-1].shape[1]
    views = [head("/ifacd/proj_s", student, feat)]
    for i in range(len(taps) - layers, len(taps)):
        r = head("/ifacd/rescaler_%02d" % i, taps[i], dt)
        views.append(head("/ifacd/proj_t", r, feat))
    z = torch.stack([F.normalize(v, dim=1) for v in views], 1)
    return supcon(z, None, tau, tau)


def losses():
    out = {}
    b, k = 8, 10
    ys = det_plain("kd.student", [b, k], 3.0).requires_grad_(True)
    yt = det_plain("kd.teacher", [b, k], 3.0)
    out["kd.student"], out["kd.teacher"] = ys, yt
    loss = kd_loss(ys, yt, 4.0)
    loss.backward()
    out["kd.loss"], out["kd.grad"] = loss.reshape(1), ys.grad

    f = det_plain("supcon.features", [b, 2, 16]).requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 0, 1, 3, 3, 0], dtype=torch.int64)
    out["supcon.features"], out["supcon.labels"] = f, labels
    loss = supcon(F.normalize(f, dim=2), labels, 0.07, 0.07)
    loss.backward()
    out["supcon.loss"], out["supcon.grad"] = loss.reshape(1), f.grad

    s = det_plain("ifacd.student", [b, 24], 2.0).requires_grad_(True)
    taps = [det_plain("ifacd.tap.%d" % i, [b, c], 2.0).requires_grad_(True) for i, c in enumerate((12, 20, 32))]
    out["ifacd.student"] = s
    for i, t in enumerate(taps):
        out["ifacd.tap.%d" % i] = t
    loss = ifacd_loss(s, taps, 2, 16, 0.07, head_value)
    loss.backward()
    out["ifacd.loss"], out["ifacd.grad.student"] = loss.reshape(1), s.grad

    # Two SGD steps (momentum 0.9, Nesterov, weight decay 5e-4 on every parameter, lr 0.1) of a
    # linear classifier under cross-entropy.
    x = det_plain("sgd.x", [6, 5], 2.0)
    y = torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int64)
    w = det_plain("sgd.w", [5, 3]).requires_grad_(True)
    bias = det_plain("sgd.b", [3], 0.1).requires_grad_(True)
    out["sgd.x"], out["sgd.y"], out["sgd.w0"], out["sgd.b0"] = x, y, w.detach().clone(), bias.detach().clone()
    opt = torch.optim.SGD([w, bias], lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    for step in (1, 2):
        opt.zero_grad()
        F.cross_entropy(x @ w + bias, y).backward()
        opt.step()
        out["sgd.w%d" % step], out["sgd.b%d" % step] = w.detach().clone(), bias.detach().clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="interop/testdata/golden")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    for name, classes, size, cin, batch in [("resnet8x4", 10, 16, 3, 4), ("resnet32x4", 10, 16, 3, 2), ("wrn_16_2", 10, 16, 3, 4),
                                            ("vgg8", 10, 16, 3, 4), ("vit:nano", 10, 28, 1, 4), ("resnet50", 10, 16, 3, 2),
                                            ("shufflev1", 10, 16, 3, 4), ("shufflev2", 10, 20, 3, 4)]:
        save_safetensors(os.path.join(a.out, name.replace(":", "_") + ".safetensors"), golden(name, classes, size, cin, batch))
    pairs = {}
    x = det_input([4, 32, 32, 3])
    pairs["input"] = nhwc(x)
    for name in PAIR_MODELS:
        model = build(name, 100, 3)
        init_det(model)
        model.eval()
        with torch.no_grad():
            pairs[name + ".logits"] = model(x)[0]
    save_safetensors(os.path.join(a.out, "pairs.safetensors"), pairs)
    save_safetensors(os.path.join(a.out, "losses.safetensors"), losses())


if __name__ == "__main__":
    sys.exit(main())
