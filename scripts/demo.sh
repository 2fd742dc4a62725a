#!/usr/bin/env bash
# make demo: IFACLR self-supervised pretraining of a small ViT on Fashion-MNIST with ifa's pure-Go
# CPU backend, then weighted kNN (k=200, T=0.1) and linear-probe evaluation of the frozen encoder.
# Sized for under 15 minutes on a quiet 2-core machine, build included (see EPOCHS and CROPS below).
# Every setting can be overridden from the environment: DEMO_EPOCHS=4 make demo;
# DEMO_MODE=simclr make demo (the SimCLR baseline); DEMO_CROPS= make demo (no local crops);
# DEMO_EPOCHS=0 make demo (the untrained encoder: the random-weights baseline); DEMO_PROJ_NORM=ln
# for the reference's LayerNorm projector.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start))s"; }

DATA_DIR=${DEMO_DATA_DIR:-/usr/share/datasets/fashion-mnist}
# IFACLR in its two-augmentation form (simlwclr): the last layer's vector of augmentation a against
# the last 2 layers' vectors of augmentation b. Single-view lwclr (DEMO_MODE=lwclr) sees no
# augmentation pair and learns no invariance: in short runs its kNN accuracy fell below the untrained
# encoder's. Settings chosen on 100-200-step runs on 12800 images (see the report): a low
# temperature (0.1), mild crops for 28x28 images (area >= 60%), no blur, solarization, mean-token
# features, lr 5e-3, and a BatchNorm projector (the reference's --bn_proj; Linear 2048 -> BN -> ReLU -> Linear 256 -> BN),
# which beat the LayerNorm one by about 2 kNN points at equal steps.
# The predictor methods (byol, simsiam, mocov3 and their layer-wise variants lwbyol, lwsimsiam,
# lwmocov3; DEMO_MODE=lwmocov3 ...) were compared with this recipe at an equal 2-epoch budget (README,
# "Self-supervised methods at an equal budget"): none came near simlwclr's kNN, so it stays the demo.
MODE=${DEMO_MODE:-simlwclr}
# 7 epochs with 6 local crops (CROPS below): kNN@200 84.15%, kNN@20 86.97%, linear 86.20% (last
# layer) / 88.72% (4 layers concatenated); 8 epochs gave 84.12 / 87.36 / 86.27 / 88.69% and the former
# 10 epochs without local crops 83.38 / 86.31 / 85.66 / 87.67%. The 6 local crops cost about 2.3x the
# CPU time per epoch (2-epoch runs: 230 s against 101 s). Measured on the quiet 2-core machine: 7
# epochs, the demo itself 716 s (663 s pretraining), 11 min 56 s with a warm build; 8 epochs took
# 13 min 58 s with a cold build (a fresh Go build cache), too close to the 15-minute budget. On a
# slower day for the machine, 7 epochs took 13 min 33 s with a warm build (same figures).
EPOCHS=${DEMO_EPOCHS:-7}
BATCH=${DEMO_BATCH:-256}
LR=${DEMO_LR:-0.005}
TEMP=${DEMO_TEMPERATURE:-0.1}
CROP=${DEMO_CROP_SCALE:-0.6}
# Brightness/contrast jitter strength (factors in [1-x, 1+x], p 0.8). On 2-epoch runs: 0 gives 74.1%
# kNN, 0.4 80.0%, 0.8 80.7% (2 seeds each for 0.4 and 0.8), 1.2 79.4%. The whole demo with 0.8: kNN
# 82.48% (+0.9) but linear 86.94% (-0.55, under its 87% target), so 0.4 stays.
JITTER=${DEMO_JITTER:-0.4}
# BYOL's solarization (values >= 0.5 inverted) with probability 0.2, the one setting besides the BN
# projector that moved kNN: in the whole demo kNN@200 81.60% -> 83.61%, k=20 84.79% -> 86.53%, linear
# 87.49% -> 87.68% (p 0.4: 83.71% / 86.23% / 87.69%; DEMO_SOLARIZE_THRESHOLD=0.3: 83.95% / 86.44% /
# 88.04%, one run, not yet compared with SimCLR at that setting).
SOLARIZE=${DEMO_SOLARIZE:-0.2}
SOLARIZE_THRESHOLD=${DEMO_SOLARIZE_THRESHOLD:-0.5}
PATCH=${DEMO_PATCH:-7}
# The contrastive family (lwclr, simlwclr, simclr, supcon, lwsupcon) takes the projector and temperature
# above; the predictor methods (byol, simsiam, mocov3 and their lw variants) their own defaults
# (ifa params lists them) unless DEMO_PROJ_* / DEMO_TEMPERATURE are given.
case "$MODE" in
lwclr | simlwclr | simclr | supcon | lwsupcon) CLR=1 ;;
*) CLR=0 ;;
esac
if [ "$CLR" = 0 ]; then TEMP=${DEMO_TEMPERATURE:-0}; fi
PROJ_NORM=${DEMO_PROJ_NORM:-bn}
# The probe is logistic regression on frozen features, a convex problem: it is trained close to its
# optimum (300 epochs at lightly's lr 0.1 take about 40 s) rather than for the 90 epochs of ifa's default.
PROBE_EPOCHS=${DEMO_PROBE_EPOCHS:-300}
PROJ_HIDDEN=${DEMO_PROJ_HIDDEN:-2048}
PROJ_OUT=${DEMO_PROJ_OUT:-256}
PROJ_LAYERS=${DEMO_PROJ_LAYERS:-2}
if [ "$CLR" = 0 ]; then
	PROJ_NORM=${DEMO_PROJ_NORM:-auto} PROJ_HIDDEN=${DEMO_PROJ_HIDDEN:-0} PROJ_OUT=${DEMO_PROJ_OUT:-0} PROJ_LAYERS=${DEMO_PROJ_LAYERS:-0}
fi
# Multi-crop: the 2 global 28-px crops (area >= 60%) and 6 local 14-px crops (20-60% of the area;
# 2x2 patches of 7 px) per image. Each local crop's last-layer vector is one more anchor against the
# global views (ssl.SupConWithAnchors; in the predictor methods every layer of every crop predicts
# the other global crops' targets). On 2-epoch runs (README table) 4 local crops lifted simlwclr
# from 81.16 / 84.00 / 82.46% (kNN@200 / kNN@20 / linear) to 82.03 / 84.95 / 84.30%, 6 to 82.10 /
# 85.28 / 84.33%; batch 128 instead of 256 gave 80.93 / 83.86%. DEMO_CROPS= turns them off;
# lwclr takes 1 global crop (DEMO_CROPS=1x28:0.6-1,6x14:0.2-0.6), other patch sizes other local sizes.
DEFAULT_CROPS=2x28:0.6-1,6x14:0.2-0.6
if [ "$MODE" = lwclr ] || [ "$PATCH" != 7 ]; then DEFAULT_CROPS=; fi
CROPS=${DEMO_CROPS-$DEFAULT_CROPS}
RUN=${DEMO_RUN:-runs/demo-$(date +%Y%m%d-%H%M%S)}
IFA=${IFA:-./bin/ifa}
# Extra flags for a quick check, e.g. DEMO_ARGS="--limit-train 2048 --limit-test 500" (all phases).
read -r -a EXTRA <<<"${DEMO_ARGS:-}"
# Extra flags for the pretraining alone, e.g. DEMO_PRETRAIN_ARGS="--knn-every 5" (the online kNN monitor).
read -r -a PRETRAIN_EXTRA <<<"${DEMO_PRETRAIN_ARGS:-}"

if [ ! -f "$DATA_DIR/train-images-idx3-ubyte.gz" ] && [ ! -f "$DATA_DIR/train-images-idx3-ubyte" ]; then
	echo "== Installing Debian's dataset-fashion-mnist"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
if [ ! -x "$IFA" ]; then
	echo "== Building ifa"
	make build
fi

echo "== [$(elapsed)] IFACLR pretraining: ViT nano (dim 64, depth 4, patch $PATCH, mean token), $MODE on the last 2 layers, $EPOCHS epochs${CROPS:+, crops $CROPS} -> $RUN"
"$IFA" --out "$RUN" pretrain vit --dataset fashion-mnist --data-dir "$DATA_DIR" \
	--config nano --patch "$PATCH" --pooling mean --method "$MODE" --layers last:2 \
	--proj-norm "$PROJ_NORM" --proj-hidden "$PROJ_HIDDEN" --proj-out "$PROJ_OUT" --proj-layers "$PROJ_LAYERS" --temperature "$TEMP" \
	${CROPS:+--crops "$CROPS"} \
	--augment simclr --crop-scale "$CROP" --jitter "$JITTER" --no-blur --solarize "$SOLARIZE" --solarize-threshold "$SOLARIZE_THRESHOLD" \
	--epochs "$EPOCHS" --batch "$BATCH" --optimizer adamw --lr "$LR" --weight-decay 0.05 \
	--warmup-steps 50 --clip 1.0 --knn-every 0 --log-every 20 "${EXTRA[@]}" "${PRETRAIN_EXTRA[@]}"

echo "== [$(elapsed)] kNN evaluation (bank: the training images, queries: the test images; last-layer mean token)"
"$IFA" knn-eval --checkpoint "$RUN" --k 200 --temperature 0.1 --also-k20 --format json "${EXTRA[@]}" | tee "$RUN/knn.json"

echo "== [$(elapsed)] Linear evaluation (frozen encoder; the last layer's mean token, 64 features)"
"$IFA" linear-eval --checkpoint "$RUN" --epochs "$PROBE_EPOCHS" --lr 0.1 --format json "${EXTRA[@]}" | tee "$RUN/linear.json"

if [ "${DEMO_PROBE_ALL:-1}" != 0 ]; then
	echo "== [$(elapsed)] Linear evaluation (frozen encoder; the 4 layers' mean tokens concatenated, 256 features)"
	"$IFA" linear-eval --checkpoint "$RUN" --layers all --epochs "$PROBE_EPOCHS" --lr 0.1 --format json "${EXTRA[@]}" | tee "$RUN/linear-all.json"
fi

# pct FILE [N]: the N-th (default first) "top1" of a JSON result, as a percentage.
pct() { grep -o '"top1":[-0-9.eE+]*' "$1" | sed -n "${2:-1}p" | cut -d: -f2 | awk '{printf "%.2f%%", 100*$1}'; }
echo
echo "== Done in $(elapsed), build not counted (run directory $RUN)"
echo "   kNN (k=200, T=0.1) top-1: $(pct "$RUN/knn.json")   (raw pixels: 78.9%; target 86%)"
echo "   kNN (k=20, T=0.07) top-1: $(pct "$RUN/knn.json" 2)   (raw pixels: 84.6%)"
echo "   linear probe top-1, last layer:          $(pct "$RUN/linear.json")   (raw-pixel logistic regression: about 84%; target 87.5%)"
if [ -f "$RUN/linear-all.json" ]; then echo "   linear probe top-1, 4 layers concatenated: $(pct "$RUN/linear-all.json")"; fi
echo "   (ifa report $RUN puts these side by side with other runs)"
