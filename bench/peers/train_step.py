#!/usr/bin/env python3
"""PyTorch peer for `ifa bench`: the same training steps (model, shapes, batch, optimizer) in PyTorch.

Usage: python3 bench/peers/train_step.py --model resnet8x4 [--method none|kd|ifacd] [--batch 64]
       [--steps 20] [--warmup 3] [--threads 2] [--device cpu|cuda] [--[no-]channels-last] [--format json|text]
       [--compile none|default|reduce-overhead]
       python3 bench/peers/train_step.py --model vit:nano --method lwclr --size 28 --channels 1 --batch 128

Prints images/s, the median seconds per step and the peak memory (process RSS on CPU; on GPU
torch.cuda.max_memory_allocated over the timed steps, after torch.cuda.reset_peak_memory_stats(): the
tensors a step needs, without the CUDA context or the allocator's cache).

--compile default|reduce-overhead wraps the forward pass and loss in torch.compile with that mode
(reduce-overhead: CUDA graphs); the optimizer step stays eager. The first call (tracing, compiling,
one step) is reported as compile_seconds, apart from the warm-up and the timed steps. A torch without
torch.compile (before 2.0) exits with status 3 and one line saying so. The models follow METHODS.md §4.1 (CIFAR ResNets) and §1.2 (ViT); written for this benchmark.

For the strongest CPU peer, run it as bench/bench.sh does: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
and, on an AVX-512 processor, ATEN_CPU_CAPABILITY=avx512 (PyTorch 1.13 otherwise runs its own elementwise,
batch-norm and reduction kernels on AVX2 here). OpenMP threads spin while they wait: on a loaded machine the
peer slows down several times more than the load alone explains, so compare on a quiet machine.
"""
import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        mid = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(mid))
        out = out + (x if self.short is None else self.short(x))
        return mid, F.relu(out)


class CifarResNet(nn.Module):
    """CIFAR ResNet: stem conv3x3, three stages of n basic blocks, pool, fc. Returns logits, pooled, taps."""

    def __init__(self, depth, widths, stem, classes=100, cin=3):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(cin, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        blocks, c = [], stem
        for s, w in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(c, w, 2 if (s > 0 and i == 0) else 1))
                c = w
        self.blocks = nn.ModuleList(blocks)
        self.n = n
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        taps = []
        for i, b in enumerate(self.blocks):
            mid, x = b(x)
            if i == len(self.blocks) - 1 - self.n:  # output of the second-to-last stage
                stage2 = x
            if i >= len(self.blocks) - self.n:
                taps += [mid, x]
        if self.n == 1:
            taps = [stage2] + taps
        pooled = x.mean((2, 3))
        return self.fc(pooled), pooled, taps


MODELS = {
    "resnet8": lambda cin, k: CifarResNet(8, (16, 32, 64), 16, classes=k, cin=cin),
    "resnet14": lambda cin, k: CifarResNet(14, (16, 32, 64), 16, classes=k, cin=cin),
    "resnet20": lambda cin, k: CifarResNet(20, (16, 32, 64), 16, classes=k, cin=cin),
    "resnet56": lambda cin, k: CifarResNet(56, (16, 32, 64), 16, classes=k, cin=cin),
    "resnet8x4": lambda cin, k: CifarResNet(8, (64, 128, 256), 32, classes=k, cin=cin),
    "resnet32x4": lambda cin, k: CifarResNet(32, (64, 128, 256), 32, classes=k, cin=cin),
}
class ViTBlock(nn.Module):
    """Pre-norm transformer block (METHODS.md §1.2, package vit): x + proj(MHSA(LN1 x)), + fc2(GELU(fc1(LN2 x)))."""

    def __init__(self, d, m, heads, eps):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.fc1 = nn.Linear(d, m)
        self.fc2 = nn.Linear(m, d)

    def forward(self, x):
        b, t, d = x.shape
        dh = d // self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dh), -1) @ v  # [b, heads, t, dh]
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """ViT of package vit: patch embedding, CLS token, position embeddings, pre-norm blocks (LN eps 1e-12,
    no dropout), per-layer CLS vectors through one shared LayerNorm. Returns logits (or None), pooled, vectors."""

    def __init__(self, d, m, heads, depth, patch, size, cin, classes=0, eps=1e-12):
        super().__init__()
        self.embed = nn.Conv2d(cin, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + (size // patch) ** 2, d))
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList([ViTBlock(d, m, heads, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=eps)
        self.head = nn.Linear(d, classes) if classes else None

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        vecs = []
        for blk in self.blocks:
            x = blk(x)
            vecs.append(self.norm(x[:, 0]))
        pooled = vecs[-1]
        return (self.head(pooled) if self.head is not None else None), pooled, vecs


VIT_CONFIGS = {"nano": (64, 128, 4, 4, 4), "micro": (128, 256, 4, 6, 4)}  # dim, mlp, heads, depth, patch


def make_vit(name, size, cin, classes, patch=0):
    base, _, p = name.partition("_")
    d, m, heads, depth, default_patch = VIT_CONFIGS[base]
    return ViT(d, m, heads, depth, patch or (int(p) if p else default_patch), size, cin, classes)


def projector(d, hidden, out):
    """IFACLR's projector (METHODS.md §1.2): Linear-LN-GELU-Linear-LN-GELU-Linear-LN."""
    return nn.Sequential(nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, hidden),
                         nn.LayerNorm(hidden), nn.GELU(), nn.Linear(hidden, out), nn.LayerNorm(out))


TEACHER = {"resnet8x4": "resnet32x4", "resnet8": "resnet56", "resnet20": "resnet56"}


def kd_loss(s, t, T=4.0):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T


def supcon_unlabelled(feats, tau):
    """SupCon 'all' mode, no labels, tau = base tau (METHODS.md §3.1). feats: [B, V, D], normalised."""
    b, v, _ = feats.shape
    c = torch.cat(torch.unbind(feats, 1), 0)  # view-major [VB, D]
    logits = c @ c.T / tau
    logits = logits - logits.max(1, keepdim=True).values.detach()
    n = v * b
    self_mask = torch.eye(n, dtype=torch.bool, device=c.device)
    idx = torch.arange(n, device=c.device) % b
    pos = (idx[:, None] == idx[None, :]) & ~self_mask
    exp = torch.exp(logits).masked_fill(self_mask, 0)
    log_prob = logits - torch.log(exp.sum(1, keepdim=True))
    return -((log_prob * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()


class IFACDHeads(nn.Module):
    """IFACD heads (METHODS.md §2.3): per-tap rescalers Linear+BN1d, shared teacher projector, student projector."""

    def __init__(self, tap_dims, d_t, d_s, feat=128):
        super().__init__()
        self.rescalers = nn.ModuleList([nn.Sequential(nn.Linear(c, d_t), nn.BatchNorm1d(d_t)) for c in tap_dims])
        self.proj_t = nn.Sequential(nn.Linear(d_t, feat), nn.BatchNorm1d(feat))
        self.proj_s = nn.Sequential(nn.Linear(d_s, feat), nn.BatchNorm1d(feat))

    def forward(self, s_feat, t_taps):
        views = [F.normalize(self.proj_s(s_feat), dim=1)]
        for r, t in zip(self.rescalers, t_taps):
            views.append(F.normalize(self.proj_t(r(t.mean((2, 3)).detach())), dim=1))
        return torch.stack(views, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8x4")
    ap.add_argument("--method", default="none", choices=["none", "kd", "ifacd", "lwclr"])
    ap.add_argument("--teacher", default="")
    ap.add_argument("--ifacd-layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--patch", type=int, default=0, help="ViT patch size (0: the config's)")
    ap.add_argument("--proj-hidden", type=int, default=2048, help="lwclr projector hidden width")
    ap.add_argument("--proj-out", type=int, default=2048, help="lwclr projector output width")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="CNN models and their input in channels-last memory format (the default: oneDNN's "
                         "convolutions then read and write them without a reorder per call)")
    ap.add_argument("--format", default="text", choices=["text", "json"])
    ap.add_argument("--compile", default="none", choices=["none", "default", "reduce-overhead"],
                    help="torch.compile the forward pass and loss with this mode (none: eager)")
    a = ap.parse_args()
    if a.compile != "none" and not hasattr(torch, "compile"):
        print(f"torch {torch.__version__} has no torch.compile: --compile {a.compile} skipped", file=sys.stderr)
        sys.exit(3)
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    teacher = heads = proj = None
    is_vit = a.model.startswith("vit:")
    if is_vit:
        if a.method not in ("none", "lwclr"):
            sys.exit("a ViT takes --method none or lwclr")
        student = make_vit(a.model[4:], a.size, a.channels, a.classes if a.method == "none" else 0, a.patch)
        student = student.to(dev).train()
        params = list(student.parameters())
        if a.method == "lwclr":
            proj = projector(student.norm.normalized_shape[0], a.proj_hidden, a.proj_out).to(dev).train()
            params += list(proj.parameters())
    else:
        if a.method == "lwclr":
            sys.exit("lwclr needs a ViT (--model vit:nano)")
        student = MODELS[a.model](a.channels, a.classes).to(dev).train()
        params = list(student.parameters())
        if a.method != "none":
            teacher = MODELS[a.teacher or TEACHER[a.model]](a.channels, a.classes).to(dev).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        if a.method == "ifacd":
            with torch.no_grad():
                _, _, taps = teacher(torch.zeros(2, a.channels, a.size, a.size, device=dev))
            taps = taps[-a.ifacd_layers:]
            d_t = taps[-1].shape[1]
            d_s = student.fc.in_features
            heads = IFACDHeads([t.shape[1] for t in taps], d_t, d_s).to(dev).train()
            params += list(heads.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, a.channels, a.size, a.size, device=dev)
    if a.channels_last and not is_vit:
        x = x.contiguous(memory_format=torch.channels_last)
        for m in (student, teacher):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)

    def loss_fn():
        logits, feat, vecs = student(x)
        if proj is not None:
            # lwclr (METHODS.md §1.3): last layer, then the one before it (stop-gradient), shared projector.
            views = [F.normalize(proj(vecs[-1]), dim=1), F.normalize(proj(vecs[-2].detach()), dim=1)]
            loss = supcon_unlabelled(torch.stack(views, 1), 0.5)
        else:
            loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                t_logits, _, t_taps = teacher(x)
            loss = loss + kd_loss(logits, t_logits)
            if heads is not None:
                loss = loss + 0.8 * supcon_unlabelled(heads(feat, t_taps[-a.ifacd_layers:]), 0.07)
        return loss

    forward = loss_fn if a.compile == "none" else torch.compile(loss_fn, mode=a.compile)
    # With CUDA graphs, each training iteration starts a new graph replay.
    mark_step = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None)
    if a.compile != "reduce-overhead":
        mark_step = None

    def step():
        if mark_step is not None:
            mark_step()
        loss = forward()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    step()  # the first call: compiles under --compile
    sync()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(a.warmup):
        step()
    sync()
    warm = time.perf_counter() - t0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
        measure = "torch.cuda.max_memory_allocated over the timed steps (after reset_peak_memory_stats)"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        measure = "process peak resident set (ru_maxrss)"
    out = {
        "peer": "pytorch", "torch": torch.__version__, "model": a.model, "method": a.method,
        "batch": a.batch, "input": f"{a.size}x{a.size}x{a.channels}", "device": a.device, "threads": a.threads,
        "channels_last": a.channels_last and not is_vit, "cpu_capability": torch.backends.cpu.get_cpu_capability()
        if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability") else
        next((l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l), ""),
        "trainable_params": sum(p.numel() for p in params),
        "images_per_sec": a.batch / med, "step_seconds_median": med, "warmup_seconds": warm,
        "compile": a.compile, "compile_seconds": compile_s,
        "peak_memory_bytes": peak, "peak_memory_measure": measure, "final_loss": float(loss),
    }
    if not math.isfinite(out["final_loss"]):
        print("non-finite loss", file=sys.stderr)
        sys.exit(1)
    if a.format == "json":
        print(json.dumps(out))
    else:
        print(f"pytorch {a.model} {a.method} batch {a.batch}: {out['images_per_sec']:.1f} images/s, "
              f"{med*1000:.1f} ms/step, first call {compile_s:.1f} s ({a.compile}), peak {peak/2**20:.0f} MiB")


if __name__ == "__main__":
    main()
