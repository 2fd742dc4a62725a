#!/usr/bin/env bash
# A short distillation study on Fashion-MNIST with the CPU backend: one resnet20 teacher trained once
# with `ifa train`, then resnet8 students distilled with every method under the same recipe and
# epochs, the vanilla student (same recipe, CE only) and IFACD with two seeds, and `ifa report`.
# Every setting can be overridden from the environment; the defaults fit a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
IFA=${IFA:-./bin/ifa}
ROOT=${ROOT:-runs/distill-fmnist}
TEACHER=${TEACHER:-resnet20}
STUDENT=${STUDENT:-resnet8}
T_LIMIT=${T_LIMIT:-20000}     # teacher training images
T_EPOCHS=${T_EPOCHS:-4}
S_LIMIT=${S_LIMIT:-4000}      # student training images (a subset of the teacher's)
S_EPOCHS=${S_EPOCHS:-5}
S_MILESTONES=${S_MILESTONES:-3,4}
METHODS=${METHODS:-"kd hint attention similarity correlation vid rkd pkt nst crd"}
SEEDS=${SEEDS:-"0 1"}          # seeds of the vanilla student and of ifacd
[ -x "$IFA" ] || make build
mkdir -p "$ROOT"
start=$(date +%s)
say() { echo "== [$(($(date +%s) - start))s] $*"; }

if [ ! -f "$ROOT/teacher/config.json" ] || [ -z "$(ls "$ROOT/teacher/checkpoints" 2>/dev/null)" ]; then
	say "teacher $TEACHER: $T_LIMIT images, $T_EPOCHS epochs"
	rm -rf "$ROOT/teacher"
	"$IFA" --out "$ROOT/teacher" train --model "$TEACHER" --dataset fashion-mnist \
		--limit-train "$T_LIMIT" --epochs "$T_EPOCHS" --schedule cosine --log-every 100
fi

distil() { # out seed method extra...
	local out=$1 seed=$2 method=$3
	shift 3
	if [ -f "$ROOT/$out/summary.json" ]; then return; fi
	rm -rf "${ROOT:?}/$out"
	say "$out"
	"$IFA" --seed "$seed" --out "$ROOT/$out" distill --teacher "$ROOT/teacher" --student "$STUDENT" \
		--method "$method" --limit-train "$S_LIMIT" --epochs "$S_EPOCHS" --milestones "$S_MILESTONES" \
		--no-teacher-eval --log-every 100 "$@"
}
for seed in $SEEDS; do
	distil "vanilla-s$seed" "$seed" kd --alpha 0 --label vanilla
	distil "ifacd2-s$seed" "$seed" ifacd --ifacd-layers 2
done
for m in $METHODS; do
	distil "$m-s0" 0 "$m"
done
say "report"
"$IFA" --out "$ROOT/report" report "$ROOT"/*-s*
