#!/usr/bin/env bash
# GPU benchmark: builds ifa (or uses IFA=path, e.g. a binary built elsewhere on a machine without Go),
# runs `ifa bench` on --backend xla:cuda for resnet8x4 (teacher resnet32x4) with kd and ifacd and for
# the ViT nano lwclr step, runs the PyTorch peer with the same settings when a CUDA-enabled torch is
# installed, and prints both with the ratio and the peak device memory (sampled with nvidia-smi; ifa's
# CUDA client does not preallocate, so the sample is what the step uses).
# Meant to finish in well under 5 minutes on one H100.
#   bench/gpu.sh [STEPS]        (default 50 timed steps after 5 warm-up steps)
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-50}
WARMUP=${WARMUP:-5}
BATCH=${BATCH:-64}
PYTHON=${PYTHON:-python3}
export PATH="/usr/local/go/bin:$PATH"
OUT=${OUT:-bench/results-gpu.md}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no NVIDIA GPU visible"; exit 1; }
IFA=${IFA:-}
if [ -z "$IFA" ]; then
	IFA=bin/ifa
	go build -o "$IFA" ./cmd/ifa || exit 1
fi
# Each ifa / PyTorch run is cut off after this many seconds (a hung compile must not eat the session).
RUN_TIMEOUT=${RUN_TIMEOUT:-120}

# peak_mem CMD...: runs CMD while sampling the GPU's used memory; prints CMD's stdout, then the peak (MiB)
# on the last line as "PEAK_MIB=N".
peak_mem() {
	local log; log=$(mktemp)
	(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >>"$log" 2>/dev/null; sleep 0.2; done) &
	local sampler=$!
	"$@"
	local rc=$?
	kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
	echo "PEAK_MIB=$(sort -n "$log" | tail -1)"
	rm -f "$log"
	return $rc
}

rows=()
# name|ifa bench args|peer args (the same step)
cases=(
	"resnet8x4 kd|--model resnet8x4 --method kd --teacher resnet32x4 --batch $BATCH|--model resnet8x4 --method kd --teacher resnet32x4 --batch $BATCH"
	"resnet8x4 ifacd|--model resnet8x4 --method ifacd --teacher resnet32x4 --batch $BATCH|--model resnet8x4 --method ifacd --teacher resnet32x4 --batch $BATCH"
	"vit:nano lwclr 28x28x1|--model vit:nano --method lwclr --batch 128 --input 28x28x1|--model vit:nano --method lwclr --batch 128 --size 28 --channels 1"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name ifa_args peer_args <<<"$c"
	[[ $name =~ ${CASES:-.} ]] || continue # CASES=resnet: only the steps whose name matches
	echo "== ifa $name (xla:cuda)"
	# shellcheck disable=SC2086
	ifa_out=$(peak_mem timeout "$RUN_TIMEOUT" "$IFA" --backend xla:cuda bench $ifa_args \
		--steps "$STEPS" --warmup "$WARMUP" --format json 2>&1)
	echo "$ifa_out" | tail -3
	ifa_json=$(echo "$ifa_out" | grep '^{' | tail -1)
	ifa_peak=$(echo "$ifa_out" | sed -n 's/^PEAK_MIB=//p')
	echo "== pytorch $name (cuda)"
	# shellcheck disable=SC2086
	pt_out=$(peak_mem timeout "$RUN_TIMEOUT" "$PYTHON" bench/peers/train_step.py $peer_args \
		--steps "$STEPS" --warmup "$WARMUP" --device cuda --format json 2>&1)
	echo "$pt_out" | tail -3
	pt_json=$(echo "$pt_out" | grep '^{' | tail -1)
	pt_peak=$(echo "$pt_out" | sed -n 's/^PEAK_MIB=//p')
	rows+=("$name|$ifa_json|$ifa_peak|$pt_json|$pt_peak")
done

"$PYTHON" - "$OUT" "${rows[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
lines = ["| step | ifa images/s | PyTorch images/s | ifa / PyTorch | ifa peak MiB | PyTorch peak MiB |",
         "|---|---:|---:|---:|---:|---:|"]
for r in rows:
    name, ij, ip, pj, pp = r.split("|")
    i = json.loads(ij) if ij else {}
    p = json.loads(pj) if pj else {}
    a, b = i.get("images_per_sec"), p.get("images_per_sec")
    ratio = f"{a / b:.2f}" if a and b else "n/a"
    fmt = lambda v: f"{v:.1f}" if v else "n/a"
    lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} | {ip or 'n/a'} | {pp or 'n/a'} |")
text = "\n".join(lines)
print(text)
open(out, "w").write(text + "\n")
PY
