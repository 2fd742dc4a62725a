#!/usr/bin/env bash
# A short cross-architecture distillation study on Fashion-MNIST with the CPU backend
# (docs/CROSS-ARCH.md): three teachers trained once with `ifa train`, then, with the same recipe for
# every method of a pair and several seeds,
#   (a) resnet32x4 → shufflev2 (RepDistiller's cross-architecture pair), every method;
#   (b) vit:nano → resnet8 and resnet20 → vit:nano, every method, with the tap choices of
#       docs/CROSS-ARCH.md (the 4-block ViT pairs its last 3 blocks with resnet8's 3 stages);
# the vanilla student of each pair (same recipe, CE only); then `ifa report` over all of it.
#
# A method a pair cannot distil is refused by ifa distill before anything is written; a run that
# diverges stops with a message. Either way the reason is kept in $ROOT/failed/ and listed under the
# tables ("Runs that did not finish"), and the run is not retried on the next start unless
# RETRY_FAILED=1. The script resumes: a finished run (summary.json, or a teacher's .done mark) is
# skipped, an interrupted one continues with --resume from its last checkpoint.
#
# Usage: scripts/xarch-fmnist.sh [--plan | --report]
#   --plan    print the plan and the estimate, run nothing
#   --report  only write the report of the runs finished so far
# Environment (defaults in brackets): IFA [./bin/ifa], ROOT [runs/xarch-fmnist], SEEDS ["0 1"],
# NICE [5] (niceness of the runs), METHODS [all, in this order: every seed-0 run comes before
# the seed-1 runs, and of those vanilla, kd and ifacd first], ONLY [every pair], and the sizes
# below. The defaults took about 105 minutes in all on a 2-core machine shared with other jobs
# (teachers 36, the ViT pairs 24, resnet32x4 → shufflev2 45); results in docs/results/xarch-fmnist.
set -euo pipefail
cd "$(dirname "$0")/.."

plan_only=0 report_only=0
case ${1:-} in
--plan) plan_only=1 ;;
--report) report_only=1 ;;
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "xarch-fmnist: unknown argument $1 (want --plan or --report)" >&2; exit 2 ;;
esac

IFA=${IFA:-./bin/ifa}
ROOT=${ROOT:-runs/xarch-fmnist}
SEEDS=${SEEDS:-"0 1"}
NICE=${NICE:-5}
TEST_LIMIT=${TEST_LIMIT:-1000} # the teachers' evaluation: the first N test images
METHODS=${METHODS:-"vanilla kd ifacd crd hint attention similarity correlation vid rkd pkt nst fsp"}
# Teachers: training images and epochs (cosine schedule).
T_R32X4_LIMIT=${T_R32X4_LIMIT:-10000} T_R32X4_EPOCHS=${T_R32X4_EPOCHS:-3}
T_VIT_LIMIT=${T_VIT_LIMIT:-30000} T_VIT_EPOCHS=${T_VIT_EPOCHS:-5}
# The ViT teacher trains with AdamW (with SGD, the CNN recipe, vit:nano stays near 30% after 8,000
# images).
T_VIT_FLAGS=${T_VIT_FLAGS:-"--optimizer=adamw --lr=2e-3 --weight-decay=0.05 --warmup-steps=100"}
T_R20_LIMIT=${T_R20_LIMIT:-10000} T_R20_EPOCHS=${T_R20_EPOCHS:-4}
# Students (training images, epochs, milestones, batch, evaluation period, test images, rate; 0:
# the recipe's): a resnet32x4 → shufflev2 distillation step (teacher forward included) runs at
# ~40-60 images/s on two cores with one other job, so pair (a) gets 94 steps of 64 images at a
# constant rate of 0.05 (at the recipe's 0.01, or after a few dozen steps, shufflev2 still predicts
# one class) and one evaluation; the ViT pairs run at ~250-450 images/s and get 94 steps too.
A_LIMIT=${A_LIMIT:-3000} A_EPOCHS=${A_EPOCHS:-2} A_MILESTONES=${A_MILESTONES:-2} A_BATCH=${A_BATCH:-64}
A_EVAL_EVERY=${A_EVAL_EVERY:-0} A_TEST=${A_TEST:-500} A_LR=${A_LR:-0.05}
B_LIMIT=${B_LIMIT:-3000} B_EPOCHS=${B_EPOCHS:-2} B_MILESTONES=${B_MILESTONES:-2} B_BATCH=${B_BATCH:-64}
B_EVAL_EVERY=${B_EVAL_EVERY:-1} B_TEST=${B_TEST:-1000} B_LR=${B_LR:-0}

# name model limit epochs [flags...]
TEACHERS=("vit-nano vit:nano $T_VIT_LIMIT $T_VIT_EPOCHS $T_VIT_FLAGS" "resnet20 resnet20 $T_R20_LIMIT $T_R20_EPOCHS"
	"resnet32x4 resnet32x4 $T_R32X4_LIMIT $T_R32X4_EPOCHS")
# pair-name teacher-dir student size(a|b), the tap flag of the map baselines (attention, nst, vid)
# and the flags of ifacd joined by +, - for none. The (b) pairs first: they are fast.
# The last field: flags of every run of the pair (joined by +, - for none): the ViT student trains
# with AdamW (with the recipe's SGD it stays near chance).
PAIRS=("resnet20-vit-nano resnet20 vit:nano b --student-taps=blocks:last:3 - --optimizer=adamw+--weight-decay=0.05"
	"vit-nano-resnet8 vit-nano resnet8 b --teacher-taps=blocks:last:3 --taps=last:2+--ifacd-rs-block=none,transformer -"
	"resnet32x4-shufflev2 resnet32x4 shufflev2 a - - -")

# ONLY: run only these pairs (space-separated pair names, e.g. resnet32x4-shufflev2) and their
# teachers; the report still takes every finished run.
if [ -n "${ONLY:-}" ]; then
	sel=()
	for p in "${PAIRS[@]}"; do [[ " $ONLY " == *" ${p%% *} "* ]] && sel+=("$p"); done
	[ ${#sel[@]} -gt 0 ] || { echo "xarch-fmnist: ONLY=$ONLY names none of the pairs" >&2; exit 2; }
	PAIRS=("${sel[@]}")
	sel=()
	for t in "${TEACHERS[@]}"; do
		for p in "${PAIRS[@]}"; do
			read -r _ pt _ <<<"$p"
			[ "${t%% *}" = "$pt" ] && { sel+=("$t"); break; }
		done
	done
	TEACHERS=("${sel[@]}")
fi

if [ ! -x "$IFA" ]; then
	if [ "$IFA" = ./bin/ifa ]; then make build >/dev/null; else echo "xarch-fmnist: IFA=$IFA is not an executable" >&2; exit 2; fi
fi

tdir() { echo "$ROOT/teachers/$1"; }
sdir() { echo "$ROOT/runs/$1/$2-s$3"; } # pair method seed
ffile() { echo "$ROOT/failed/$1/$2-s$3.txt"; }
tdone() { [ -f "$(tdir "$1")/.done" ]; }
sdone() { [ -f "$(sdir "$@")/summary.json" ] || { [ -f "$(ffile "$@")" ] && [ "${RETRY_FAILED:-0}" != 1 ]; }; }

# The plan and the estimate (images/s measured on the shared 2-core machine, loaded).
n_todo=0 est=0
echo "xarch-fmnist plan, in $ROOT (seeds: $SEEDS; test: first $TEST_LIMIT test images):"
for t in "${TEACHERS[@]}"; do
	read -r name model limit epochs flags <<<"$t"
	state=todo
	if tdone "$name"; then state=done; else
		case $model in resnet32x4) ips=20 ;; *) ips=400 ;; esac
		est=$((est + limit * epochs / ips + 20))
	fi
	echo "  teacher $model: $limit images, $epochs epochs, cosine ${flags:-} ($state)"
done
for p in "${PAIRS[@]}"; do
	read -r pair teacher student size _ _ <<<"$p"
	if [ "$size" = a ]; then
		limit=$A_LIMIT epochs=$A_EPOCHS ms=$A_MILESTONES batch=$A_BATCH test=$A_TEST lr=$A_LR ips=50 evs=25
	else
		limit=$B_LIMIT epochs=$B_EPOCHS ms=$B_MILESTONES batch=$B_BATCH test=$B_TEST lr=$B_LR ips=250 evs=12
	fi
	todo=0
	for s in $SEEDS; do for m in $METHODS; do sdone "$pair" "$m" "$s" || todo=$((todo + 1)); done; done
	n_todo=$((n_todo + todo))
	est=$((est + todo * (limit * epochs / ips + evs)))
	echo "  $teacher → $student: $limit images, $epochs epochs, milestones $ms, batch $batch, lr $lr (0: the recipe's), $test test images; $todo runs to do"
done
echo "  methods: $METHODS"
echo "  estimate: about $((est / 60 + 1)) minutes on two shared cores"
[ "$plan_only" = 1 ] && exit 0
[ "$report_only" = 1 ] && TEACHERS=() PAIRS=()

mkdir -p "$ROOT"
start=$(date +%s)
say() { echo "== [$(($(date +%s) - start))s] $*"; }

# resume_flag DIR: --resume when DIR holds a checkpoint of an unfinished run; otherwise DIR (a run
# that failed before its first checkpoint) is cleared for a fresh start.
resume_flag() {
	if [ -n "$(ls "$1/checkpoints" 2>/dev/null)" ]; then echo --resume; else rm -rf "$1"; fi
}
# reason LOG: the last error message of a JSON log (or its last line).
reason() {
	local r
	r=$(grep '"level":"error"' "$1" | tail -1 | sed -n 's/.*"message":"\(.*\)"}$/\1/p')
	[ -n "$r" ] || r=$(tail -1 "$1")
	echo "$r"
}

for t in "${TEACHERS[@]+"${TEACHERS[@]}"}"; do
	read -r name model limit epochs flags <<<"$t"
	tdone "$name" && continue
	d=$(tdir "$name")
	mkdir -p "$(dirname "$d")"
	say "teacher $model: $limit images, $epochs epochs"
	# shellcheck disable=SC2046
	nice -n "$NICE" "$IFA" --seed 0 --log-format json --out "$d" train --model "$model" --dataset fashion-mnist \
		--limit-train "$limit" --limit-test "$TEST_LIMIT" --epochs "$epochs" --schedule cosine --log-every 0 \
		${flags:-} $(resume_flag "$d") >"$ROOT/teacher-$name.log" 2>&1 || { echo "teacher $model failed: $(reason "$ROOT/teacher-$name.log")" >&2; exit 1; }
	touch "$d/.done"
	grep -o '"test_top1":[0-9.]*' "$ROOT/teacher-$name.log" | tail -1
done

for size in b a; do # the fast pairs first
	for s in $SEEDS; do
		for p in "${PAIRS[@]+"${PAIRS[@]}"}"; do
			read -r pair teacher student psize maptaps ifacdtaps pairflags <<<"$p"
			[ "$psize" = "$size" ] || continue
			if [ "$size" = a ]; then
				limit=$A_LIMIT epochs=$A_EPOCHS ms=$A_MILESTONES batch=$A_BATCH ev=$A_EVAL_EVERY test=$A_TEST lr=$A_LR
			else
				limit=$B_LIMIT epochs=$B_EPOCHS ms=$B_MILESTONES batch=$B_BATCH ev=$B_EVAL_EVERY test=$B_TEST lr=$B_LR
			fi
			for m in $METHODS; do
				sdone "$pair" "$m" "$s" && continue
				d=$(sdir "$pair" "$m" "$s")
				case $m in
				vanilla) args=(--method kd --alpha 0 --label vanilla) ;;
				*) args=(--method "$m") ;;
				esac
				if [ "${pairflags:--}" != - ]; then
					IFS=+ read -r -a extra <<<"$pairflags"
					args+=("${extra[@]}")
				fi
				if [[ " attention nst vid " == *" $m "* ]] && [ "$maptaps" != - ]; then args+=("$maptaps"); fi
				if [ "$m" = ifacd ] && [ "$ifacdtaps" != - ]; then
					IFS=+ read -r -a extra <<<"$ifacdtaps"
					args+=("${extra[@]}")
				fi
				# The vanilla run of seed 0 also measures the teacher on the same test images (the
				# report's teacher row).
				teval=(--no-teacher-eval)
				[ "$m" = vanilla ] && [ "$s" = "${SEEDS%% *}" ] && teval=()
				say "$pair $m seed $s"
				mkdir -p "$ROOT/logs/$pair"
				log="$ROOT/logs/$pair/$m-s$s.log"
				# shellcheck disable=SC2046
				if nice -n "$NICE" "$IFA" --seed "$s" --log-format json --out "$d" distill --teacher "$(tdir "$teacher")" \
					--student "$student" "${args[@]}" --limit-train "$limit" --limit-test "$test" --batch "$batch" --lr "$lr" \
					--epochs "$epochs" --milestones "$ms" --eval-every "$ev" --log-every 0 "${teval[@]}" \
					$(resume_flag "$d") >"$log" 2>&1; then
					rm -f "$(ffile "$pair" "$m" "$s")"
					grep -o '"test_top1":[0-9.]*' "$log" | tail -1
				else
					mkdir -p "$ROOT/failed/$pair"
					reason "$log" >"$(ffile "$pair" "$m" "$s")"
					echo "   failed: $(cat "$(ffile "$pair" "$m" "$s")")"
				fi
			done
		done
	done
done

say "report"
finished=()
for d in "$ROOT"/runs/*/*/; do
	[ -f "$d/summary.json" ] && finished+=("$d")
done
[ ${#finished[@]} -gt 0 ] || { echo "xarch-fmnist: no finished runs in $ROOT/runs" >&2; exit 1; }
"$IFA" --out "$ROOT/report" report "${finished[@]}" >/dev/null
# The runs that did not finish, with their reasons, under the tables.
if [ -n "$(ls "$ROOT"/failed/*/*.txt 2>/dev/null)" ]; then
	{
		echo
		echo "### Runs that did not finish"
		echo
		echo "| pair | method | seed | reason |"
		echo "|---|---|---|---|"
		for f in "$ROOT"/failed/*/*.txt; do
			pair=$(basename "$(dirname "$f")") run=$(basename "$f" .txt)
			echo "| $pair | ${run%-s*} | ${run##*-s} | $(tr '|' '/' <"$f") |"
		done
	} >>"$ROOT/report/tables.md"
fi
say "done: $ROOT/report (tables.md, the CSVs, final_top1.png, curves_*.png)"
