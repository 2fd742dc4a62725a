#!/usr/bin/env bash
# Reproduces the talk's study (METHODS.md §9): the six teacher → student pairs of its tables on
# CIFAR-100 with the 240-epoch recipe, every method (kd, hint, attention, similarity, correlation,
# vid, rkd, pkt, nst, crd, ifacd1, ifacd2, ifacd3) and the vanilla student, N seeds each; the
# teachers trained with `ifa train` (RepDistiller's recipe) or imported with `ifa import` from
# TEACHERS_PTH/<teacher>.pth when that file exists; then the four tables and the plots with
# `ifa report` in $ROOT/report.
#
# It prints its plan and an estimate of the GPU hours first. It resumes: a finished run (a teacher
# with its .done mark, a distillation with summary.json) is skipped, an interrupted one continues
# with --resume from its last checkpoint.
#
# Usage: scripts/reproduce-talk.sh [--smoke] [--plan] [--seeds N]
#   --smoke   the same plan on Fashion-MNIST with tiny limits (64 training and 32 test images,
#             batch 16, one epoch; four for the teachers) on the CPU backend: about 15 minutes on
#             two cores
#   --plan    print the plan and the estimate, run nothing
#   --seeds N seeds 0..N-1 of every student run (default 3)
# Environment (defaults in brackets): IFA [./bin/ifa], ROOT [runs/reproduce-talk, or
# runs/reproduce-talk-smoke], BACKEND [xla:cuda; cpu with --smoke], DATA_DIR [ifa's default
# places], TEACHERS_PTH [none], PAIRS (teacher→student, space-separated) [the six], METHODS [all],
# SECONDS_PER_EPOCH_TEACHER [12] and SECONDS_PER_EPOCH_STUDENT [15] for the estimate (one H100;
# measure yours with `ifa bench`).
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0 plan_only=0 seeds=3
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--plan) plan_only=1 ;;
	--seeds)
		[ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "reproduce-talk: --seeds wants a positive integer" >&2; exit 2; }
		seeds=$2
		shift
		;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "reproduce-talk: unknown argument $1 (want --smoke, --plan, --seeds N)" >&2; exit 2 ;;
	esac
	shift
done

IFA=${IFA:-./bin/ifa}
PAIRS=${PAIRS:-"wrn_40_2→wrn_16_2 wrn_40_2→wrn_40_1 vgg13→vgg8 resnet56→resnet20 resnet32x4→resnet8x4 resnet110→resnet20"}
METHODS=${METHODS:-"vanilla kd hint attention similarity correlation vid rkd pkt nst crd ifacd1 ifacd2 ifacd3"}
T_SEC=${SECONDS_PER_EPOCH_TEACHER:-12}
S_SEC=${SECONDS_PER_EPOCH_STUDENT:-15}
if [ "$smoke" = 1 ]; then
	ROOT=${ROOT:-runs/reproduce-talk-smoke}
	BACKEND=${BACKEND:-cpu}
	DATASET=fashion-mnist
	EPOCHS=1 MILESTONES=1 BATCH=16
	# A teacher of 4 steps has unsettled batch-norm statistics. Those of the deep teachers (resnet56,
	# resnet110, resnet32x4) are still unsettled after these 16 steps: their pooled features are so
	# large that correlation and vid, whose losses are not normalised, can diverge and be listed as
	# failed (see distill.Correlation); with resnet56 or resnet110 teachers of 47 steps they train.
	T_EPOCHS=4 T_MILESTONES=3
	LIMITS=(--limit-train 64 --limit-test 32 --eval-batch 32)
	CRD=(--param crd_k=16)
else
	ROOT=${ROOT:-runs/reproduce-talk}
	BACKEND=${BACKEND:-xla:cuda}
	DATASET=cifar100
	EPOCHS=240 MILESTONES=150,180,210 BATCH=64
	T_EPOCHS=240 T_MILESTONES=150,180,210
	LIMITS=()
	CRD=()
fi
DATA=()
[ -n "${DATA_DIR:-}" ] && DATA=(--data-dir "$DATA_DIR")

if [ ! -x "$IFA" ]; then
	if [ "$IFA" = ./bin/ifa ]; then make build >/dev/null; else echo "reproduce-talk: IFA=$IFA is not an executable" >&2; exit 2; fi
fi

teachers=()
for p in $PAIRS; do
	t=${p%%→*}
	[ "$t" != "$p" ] || { echo "reproduce-talk: PAIRS: $p is not teacher→student" >&2; exit 2; }
	[[ " ${teachers[*]:-} " == *" $t "* ]] || teachers+=("$t")
done

# Run directories and their state.
tdir() { echo "$ROOT/teachers/$1"; }
sdir() { echo "$ROOT/runs/${1/→/-}/$2-s$3"; } # pair method seed
tdone() { [ -f "$(tdir "$1")/.done" ]; }
sdone() { [ -f "$(sdir "$1" "$2" "$3")/summary.json" ]; }

# The plan and the estimate.
n_t=0 n_t_todo=0 n_s=0 n_s_todo=0
for t in "${teachers[@]}"; do
	n_t=$((n_t + 1))
	tdone "$t" || n_t_todo=$((n_t_todo + 1))
done
for p in $PAIRS; do
	for m in $METHODS; do
		for ((s = 0; s < seeds; s++)); do
			n_s=$((n_s + 1))
			sdone "$p" "$m" "$s" || n_s_todo=$((n_s_todo + 1))
		done
	done
done
echo "reproduce-talk plan ($([ "$smoke" = 1 ] && echo "smoke: Fashion-MNIST, tiny limits" || echo "CIFAR-100, 240 epochs")), in $ROOT, backend $BACKEND:"
for t in "${teachers[@]}"; do
	how="train ($T_EPOCHS epochs)"
	[ -n "${TEACHERS_PTH:-}" ] && [ -f "$TEACHERS_PTH/$t.pth" ] && how="import $TEACHERS_PTH/$t.pth"
	tdone "$t" && how="done"
	echo "  teacher $t: $how"
done
echo "  pairs: $PAIRS"
echo "  methods: $METHODS"
echo "  seeds: $seeds; student runs: $n_s ($n_s_todo to do), teacher runs: $n_t ($n_t_todo to do)"
if [ "$smoke" = 1 ]; then
	echo "  estimate: about $(((n_t_todo * 30 + n_s_todo * 10) / 60 + 1)) CPU minutes (about 30 s a teacher and 10 s a student run on two cores), no GPU"
else
	awk -v t="$n_t_todo" -v s="$n_s_todo" -v e="$EPOCHS" -v ts="$T_SEC" -v ss="$S_SEC" 'BEGIN { # teachers and students both 240 epochs
		h = (t * e * ts + s * e * ss) / 3600
		printf "  estimate: %.1f GPU hours (%d teachers x %d epochs x %g s + %d students x %d epochs x %g s; set SECONDS_PER_EPOCH_TEACHER/STUDENT from ifa bench on your GPU)\n", h, t, e, ts, s, e, ss
	}'
fi
[ "$plan_only" = 1 ] && exit 0

start=$(date +%s)
say() { echo "== [$(($(date +%s) - start))s] $*"; }

# resume_flag DIR: --resume when DIR holds a checkpoint of an unfinished run; otherwise DIR (a run
# that failed before its first checkpoint) is cleared for a fresh start.
resume_flag() {
	if [ -n "$(ls "$1/checkpoints" 2>/dev/null)" ]; then echo --resume; else rm -rf "$1"; fi
}
failed=()

for t in "${teachers[@]}"; do
	d=$(tdir "$t")
	tdone "$t" && continue
	if [ -n "${TEACHERS_PTH:-}" ] && [ -f "$TEACHERS_PTH/$t.pth" ]; then
		say "teacher $t: import $TEACHERS_PTH/$t.pth"
		rm -rf "$d"
		"$IFA" --backend "$BACKEND" --out "$d" import --model "$t" --dataset "$DATASET" "$TEACHERS_PTH/$t.pth" ||
			{ failed+=("teacher $t (import)"); continue; }
	else
		say "teacher $t: train"
		# shellcheck disable=SC2046
		"$IFA" --backend "$BACKEND" --seed 0 --out "$d" train --model "$t" --dataset "$DATASET" "${DATA[@]}" \
			--epochs "$T_EPOCHS" --milestones "$T_MILESTONES" --batch "$BATCH" "${LIMITS[@]}" $(resume_flag "$d") ||
			{ failed+=("teacher $t"); continue; }
	fi
	touch "$d/.done"
done

for p in $PAIRS; do
	t=${p%%→*} st=${p#*→}
	if ! tdone "$t"; then
		failed+=("$p: no teacher $t")
		continue
	fi
	for ((s = 0; s < seeds; s++)); do
		for m in $METHODS; do
			d=$(sdir "$p" "$m" "$s")
			sdone "$p" "$m" "$s" && continue
			case $m in
			vanilla) args=(--method kd --alpha 0 --label vanilla) ;;
			ifacd[1-9]) args=(--method ifacd --ifacd-layers "${m#ifacd}") ;;
			crd) args=(--method crd "${CRD[@]}") ;;
			*) args=(--method "$m") ;;
			esac
			say "$p $m seed $s"
			# shellcheck disable=SC2046
			"$IFA" --backend "$BACKEND" --seed "$s" --out "$d" distill --teacher "$(tdir "$t")" --student "$st" \
				"${args[@]}" "${DATA[@]}" --epochs "$EPOCHS" --milestones "$MILESTONES" --batch "$BATCH" "${LIMITS[@]}" \
				$(resume_flag "$d") || failed+=("$p $m seed $s")
		done
	done
done

say "report"
finished=()
for d in "$ROOT"/runs/*/*/; do
	[ -f "$d/summary.json" ] && finished+=("$d")
done
if [ ${#finished[@]} -gt 0 ]; then
	"$IFA" --out "$ROOT/report" report "${finished[@]}" >"$ROOT/report.md"
fi
say "done: $ROOT/report (tables.md, the CSVs, final_top1.png, curves_*.png)"
if [ ${#failed[@]} -gt 0 ]; then
	# A failed run (a diverged loss stops it with a message, see its log above) is left out of the
	# tables; running the script again retries it.
	echo "reproduce-talk: ${#failed[@]} runs failed and are not in the tables:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	exit 1
fi
