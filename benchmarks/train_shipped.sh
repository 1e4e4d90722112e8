#!/usr/bin/env bash
# Retrain the decoder shipped in sdfkit/pretrained/decoder.pt (run from the repository root,
# with the team's meshes in ../shared/meshes; a CUDA GPU is assumed, --device cpu works but is slow).
set -euo pipefail
out=${1:-runs/shipped}
python -m sdfkit train configs/shipped.yaml --out "$out" --device "${DEVICE:-cuda}"
mkdir -p sdfkit/pretrained
cp "$out/decoder.pt" sdfkit/pretrained/decoder.pt
