#!/usr/bin/env bash
# The GPU check of one short lease, in at most BUDGET seconds (default 480: 8 minutes) of the
# machine's time. Every step checks what is left and says so when it skips.
#   1. the machine, the plugin, a 3-step smoke test (the check stops when the backend fails);
#   2. a resnet32x4 teacher for step 3, trained for one epoch on a few images on the host CPU
#      (--backend cpu: no GPU time but its wall time);
#   3. compile time, first run (empty compile cache) against second run (cache filled by the first):
#      `ifa pretrain vit` (ViT nano, lwclr, batch PRE_BATCH=256) and `ifa distill` (resnet32x4 →
#      resnet8x4, ifacd), one epoch on LIMIT_TRAIN images; every executable's compile seconds come from
#      IFA_COMPILE_LOG. The first runs log XLA's per-pass timing (TF_CPP_MIN_LOG_LEVEL=0,
#      TF_CPP_VMODULE=...), kept in OUT/xla-passes-*.log when an executable took more than 15 s;
#   4. bench/gpu.sh: ifa against PyTorch eager, torch.compile default and reduce-overhead at batch
#      64 and 256 (resnet8x4 kd and ifacd, ViT nano lwclr), first-call seconds and peak device memory
#      of both sides (cut off at the budget: the later rows are then missing);
#   5. only with >= 2 GPUs: the 2-device test (needs Go), `ifa distill --devices 2` against
#      `--devices 1` (per-epoch losses within 1e-3 relative) and their images/s; with one GPU it says
#      it skips them.
# It writes OUT/results-gpu.md and, unless RESULTS=none, puts it into RESULTS (default
# bench/results-gpu.md on cuda) between the markers <!-- gpu-check --> ... <!-- /gpu-check -->.
# Environment: BACKEND (cuda; cpu for a dry run on a machine without GPU, with tiny sizes), IFA
# (prebuilt binary, or the gzipped one of bench/gpu-pack.sh; default make build), DATA (Fashion-MNIST
# folder), OUT (/tmp/gpu-check), RUNS (/tmp/gpu-check-runs), BUDGET, CHECKS (steps to run after the
# smoke test, default "2 3 4 5"), PRE_BATCH, LIMIT_TRAIN, LIMIT_TEST, KNN_K, STEPS, BATCHES, MODES,
# RUN_TIMEOUT, RESULTS.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
BACKEND=${BACKEND:-cuda}
BUDGET=${BUDGET:-480}
OUT=${OUT:-/tmp/gpu-check}
RUNS=${RUNS:-/tmp/gpu-check-runs}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
case $BACKEND in
cuda)
	IFA_BACKEND=xla:cuda
	PRE_BATCH=${PRE_BATCH:-256} LIMIT_TRAIN=${LIMIT_TRAIN:-2048} LIMIT_TEST=${LIMIT_TEST:-1000} KNN_K=${KNN_K:-200}
	STEPS=${STEPS:-20} BATCHES=${BATCHES:-64 256} RESULTS=${RESULTS:-bench/results-gpu.md}
	;;
cpu) # dry run: the same steps with tiny sizes
	IFA_BACKEND=cpu
	PRE_BATCH=${PRE_BATCH:-32} LIMIT_TRAIN=${LIMIT_TRAIN:-128} LIMIT_TEST=${LIMIT_TEST:-64} KNN_K=${KNN_K:-20}
	STEPS=${STEPS:-2} BATCHES=${BATCHES:-8} RESULTS=${RESULTS:-none}
	export WARMUP=${WARMUP:-1}
	;;
*) echo "gpu-check.sh: BACKEND=$BACKEND: want cuda or cpu" >&2; exit 2 ;;
esac
export PATH="/usr/local/go/bin:$PATH"
mkdir -p "$OUT" "$RUNS"
if [ -z "${IFA:-}" ]; then
	IFA=bin/ifa
	make build >/dev/null || exit 1
fi
IFA=$(realpath "$IFA")
# IFA may be the gzipped binary that bench/gpu-pack.sh makes for a machine without Go.
if [[ $IFA == *.gz ]]; then
	gz=$IFA dir=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-ifa.XXXXXX") IFA=$dir/ifa
	if ! { gzip -dc "$gz" >"$IFA" 2>/dev/null && chmod +x "$IFA"; }; then
		rm -rf "$dir"
		echo "gpu-check.sh: IFA=$gz: want the gzipped ifa binary (bench/gpu-pack.sh)" >&2
		exit 2
	fi
fi
exec > >(tee "$OUT/gpu-check.log") 2>&1
REPORT=$OUT/results-gpu.md
: >"$REPORT"
step() { echo; echo "== [$(($(date +%s) - T0))s] $*"; }
left() { echo $((BUDGET - ($(date +%s) - T0))); }
# fits SECONDS WHAT: true when SECONDS are left in the budget, else one line saying WHAT is skipped.
fits() {
	if [ "$(left)" -ge "$1" ]; then return 0; fi
	echo "-- skipped (budget: $(left) s left, $1 s needed): $2" | tee -a "$OUT/skipped.txt"
	return 1
}
# cap SECONDS: SECONDS, or what is left of the budget if less (at least 1).
cap() { local l; l=$(left); [ "$l" -lt "$1" ] && echo $((l > 1 ? l : 1)) || echo "$1"; }
: >"$OUT/skipped.txt"
# NGPU: the GPUs seen (a dry run may set it to exercise step 5).
if [ "$BACKEND" = cuda ]; then
	NGPU=${NGPU:-$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)}
else
	NGPU=${NGPU:-1}
fi
want() { [[ " ${CHECKS:-2 3 4 5} " == *" $1 "* ]]; }

step "1. machine, plugin and smoke test ($IFA_BACKEND)"
{
	echo "## GPU check ($(date -u +%Y-%m-%d), BACKEND=$BACKEND)"
	echo
	echo '```'
	if [ "$BACKEND" = cuda ]; then
		nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
	else
		echo "dry run on the host CPU (cpu backend), tiny sizes"
	fi
	grep -m1 "model name" /proc/cpuinfo
	echo "cores: $(nproc)"
	echo '```'
} | tee -a "$REPORT"
if [ "$BACKEND" = cuda ]; then
	site=$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
	ls -d "$site"/jax_plugins/* 2>/dev/null
fi
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA/train-images-idx3-ubyte" ]; then
	echo "-- no Fashion-MNIST in DATA=$DATA: the teacher, compile and several-GPU steps will fail (set DATA)"
fi
timeout "$(cap 90)" "$IFA" --backend "$IFA_BACKEND" bench --model resnet8x4 --method none --steps 3 --warmup 1 ||
	{ echo "$IFA_BACKEND smoke test failed: stopping"; exit 1; }

if want 2 || want 3 || want 5; then
step "2. resnet32x4 teacher (host CPU, one epoch on $LIMIT_TRAIN images)"
TEACHER=$RUNS/teacher
if [ ! -f "$TEACHER/config.json" ]; then
	rm -rf "$TEACHER"
	timeout "$(cap 90)" "$IFA" --backend cpu --log-format json --out "$TEACHER" train --model resnet32x4 --dataset fashion-mnist \
		--data-dir "$DATA" --epochs 1 --batch 64 --limit-train "$LIMIT_TRAIN" --limit-test 256 >"$OUT/teacher.log" 2>&1 ||
		echo "-- teacher training failed (see $OUT/teacher.log): the distill compile rows stay empty"
fi
fi

DISTILL_ARGS=(distill --teacher "$TEACHER" --student resnet8x4 --method ifacd --dataset fashion-mnist --data-dir "$DATA"
	--epochs 1 --batch 64 --limit-train "$LIMIT_TRAIN" --limit-test "$LIMIT_TEST" --no-teacher-eval)
CACHE=$RUNS/xla-cache
if want 3; then
step "3. compile time: first run (empty cache) against second run (cached)"
rm -rf "$CACHE" "$OUT"/compile-*.jsonl "$OUT"/xla-passes-*.log
# compile_run NAME RUN SECONDS ARGS...: one run of ifa ARGS with the shared cache and a compile log;
# the first run also logs XLA's per-pass timing.
compile_run() {
	local name=$1 run=$2 secs=$3; shift 3
	fits "$secs" "$name run $run" || return 0
	local log=$OUT/compile-$name-$run.jsonl
	local env=(IFA_COMPILE_CACHE="$CACHE" IFA_COMPILE_LOG="$log")
	[ "$run" = 1 ] && env+=(TF_CPP_MIN_LOG_LEVEL=0 TF_CPP_VMODULE=hlo_pass_pipeline=1,gpu_compiler=3,nvptx_compiler=3)
	local t=$(date +%s)
	env "${env[@]}" timeout "$(cap "$secs")" "$IFA" --backend "$IFA_BACKEND" --log-format json "$@" >"$OUT/run-$name-$run.log" 2>&1
	echo "$name run $run: exit $?, $(($(date +%s) - t)) s wall; compiles: $(python3 -c 'import json, sys
print(", ".join("%.2f s" % json.loads(l)["seconds"] for l in open(sys.argv[1])))' "$log" 2>/dev/null)"
	if [ "$run" = 1 ]; then
		if python3 -c 'import json, sys; sys.exit(0 if any(json.loads(l)["seconds"] > 15 for l in open(sys.argv[1])) else 1)' "$log" 2>/dev/null; then
			mv "$OUT/run-$name-1.log" "$OUT/xla-passes-$name.log"
			echo "   an executable took > 15 s: XLA's per-pass log kept in $OUT/xla-passes-$name.log"
		fi
	fi
}
VIT_ARGS=(pretrain vit --config nano --method lwclr --batch "$PRE_BATCH" --epochs 1 --dataset fashion-mnist --data-dir "$DATA"
	--limit-train "$LIMIT_TRAIN" --limit-test "$LIMIT_TEST" --knn-every 1 --knn-k "$KNN_K" --warmup-steps 1)
for run in 1 2; do
	rm -rf "$RUNS/vit-$run" "$RUNS/distill-$run"
	compile_run vit "$run" $((run == 1 ? 150 : 60)) --out "$RUNS/vit-$run" "${VIT_ARGS[@]}"
	[ -f "$TEACHER/config.json" ] && compile_run distill "$run" $((run == 1 ? 90 : 45)) --out "$RUNS/distill-$run" "${DISTILL_ARGS[@]}"
done
python3 - "$OUT" >>"$REPORT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name, run):
    p = os.path.join(out, f"compile-{name}-{run}.jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
print("\n### Compile time per executable: first run (empty cache) and second run (cached)\n")
print("| command | executable | first run s | second run s | device MiB |")
print("|---|---|---:|---:|---:|")
for name, cmd in [("vit", "pretrain vit (nano, lwclr)"), ("distill", "distill resnet32x4→resnet8x4 ifacd")]:
    a, b = load(name, 1), load(name, 2)
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else {}
        y = b[i] if i < len(b) else {}
        n = (x.get("name") or y.get("name", "?")).split("/")[-1]
        s = lambda r: f"{r['seconds']:.2f}" if "seconds" in r else "n/a"
        mib = (x.get("device_bytes") or y.get("device_bytes") or 0) / 2**20
        print(f"| {cmd} | {n} | {s(x)} | {s(y)} | {mib:,.0f} |" if mib else f"| {cmd} | {n} | {s(x)} | {s(y)} | |")
    if a or b:
        print(f"| {cmd} | **all** | {sum(r['seconds'] for r in a):.2f} | {sum(r['seconds'] for r in b):.2f} | |")
passes = [f for f in sorted(os.listdir(out)) if f.startswith("xla-passes-")]
print("\nTargets: every executable <= 15 s on the first run, <= 3 s on the second. " +
      ("Per-pass logs of the slow ones: " + ", ".join(passes) if passes else "No executable took more than 15 s (no per-pass log kept)."))
PY
fi

step "4. speed and memory against PyTorch (bench/gpu.sh)"
if want 4 && fits 60 "bench/gpu.sh"; then
	IFA=$IFA BACKEND=$BACKEND BATCHES=$BATCHES RUN_TIMEOUT=${RUN_TIMEOUT:-120} DEADLINE=$((T0 + BUDGET - ${RESERVE:-0})) \
		IFA_COMPILE_CACHE=$CACHE OUT="$OUT/gpu-bench.md" bench/gpu.sh "$STEPS"
	{ echo; echo "### Training steps: ifa against PyTorch eager and torch.compile"; echo; cat "$OUT/gpu-bench.md"; } >>"$REPORT"
fi

step "5. several GPUs"
# DEVICE_PAIR: the two --devices values compared ("1 2"; a dry run may use NGPU=2 DEVICE_PAIR="1 1" to
# exercise the comparison on one device).
read -r DA DB <<<"${DEVICE_PAIR:-1 2}"
if ! want 5; then
	:
elif [ "$NGPU" -lt 2 ]; then
	echo "one GPU ($BACKEND): the 2-device test, the --devices 2 loss-curve match and the scaling row are skipped" | tee -a "$OUT/skipped.txt"
	{ echo; echo "### Several GPUs"; echo; echo "Not run: the machine had $NGPU GPU."; } >>"$REPORT"
else
	{ echo; echo "### Several GPUs ($NGPU)"; echo; } >>"$REPORT"
	if [ "$BACKEND" = cuda ] && command -v go >/dev/null && fits 120 "the 2-device test"; then
		{ echo '```'; IFA_TEST_XLA=cuda timeout "$(cap 120)" go test ./cmd/ifa -run TestTrainTwoDevicesMatchesOneOnXLA -count=1 -v 2>&1 | tail -5; echo '```'; } | tee -a "$REPORT"
	elif ! command -v go >/dev/null; then
		echo "no Go on this machine: TestTrainTwoDevicesMatchesOneOnXLA skipped" | tee -a "$REPORT" "$OUT/skipped.txt"
	fi
	if [ -f "$TEACHER/config.json" ] && fits 150 "distill --devices $DA vs $DB"; then
		for d in a b; do
			n=$DA
			[ $d = b ] && n=$DB
			rm -rf "$RUNS/devices-$d"
			IFA_COMPILE_CACHE=$CACHE timeout "$(cap 75)" "$IFA" --backend "$IFA_BACKEND" --devices "$n" --log-format json \
				--out "$RUNS/devices-$d" "${DISTILL_ARGS[@]}" --epochs 3 >"$OUT/devices-$d.log" 2>&1
			echo "--devices $n: exit $?"
		done
		python3 - "$RUNS" "$DA" "$DB" >>"$REPORT" <<'PY'
import json, os, sys
runs, na, nb = sys.argv[1:]
def epochs(d):
    p = os.path.join(runs, f"devices-{d}", "metrics.jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
a, b = epochs("a"), epochs("b")
print(f"`ifa distill` resnet32x4→resnet8x4 ifacd, 3 epochs, `--devices {na}` against `--devices {nb}` (same seed and batches):\n")
print(f"| epoch | loss, {na} device(s) | loss, {nb} device(s) | relative difference | images/s, {na} | images/s, {nb} |")
print("|---:|---:|---:|---:|---:|---:|")
ok = bool(a) and len(a) == len(b)
for x, y in zip(a, b):
    r = abs(x["train_loss"] - y["train_loss"]) / max(abs(x["train_loss"]), 1e-12)
    ok = ok and r <= 1e-3
    print(f"| {x['epoch']} | {x['train_loss']:.6f} | {y['train_loss']:.6f} | {r:.2e} | {x.get('images_per_sec', 0):,.0f} | {y.get('images_per_sec', 0):,.0f} |")
print(f"\nLoss curves {'match' if ok else 'DO NOT match'} within 1e-3 relative ({len(a)} and {len(b)} epochs).")
ips = lambda ms: sum(m.get("images_per_sec", 0) for m in ms[1:]) / max(len(ms) - 1, 1)
if len(a) > 1 and len(b) > 1:
    print(f"Scaling (training images/s, mean of epochs 2-{len(a)}, after the compile): {ips(a):,.0f} on {na} device(s), "
          f"{ips(b):,.0f} on {nb}: {ips(b) / max(ips(a), 1e-9):.2f}x.")
PY
	fi
fi

step "done: $(($(date +%s) - T0)) s of the ${BUDGET} s budget"
if [ -s "$OUT/skipped.txt" ]; then
	{ echo; echo "Skipped:"; sed 's/^/- /' "$OUT/skipped.txt"; } >>"$REPORT"
fi
echo "Total: $(($(date +%s) - T0)) s (budget $BUDGET s)." >>"$REPORT"
if [ "$RESULTS" != none ]; then
	python3 - "$REPORT" "$RESULTS" <<'PY'
import os, sys
section, results = open(sys.argv[1]).read(), sys.argv[2]
old = open(results).read() if os.path.exists(results) else ""
begin, end = "<!-- gpu-check -->", "<!-- /gpu-check -->"
block = f"{begin}\n{section.rstrip()}\n{end}\n"
if begin in old and end in old:
    new = old[:old.index(begin)] + block + old[old.index(end) + len(end):].lstrip("\n")
else:
    new = old.rstrip("\n") + ("\n\n" if old else "") + block
open(results + ".tmp", "w").write(new)
os.replace(results + ".tmp", results)
PY
	echo "results: $RESULTS"
fi
tar -C "$RUNS" --exclude=checkpoints --exclude=xla-cache -czf "$OUT/runs.tgz" .
ls -la "$OUT"
