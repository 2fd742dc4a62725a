#!/usr/bin/env bash
# GPU benchmark: ifa's training steps on --backend xla:cuda against PyTorch on CUDA, eager and
# torch.compile'd (mode "default" and "reduce-overhead", i.e. CUDA graphs), for resnet8x4 (teacher
# resnet32x4) with kd and ifacd and for the ViT nano lwclr step (28x28x1), at each batch of BATCHES.
# Per row: images/s of every side, the ratio of ifa to the fastest PyTorch mode, the first call's
# seconds (compile plus one step) of every side, and the peak memory a step needs: ifa's device bytes
# from the compiled XLA executable (device_peak_bytes), PyTorch's torch.cuda.max_memory_allocated
# over the timed steps (eager). Writes the markdown table to OUT and the raw JSON lines to OUT.jsonl.
#   bench/gpu.sh [STEPS]        (default 30 timed steps after WARMUP=5 warm-up steps)
# Environment: IFA (prebuilt binary; default: go build), BACKEND (cuda, or cpu for a dry run on a
# machine without GPU: ifa --backend cpu and the peer on the CPU), BATCHES ("64 256"), CASES (regexp
# on the step name), MODES ("eager default reduce-overhead"; modes need torch >= 2.0 and are skipped
# with one line otherwise), RUN_TIMEOUT (seconds per run, 150), PYTHON (a python3 that imports torch),
# IFA_ARGS (extra global ifa flags), OUT (/tmp/ifa-gpu-bench.md), DEADLINE (epoch seconds: runs that
# would end after it are cut off or skipped, saying so; bench/gpu-check.sh sets it from its budget).
# The rows run batch by batch (every step at the first batch, then at the next).
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-${STEPS:-30}}
WARMUP=${WARMUP:-5}
BACKEND=${BACKEND:-cuda}
BATCHES=${BATCHES:-64 256}
MODES=${MODES:-eager default reduce-overhead}
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
OUT=${OUT:-/tmp/ifa-gpu-bench.md}
export PATH="/usr/local/go/bin:$PATH"

case $BACKEND in
cuda)
	IFA_BACKEND=xla:cuda PEER_DEVICE=cuda
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { echo "no NVIDIA GPU visible"; exit 1; }
	;;
cpu) IFA_BACKEND=cpu PEER_DEVICE=cpu ;;
*) echo "gpu.sh: BACKEND=$BACKEND: want cuda or cpu" >&2; exit 2 ;;
esac
IFA=${IFA:-}
if [ -z "$IFA" ]; then
	IFA=bin/ifa
	go build -o "$IFA" ./cmd/ifa || exit 1
fi
if [ -z "${PYTHON:-}" ]; then
	for p in python3 /usr/bin/python3; do
		if "$p" -c 'import torch' 2>/dev/null; then PYTHON=$p; break; fi
	done
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
	echo "gpu.sh: $PYTHON cannot import torch: the PyTorch columns stay empty"
	MODES=""
elif [ "$PEER_DEVICE" = cuda ] && ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
	echo "gpu.sh: $PYTHON's torch has no CUDA: the PyTorch columns stay empty"
	MODES=""
elif [[ " $MODES " != " eager " ]] && ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if hasattr(torch, "compile") else 1)'; then
	echo "gpu.sh: torch $("$PYTHON" -c 'import torch; print(torch.__version__)') has no torch.compile: the default and reduce-overhead modes are skipped"
	MODES=$(echo " $MODES " | sed 's/ default / /; s/ reduce-overhead / /')
fi

RAW=$OUT.jsonl
: >"$RAW"
# name|ifa bench args|peer args (the same step); the batch is added per run.
cases=(
	"resnet8x4 kd|--model resnet8x4 --method kd --teacher resnet32x4|--model resnet8x4 --method kd --teacher resnet32x4"
	"resnet8x4 ifacd|--model resnet8x4 --method ifacd --teacher resnet32x4|--model resnet8x4 --method ifacd --teacher resnet32x4"
	"vit:nano lwclr 28x28x1|--model vit:nano --method lwclr --input 28x28x1|--model vit:nano --method lwclr --size 28 --channels 1"
)
# record NAME BATCH SIDE CMD...: runs CMD (cut off after RUN_TIMEOUT), echoes its last lines and
# appends its JSON line, tagged with the row and side, to RAW.
record() {
	local name=$1 batch=$2 side=$3; shift 3
	echo "== $name batch $batch: $side"
	local out rc limit=$RUN_TIMEOUT
	if [ -n "${DEADLINE:-}" ]; then
		limit=$((DEADLINE - $(date +%s)))
		if [ "$limit" -lt 20 ]; then
			echo "   skipped: the time budget is spent"
			"$PYTHON" -c 'import json, sys; print(json.dumps({"row": sys.argv[1], "row_batch": int(sys.argv[2]), "side": sys.argv[3], "failed": "budget"}))' \
				"$name" "$batch" "$side" >>"$RAW"
			return
		fi
		[ "$limit" -gt "$RUN_TIMEOUT" ] && limit=$RUN_TIMEOUT
	fi
	out=$(timeout "$limit" "$@" 2>&1)
	rc=$?
	echo "$out" | tail -2
	local js; js=$(echo "$out" | grep '^{' | tail -1)
	[ "$rc" = 124 ] && echo "   (cut off after ${limit}s)"
	"$PYTHON" -c 'import json, sys; j = json.loads(sys.argv[4]) if sys.argv[4] else {"failed": int(sys.argv[5])}
j.update(row=sys.argv[1], row_batch=int(sys.argv[2]), side=sys.argv[3]); print(json.dumps(j))' \
		"$name" "$batch" "$side" "$js" "$rc" >>"$RAW"
}
for b in $BATCHES; do
	for c in "${cases[@]}"; do
		IFS='|' read -r name ifa_args peer_args <<<"$c"
		[[ $name =~ ${CASES:-.} ]] || continue # CASES=resnet: only the steps whose name matches
		# shellcheck disable=SC2086
		record "$name" "$b" ifa "$IFA" ${IFA_ARGS:-} --backend "$IFA_BACKEND" bench $ifa_args --batch "$b" \
			--steps "$STEPS" --warmup "$WARMUP" --format json
		for m in $MODES; do
			mode=$m
			[ "$m" = eager ] && mode=none
			# shellcheck disable=SC2086
			record "$name" "$b" "$m" "$PYTHON" bench/peers/train_step.py $peer_args --batch "$b" --compile "$mode" \
				--steps "$STEPS" --warmup "$WARMUP" --device "$PEER_DEVICE" --format json
		done
	done
done

"$PYTHON" - "$RAW" "$OUT" <<'PY'
import json, sys
raw, out = sys.argv[1], sys.argv[2]
rows = {}
for line in open(raw):
    j = json.loads(line)
    rows.setdefault((j["row"], j["row_batch"]), {})[j["side"]] = j
modes = ["eager", "default", "reduce-overhead"]
f1 = lambda v: f"{v:,.0f}" if v else "n/a"
fs = lambda v: f"{v:.1f}" if v is not None else "n/a"
mib = lambda v: f"{v / 2**20:,.0f}" if v else "n/a"
lines = ["| step | batch | ifa images/s | PyTorch eager | torch.compile default | torch.compile reduce-overhead | ifa / best PyTorch "
         "| first call s: ifa / eager / default / reduce-overhead | ifa peak MiB | PyTorch peak MiB (eager) |",
         "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
measures = set()
for (name, batch), sides in rows.items():
    i = sides.get("ifa", {})
    ips = {m: sides.get(m, {}).get("images_per_sec") for m in modes}
    best = max((v for v in ips.values() if v), default=None)
    a = i.get("images_per_sec")
    ratio = f"**{a / best:.2f}**" if a and best else "n/a"
    first = " / ".join(fs(s.get("compile_seconds")) for s in [i] + [sides.get(m, {}) for m in modes])
    if i.get("backend_compile_seconds"):
        first += f" (ifa's backend compile {i['backend_compile_seconds']:.1f})"
    ipeak = i.get("device_peak_bytes") or i.get("peak_memory_bytes")
    measures.add("ifa: " + (i.get("device_memory_measure") or i.get("peak_memory_measure") or "n/a"))
    measures.add("PyTorch: " + sides.get("eager", {}).get("peak_memory_measure", "n/a"))
    lines.append(f"| {name} | {batch} | {f1(a)} | {f1(ips['eager'])} | {f1(ips['default'])} | {f1(ips['reduce-overhead'])} "
                 f"| {ratio} | {first} | {mib(ipeak)} | {mib(sides.get('eager', {}).get('peak_memory_bytes'))} |")
    for side, j in sides.items():
        if "failed" in j:
            why = "skipped: time budget spent" if j["failed"] == "budget" else f"failed (exit {j['failed']})"
            lines.append(f"|   ↳ {side} {why} | | | | | | | | | |")
text = "\n".join(lines) + "\n\nPeak memory: " + "; ".join(sorted(measures)) + ".\n"
print(text)
open(out, "w").write(text)
PY
