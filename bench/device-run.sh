#!/usr/bin/env bash
# The one prepared GPU session (see README "GPU numbers"): on an NVIDIA machine with PyTorch,
# time `gpicl bench` on native wgpu (Vulkan) against the same model in PyTorch, then meta-train
# the page's pretrained learner. Needs a release `gpicl` at $GPICL_BIN and the Vulkan loader.
# Writes everything under $OUT (log.txt, pretrained/).
set -u
OUT=${OUT:-/tmp/gpicl-device}
BIN=${GPICL_BIN:-.devrun/gpicl}
[ -x "$BIN" ] || { [ -f "$BIN.gz" ] && gunzip -k "$BIN.gz" && chmod +x "$BIN"; }
TRAIN_MINUTES=${TRAIN_MINUTES:-4}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
echo "== burn wgpu (Vulkan): gpicl bench"
for p in bench pretrained paper; do
  timeout 120 "$BIN" bench --backends wgpu --preset "$p" --steps 20 --warmup 3
done
echo "== PyTorch, same model and step"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/reference_torch.py \
  --preset bench --preset pretrained --preset paper --steps 20 --compile
echo "== meta-train the pretrained learner (wgpu, ${TRAIN_MINUTES} min)"
timeout $((TRAIN_MINUTES * 60 + 90)) "$BIN" train --preset pretrained --backend wgpu \
  --data-dir web/data --max-minutes "$TRAIN_MINUTES" --out "$OUT/pretrained"
echo "== done"
