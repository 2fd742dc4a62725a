#!/usr/bin/env python3
"""torch.mm GFLOP/s on the shapes of ifa's BenchmarkSgemm (internal/cpu/kernels), for comparison.

Usage (OpenBLAS rather than the reference BLAS, 2 threads):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread \
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/peers/sgemm.py [--threads 2] [--seconds 0.3]

Prints one line per shape: name and the best GFLOP/s over --repeats timed runs.
"""
import argparse
import time

import torch

# name, transA, transB, m, n, k: the same list as benchShapes in internal/cpu/kernels/gemm_bench_test.go.
SHAPES = [
    ("square1024", False, False, 1024, 1024, 1024),
    ("square256", False, False, 256, 256, 256),
    ("small128x64x64", False, False, 128, 64, 64),
    ("wide64x3072x256", False, False, 64, 3072, 256),
    ("conv1_fwd_32768x16x27", False, False, 32768, 16, 27),
    ("conv3x3_c64_fwd_8192x64x576", False, False, 8192, 64, 576),
    ("conv3x3_c64_dW_576x64x8192_tA", True, False, 576, 64, 8192),
    ("conv3x3_c64_dX_8192x576x64_tB", False, True, 8192, 576, 64),
    ("vit_qkv_4160x576x192", False, False, 4160, 576, 192),
    ("vit_mlp_dW_192x768x4160_tA", True, False, 192, 768, 4160),
    ("vit_attn_65x65x64_tB", False, True, 65, 65, 64),
    ("proj_fwd_128x2048x2048", False, False, 128, 2048, 2048),
    ("proj_dX_128x2048x2048_tB", False, True, 128, 2048, 2048),
    ("proj_dW_2048x2048x128_tA", True, False, 2048, 2048, 128),
]


def operands(trans_a, trans_b, m, n, k):
    """Row-major operands stored as Sgemm would see them; op(X) is a transposed view when trans."""
    a = torch.rand(k, m).t() if trans_a else torch.rand(m, k)
    b = torch.rand(n, k).t() if trans_b else torch.rand(k, n)
    return a, b, torch.empty(m, n)


def measure(trans_a, trans_b, m, n, k, seconds, best=False):
    """GFLOP/s over about seconds of calls: the mean, or with best the fastest call."""
    a, b, c = operands(trans_a, trans_b, m, n, k)
    torch.mm(a, b, out=c)  # warm up
    reps, start, fastest = 0, time.perf_counter(), float("inf")
    while True:
        t0 = time.perf_counter()
        torch.mm(a, b, out=c)
        t1 = time.perf_counter()
        fastest = min(fastest, t1 - t0)
        reps += 1
        elapsed = t1 - start
        if elapsed >= seconds:
            return 2.0 * m * n * k / (fastest if best else elapsed / reps) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=0.3, help="time per measurement")
    p.add_argument("--repeats", type=int, default=3, help="measurements per shape; the best is printed")
    p.add_argument("--best", action="store_true",
                   help="print the fastest single call instead of the mean (steadier on a shared machine)")
    p.add_argument("--only", default="", help="comma-separated shape names to measure (default: all)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads")
    only = set(filter(None, args.only.split(",")))
    for name, ta, tb, m, n, k in SHAPES:
        if only and name not in only:
            continue
        best = max(measure(ta, tb, m, n, k, args.seconds, args.best) for _ in range(args.repeats))
        print(f"{name:40s} {best:8.1f}")


if __name__ == "__main__":
    main()
