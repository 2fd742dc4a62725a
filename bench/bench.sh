#!/usr/bin/env bash
# Training-step benchmarks of ifa (and, with --peers, of the PyTorch peer bench/peers/train_step.py).
#
#   bench/bench.sh            ifa only: writes bench/results.md
#   bench/bench.sh --peers    ifa and PyTorch interleaved (same model, method, batch, input, steps),
#                             side by side with the ratio ifa/PyTorch; writes bench/results-peers.md
#                             (and bench/results.md from the same ifa runs)
#
# The set: resnet8x4 none/kd/ifacd (teacher resnet32x4) at batch 64 on 32x32x3, and the ViT
# vit:nano (28x28x1, patch 4, dim 64, depth 4) at batch 128 with the IFACLR lwclr loss and with
# plain cross-entropy (the transformer step alone, without lwclr's 2048-wide projector).
# Environment: IFA (the ifa binary, default bin/ifa), BACKEND (default cpu), STEPS (10), WARMUP (2),
# ROUNDS (number of interleaved rounds, default 1; the best median of the rounds is kept),
# PYTHON (default /usr/bin/python3), THREADS (PyTorch threads, default: the number of CPUs), OUT,
# OUT_PEERS, PEER_MALLOC (the peer's glibc malloc tunables, below), ONLY (run only the rows whose
# "model method" is in this comma-separated list, e.g. ONLY="resnet8x4 none").
# With --peers, each round's ratio of every row is also printed (stderr), e.g. steady-state pairs:
#   ONLY="resnet8x4 none" STEPS=20 WARMUP=10 ROUNDS=3 OUT=/tmp/r.md OUT_PEERS=/tmp/p.md bench/bench.sh --peers
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=0
[[ "${1:-}" == "--peers" ]] && PEERS=1
IFA=${IFA:-bin/ifa}
BACKEND=${BACKEND:-cpu}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
OUT=${OUT:-bench/results.md}
OUT_PEERS=${OUT_PEERS:-bench/results-peers.md}

# model method batch input
CONFIGS=(
  "resnet8x4 none 64 32x32x3"
  "resnet8x4 kd 64 32x32x3"
  "resnet8x4 ifacd 64 32x32x3"
  "vit:nano lwclr 128 28x28x1"
  "vit:nano none 128 28x28x1"
)

if [[ ! -x $IFA ]]; then
  echo "bench: $IFA not found: run 'make build' first (or set IFA)" >&2
  exit 1
fi
if [[ $PEERS == 1 ]] && ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  echo "bench: $PYTHON cannot import torch. On Debian: apt-get install python3-torch libopenblas0-pthread" >&2
  exit 1
fi

# PyTorch 1.13 runs its own CPU kernels (elementwise, batch norm, reductions) on AVX2 unless told that
# AVX-512 may be used; only where the processor has AVX-512 F/BW/DQ/VL (forcing it elsewhere would
# stop the peer with an illegal instruction).
# glibc's malloc gives freed blocks above its mmap threshold (128 KiB at first) back to the system,
# and trims the heap top, so PyTorch page-faults its activations in again on every step: on this
# machine's resnet8x4 step that cost the peer 40% (about 150 against 250 images/s). PyTorch's
# performance guide recommends jemalloc or tcmalloc for CPU training; the same effect without another
# library: keep freed memory (mmap threshold 32 MiB, the largest glibc allows; no trimming). Set
# PEER_MALLOC= (empty) to run the peer with glibc's defaults.
PEER_MALLOC=${PEER_MALLOC-glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296}
PEER_ENV=()
[[ -n $PEER_MALLOC ]] && PEER_ENV+=("GLIBC_TUNABLES=$PEER_MALLOC")
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo &&
  grep -qw avx512vl /proc/cpuinfo; then
  PEER_ENV+=(ATEN_CPU_CAPABILITY=avx512)
fi

if [[ -n ${ONLY:-} ]]; then
  kept=() names=()
  for cfg in "${CONFIGS[@]}"; do
    read -r model method _ <<<"$cfg"
    names+=("$model $method")
    [[ ",$ONLY," == *",$model $method,"* ]] && kept+=("$cfg")
  done
  if [[ ${#kept[@]} == 0 ]]; then
    echo "bench: ONLY=$ONLY: no such row; expected comma-separated \"model method\" among: $(IFS=,; echo "${names[*]}")" >&2
    exit 2
  fi
  CONFIGS=("${kept[@]}")
fi

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

for round in $(seq "$ROUNDS"); do
  for cfg in "${CONFIGS[@]}"; do
    read -r model method batch input <<<"$cfg"
    IFS=x read -r h w c <<<"$input"
    echo "bench: round $round: ifa $model $method batch $batch $input" >&2
    line=$("$IFA" --backend "$BACKEND" --log-level warn bench --model "$model" --method "$method" --batch "$batch" \
      --input "$input" --steps "$STEPS" --warmup "$WARMUP" --format json)
    echo "$line" >>"$RAW"
    if [[ $PEERS == 1 ]]; then
      echo "bench: round $round: pytorch $model $method batch $batch $input" >&2
      # OpenBLAS picks its own (AVX-512) kernels only without the machine's OPENBLAS_CORETYPE and
      # OPENBLAS_L2_SIZE: unset for the peer alone. PyTorch's convolutions run on oneDNN, which
      # picks AVX-512 by itself (on channels-last tensors, the peer's default for CNNs); its own
      # kernels need ATEN_CPU_CAPABILITY=avx512 (PEER_ENV).
      line=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "${PEER_ENV[@]}" "$PYTHON" bench/peers/train_step.py --model "$model" --method "$method" --batch "$batch" \
        --size "$h" --channels "$c" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --format json)
      echo "$line" >>"$RAW"
    fi
  done
done

"$PYTHON" - "$RAW" "$OUT" "$OUT_PEERS" "$PEERS" "$BACKEND" "$STEPS" "$WARMUP" "$ROUNDS" "$THREADS" "$PEER_MALLOC" <<'EOF'
import json, platform, subprocess, sys, time
raw, out, out_peers, peers, backend, steps, warmup, rounds, threads, peer_malloc = sys.argv[1:]
best = {}
last_ifa = None
for line in open(raw):
    r = json.loads(line)
    key = (r.get("peer", "ifa"), r["model"], r["method"], r["batch"])
    if key[0] == "ifa":
        last_ifa = r
    elif last_ifa is not None and key[1:] == (last_ifa["model"], last_ifa["method"], last_ifa["batch"]):
        print(f"bench: pair: {r['model']} {r['method']} batch {r['batch']}: ifa {last_ifa['images_per_sec']:.1f}, "
              f"PyTorch {r['images_per_sec']:.1f} images/s, ratio {last_ifa['images_per_sec'] / r['images_per_sec']:.2f}",
              file=sys.stderr)
    if key not in best or r["step_seconds_median"] < best[key]["step_seconds_median"]:
        best[key] = r
paths = sorted({r["kernels"] for r in best.values() if r.get("kernels")})
kpath = f" ({', '.join(paths)} kernels)" if paths else ""
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
hdr = f"Training steps (forward, backward, SGD-momentum update) on one fixed random batch; median of {steps} " \
      f"steps after compiling and {warmup} warm-up steps, best of {rounds} round(s). ifa backend: {backend}" \
      f"{kpath}. " \
      f"Machine: {cpu or platform.machine()}, {subprocess.getoutput('nproc')} CPUs. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n"
def mib(b):
    return f"{b / 2**20:.0f}"
def emit(path, rows):
    text = "\n".join([hdr] + rows) + "\n"
    open(path, "w").write(text)
    print(text)
    print(f"written to {path}", file=sys.stderr)
rows = ["| model | method | teacher | batch | input | images/s | ms/step (median) | compile s | peak MiB | trainable params |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
for key, r in best.items():
    if key[0] == "ifa":
        rows.append(f"| {r['model']} | {r['method']} | {r.get('teacher', '') or '–'} | {r['batch']} | {r['input']} | "
                    f"{r['images_per_sec']:.1f} | {1000 * r['step_seconds_median']:.0f} | {r['compile_seconds']:.1f} | "
                    f"{mib(r['peak_memory_bytes'])} | {r['trainable_params']:,} |")
emit(out, rows)
if peers == "1":
    rows = [f"PyTorch {next((r['torch'] for r in best.values() if r.get('peer') == 'pytorch'), '?')}, {threads} threads; "
            "OpenBLAS with its own kernel choice (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for PyTorch alone), "
            "convolutions on oneDNN with channels-last CNN tensors, ATen kernels "
            f"{next((r.get('cpu_capability') or '?' for r in best.values() if r.get('peer') == 'pytorch'), '?')}; "
            + (f"glibc malloc keeps freed memory (GLIBC_TUNABLES={peer_malloc}, instead of page-faulting "
               "activations in again on every step); " if peer_malloc else "glibc malloc with its defaults; ")
            + "ifa and PyTorch run alternately.\n",
            "| model | method | batch | input | ifa images/s | PyTorch images/s | ifa / PyTorch | ifa ms/step | PyTorch ms/step | ifa peak MiB | PyTorch peak MiB | params ifa / PyTorch |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, r in best.items():
        p = best.get(("pytorch",) + key[1:])
        if key[0] != "ifa" or p is None:
            continue
        rows.append(f"| {r['model']} | {r['method']} | {r['batch']} | {r['input']} | {r['images_per_sec']:.1f} | "
                    f"{p['images_per_sec']:.1f} | {r['images_per_sec'] / p['images_per_sec']:.2f} | "
                    f"{1000 * r['step_seconds_median']:.0f} | {1000 * p['step_seconds_median']:.0f} | "
                    f"{mib(r['peak_memory_bytes'])} | {mib(p['peak_memory_bytes'])} | "
                    f"{r['trainable_params']:,} / {p['trainable_params']:,} |")
    emit(out_peers, rows)
EOF
