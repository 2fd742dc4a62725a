#!/usr/bin/env bash
# make demo: the README's main job on the CPU backend.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
	echo "Installing Debian's dataset-fashion-mnist (needs root)..."
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist
fi
./bin/ifa models
