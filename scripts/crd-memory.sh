#!/usr/bin/env bash
# Peak memory against dataset size: CRD keeps two [N, 128] memory banks, IFACD keeps none. Each run
# distils for a fixed time on the first N training images, with no evaluation in that window (so every
# run is measured in the same phase), then its peak resident set (VmHWM) is read and the run is
# interrupted (it writes a checkpoint and stops). Needs the teacher of scripts/distill-fmnist.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
IFA=${IFA:-./bin/ifa}
ROOT=${ROOT:-runs/distill-fmnist}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-75}
printf '| method | N (training images) | peak RSS after %ss (MiB) |\n|---|---:|---:|\n' "$SECONDS_PER_RUN"
for m in crd ifacd; do
	for n in 4000 60000; do
		out="$ROOT/memory-$m-$n"
		rm -rf "$out"
		"$IFA" --log-format json --out "$out" distill --teacher "$ROOT/teacher" --student resnet8 --method "$m" \
			--limit-train "$n" --limit-test 1000 --epochs 50 --milestones 100 --eval-every 100 --no-teacher-eval >"$out.log" 2>&1 &
		pid=$!
		sleep "$SECONDS_PER_RUN"
		hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status" 2>/dev/null)
		[ -n "$hwm" ] || hwm="n/a (the run ended before ${SECONDS_PER_RUN}s: see $out.log)"
		kill -INT "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		printf '| %s | %d | %s |\n' "$m" "$n" "${hwm:-n/a}"
	done
done
