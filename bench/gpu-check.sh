#!/usr/bin/env bash
# One-shot check of ifa on one NVIDIA GPU (a short GPU lease): steps 1-3 take about 9 minutes on an
# H100, most of it XLA compiling the ViT steps (about 100 s each); CHECKS="1 4" picks steps.
#   1. the machine, the PJRT plugin and the CUDA tool folders ifa finds, and a 3-step smoke test
#      (the check stops here when --backend xla:cuda does not work);
#   2. bench/gpu.sh: ifa's training steps on xla:cuda against PyTorch on CUDA (kd, ifacd, lwclr);
#   3. make demo's IFACLR recipe (10 epochs) on xla:cuda, then the same checkpoint's kNN accuracy on
#      both backends (xla:cuda and the pure-Go cpu backend must agree) and the linear probe;
#   4. (not by default) the same recipe for LONG_EPOCHS epochs (auto: as many as step 3's epoch time fits in 85% of
#      LONG_SECONDS less 120 s of compiling, 10 to 100) with the online kNN monitor every 5 epochs: how kNN
#      accuracy grows with training beyond the CPU demo's budget (cut off after LONG_SECONDS).
# Usage: bench/gpu-check.sh   (env: IFA=prebuilt binary, e.g. for a GPU machine without Go;
#        DATA=Fashion-MNIST folder; OUT=folder for the log and results, default /tmp/gpu-check)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
LONG_EPOCHS=${LONG_EPOCHS:-auto}
LONG_SECONDS=${LONG_SECONDS:-300}
RUNS=${RUNS:-/tmp/gpu-check-runs}
DEMO=$RUNS/demo
LONG=$RUNS/long
mkdir -p "$OUT" "$RUNS"
if [ -z "${IFA:-}" ]; then
	IFA=bin/ifa
	make build >/dev/null || exit 1
fi
export IFA
IFA=$(realpath "$IFA")
exec > >(tee "$OUT/gpu-check.log") 2>&1
t0=$(date +%s)
step() { echo; echo "== [$(($(date +%s) - t0))s] $*"; }

step "1. machine and plugin"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
grep -m1 "model name" /proc/cpuinfo; nproc
site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
echo "python3 site-packages: $site"
ls -d "$site"/jax_plugins/* 2>/dev/null; ls "$site/nvidia" 2>/dev/null | tr "\n" " "; echo
find "$site/nvidia" /usr/local/cuda*/ -maxdepth 4 \( -name ptxas -o -name libdevice \) 2>/dev/null | head
# The smoke test is resnet8x4 (XLA compiles it in about 6 s on an H100; the ViT step takes about 100 s).
timeout 90 "$IFA" --backend xla:cuda bench --model resnet8x4 --method none --steps 3 --warmup 1 ||
	{ echo "xla:cuda smoke test failed: stopping"; exit 1; }

want() { [[ " ${CHECKS:-1 2 3} " == *" $1 "* ]]; }

if want 2; then
step "2. bench/gpu.sh"
IFA=$IFA RUN_TIMEOUT=150 OUT="$OUT/results-gpu.md" timeout 330 bench/gpu.sh "${STEPS:-30}"
fi

if want 3; then
step "3. make demo's recipe on xla:cuda"
rm -rf "$DEMO"
IFA_BACKEND=xla:cuda DEMO_DATA_DIR=$DATA DEMO_RUN=$DEMO timeout 200 scripts/demo.sh
echo "-- the same checkpoint's kNN on the cpu backend (must match xla:cuda's to about 0.05%)"
timeout 30 "$IFA" --backend cpu knn-eval --checkpoint "$DEMO" --k 200 --temperature 0.1 --format json | tee "$DEMO/knn-cpu.json"
fi

if want 4; then
if [ "$LONG_EPOCHS" = auto ]; then
	LONG_EPOCHS=$(python3 -c '
import json, statistics, sys
s = [json.loads(l).get("seconds", 0) for l in open(sys.argv[1]) if "\"epoch\"" in l]
e = int(0.85 * (float(sys.argv[2]) - 120) / max(statistics.median(s), 1e-3)) if s else 10
print(max(10, min(100, e // 5 * 5)))' "$DEMO/metrics.jsonl" "$LONG_SECONDS" 2>/dev/null || echo 10)
fi
step "4. $LONG_EPOCHS epochs of the demo's recipe, kNN every 5 epochs (cut off after ${LONG_SECONDS}s)"
rm -rf "$LONG"
IFA_BACKEND=xla:cuda DEMO_DATA_DIR=$DATA DEMO_RUN=$LONG DEMO_EPOCHS=$LONG_EPOCHS DEMO_PRETRAIN_ARGS="--knn-every 5" \
	DEMO_PROBE_EPOCHS=100 timeout "$LONG_SECONDS" scripts/demo.sh
grep -h '"knn' "$LONG/metrics.jsonl" | tail -20
fi

step "done"
tar -C "$RUNS" --exclude=checkpoints -czf "$OUT/runs.tgz" .
ls -la "$OUT"
