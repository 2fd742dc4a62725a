#!/usr/bin/env bash
# Packs what bench/gpu-check.sh needs on a GPU machine that has no Go and receives a copy of this
# working tree of at most MAX_MIB (default 64) in all:
#   bin/ifa.gz                the ifa binary, stripped (-s -w) and gzipped (about 11 MB instead of 28);
#   runs/data/fashion-mnist   Fashion-MNIST, copied from SRC_DATA (default /usr/share/datasets/fashion-mnist).
# It then adds up what the copy holds (tracked files, untracked files git does not ignore, and the two
# packed paths), fails with one line when that exceeds MAX_MIB, and prints the command to run there.
# Both packed paths are ignored by git (/bin/, /runs/); each is written next to its place and renamed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
MAX_MIB=${MAX_MIB:-64}
SRC_DATA=${SRC_DATA:-/usr/share/datasets/fashion-mnist}
if [ ! -f "$SRC_DATA/train-images-idx3-ubyte.gz" ] && [ ! -f "$SRC_DATA/train-images-idx3-ubyte" ]; then
	echo "gpu-pack.sh: SRC_DATA=$SRC_DATA holds no Fashion-MNIST (want train-images-idx3-ubyte[.gz]; apt-get install dataset-fashion-mnist)" >&2
	exit 2
fi
mkdir -p bin runs/data
tmp=$(mktemp -d bin/.pack.XXXXXX)
trap 'rm -rf "$tmp" runs/data/.fashion-mnist.tmp' EXIT
go build -trimpath -ldflags "-s -w" -o "$tmp/ifa" ./cmd/ifa
gzip -9 -c "$tmp/ifa" >"$tmp/ifa.gz"
mv -f "$tmp/ifa.gz" bin/ifa.gz
rm -rf runs/data/.fashion-mnist.tmp
cp -r "$SRC_DATA/." runs/data/.fashion-mnist.tmp
rm -rf runs/data/fashion-mnist
mv runs/data/.fashion-mnist.tmp runs/data/fashion-mnist

# sum_sizes: the byte sizes of the NUL-separated paths on stdin (missing files count 0).
sum_sizes() { xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
tracked=$(git ls-files -z --cached | sum_sizes)
untracked=$(git ls-files -z --others --exclude-standard | sum_sizes)
packed=$(find bin/ifa.gz runs/data/fashion-mnist -type f -print0 | sum_sizes)
total=$((tracked + untracked + packed))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "copy: tracked $(mib "$tracked"), untracked $(mib "$untracked"), bin/ifa.gz + runs/data $(mib "$packed"): $(mib "$total") of $MAX_MIB MiB"
if [ "$total" -gt $((MAX_MIB * 1048576)) ]; then
	echo "gpu-pack.sh: the copy would hold $(mib "$total"), over MAX_MIB=$MAX_MIB: remove untracked files or ignore them" >&2
	exit 1
fi
cat <<'EOF'
paths to take along: bin/ifa.gz runs/data
command there, with OUT its folder for files to bring back (results-gpu.md and two archives):
  IFA=bin/ifa.gz DATA=runs/data/fashion-mnist OUT=/tmp/gpu-check bench/gpu-check.sh; cp bench/results-gpu.md $OUT/; tar -czf $OUT/gpu-check.tgz -C /tmp --exclude 'xla-passes-*' gpu-check; find /tmp/gpu-check -name 'xla-passes-*' -printf '%f\n' | tar -czf $OUT/xla-passes.tgz -C /tmp/gpu-check -T -
EOF
