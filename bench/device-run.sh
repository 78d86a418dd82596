#!/usr/bin/env bash
# The one prepared GPU session (README, "Benchmark"): on an NVIDIA machine with PyTorch, time
# `gpicl bench` on native wgpu (Vulkan) against the same model and whole step in PyTorch, at the
# `browser`, `bench`, `pretrained` and `paper` shapes, with burn's fusion and autotuning
# ($GPICL_BIN, built with `--features fusion,autotune`) and, if given, without them
# ($GPICL_LEAN_BIN) and on CUDA ($GPICL_CUDA_BIN, `--features cuda,fusion,autotune`); then
# meta-train the `paper` preset for the time left and evaluate it on unseen MNIST and
# Fashion-MNIST tasks beside the baselines (the paper's Table 1 row). Needs the Vulkan loader.
# Projections are drawn on the device (`--projections device`, `tasks.projections=device`), as
# PyTorch draws them; the fused build is also timed with them drawn on the host and uploaded,
# at the two shapes where that is heaviest, to measure what drawing on the device saves.
# Writes everything under $OUT (log.txt, paper/).
set -u
OUT=${OUT:-/tmp/gpicl-device}
BIN=${GPICL_BIN:-.devrun/gpicl}
LEAN=${GPICL_LEAN_BIN:-}
CUDA=${GPICL_CUDA_BIN:-}
TRAIN_MINUTES=${TRAIN_MINUTES:-4}
PRESETS=${PRESETS:-browser bench pretrained paper}
for b in "$BIN" "$LEAN" "$CUDA"; do
  [ -n "$b" ] && [ ! -x "$b" ] && [ -f "$b.gz" ] && gunzip -k "$b.gz" && chmod +x "$b"
done
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
bench() { # label binary backend projections presets…
  [ -n "$2" ] && [ -x "$2" ] || return 0
  echo "== $1"
  local bin=$2 backend=$3 projections=$4
  shift 4
  for p in "$@"; do
    timeout 150 "$bin" bench --backends "$backend" --preset "$p" --steps 20 --warmup 5 \
      --projections "$projections"
  done
}
bench "burn wgpu (Vulkan), fusion + autotune" "$BIN" wgpu device $PRESETS
bench "the same, projections drawn on the host and uploaded" "$BIN" wgpu host pretrained paper
bench "burn wgpu (Vulkan), lean (no fusion, no autotune)" "$LEAN" wgpu device $PRESETS
bench "burn CUDA, fusion + autotune" "$CUDA" cuda device $PRESETS
echo "== PyTorch eager, same model and whole step (tasks drawn on the device)"
args=(); for p in $PRESETS; do args+=(--preset "$p"); done
PYTHONUNBUFFERED=1 timeout 200 python3 bench/reference_torch.py "${args[@]}" --steps 20
echo "== the paper's setting: meta-train \`paper\` (wgpu, ${TRAIN_MINUTES} min)"
timeout $((TRAIN_MINUTES * 60 + 120)) "$BIN" train --preset paper --backend wgpu \
  --set tasks.projections=device --data-dir web/data --max-minutes "$TRAIN_MINUTES" \
  --out "$OUT/paper"
echo "== unseen MNIST tasks and Fashion-MNIST at the 100th example, beside the baselines"
timeout 300 "$BIN" eval --checkpoint "$OUT/paper/checkpoint.gpicl" --data-dir web/data \
  --backend wgpu --baselines
echo "== done"
