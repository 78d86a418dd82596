#!/usr/bin/env bash
# The prepared GPU session (README, "Benchmark"; issue 13), in two calls that fit the device
# tool's lease (15 minutes of device time, 10 a call):
#
#   bash bench/device-run.sh bench   # ~5 min: the comparison table with PyTorch
#   bash bench/device-run.sh paper   # ~8 min: the `paper` preset meta-trained, then Table 1's row
#
# The machine has no Rust: `cargo xtask device-kit` builds the binaries here into `.devrun/`
# (name it in the call's `carry`): `gpicl` (wgpu, kernels compiled to WGSL), `gpicl-spirv`
# (wgpu through burn's `vulkan` feature: SPIR-V) and `gpicl-cuda`, each with burn's fusion and
# autotuning. Debian packages in `.devrun/debs/` (the Vulkan loader) are unpacked first when the
# machine lacks them.
#
# `bench`: the same 20 `tiny` training steps on Flex and on each build (a check that the GPU
# builds compute what Flex does); PyTorch eager (bench/reference_torch.py: the same model and
# whole step, tasks drawn on the device; in FP32 and again with TF32 matmuls, which burn's
# autotuned matmul may pick); then each binary's `gpicl bench` (projections drawn on the
# device, examples gathered there) at each preset until BENCH_SECONDS have passed. Prints a
# markdown table of ms/step and the best burn time over PyTorch's; writes it to $OUT/table.md.
# `paper`: meta-trains `paper` (d 256, 4 layers, 8 heads, T = 100, B = 128, the paper's tokens,
# unlimited tasks) on TRAIN_BACKEND (cuda, spirv or wgsl; auto: cuda if in the kit, else wgsl)
# for TRAIN_MINUTES, with TRAIN_SET's overrides (default: a bias fraction of 0.9, the paper's
# intervention), then evaluates it on unseen tasks of MNIST's and Fashion-MNIST's test sets
# (`gpicl eval --data`, 256 sequences of 100 examples, seed 1234). The baselines fit on the
# same contexts do not depend on the learner, so `gpicl eval --baselines` computes them on any
# machine with a `paper` checkpoint (the evaluation sets are drawn on the host; README,
# docs/results/paper-baselines/); BASELINES=1 fits them here too.
set -u
PHASE=${1:-bench}
OUT=${OUT:-/tmp/gpicl-device}
KIT=${KIT:-.devrun}
BENCH_SECONDS=${BENCH_SECONDS:-220}
PRESETS=${PRESETS:-bench pretrained paper}
TRAIN_BACKEND=${TRAIN_BACKEND:-auto}
TRAIN_PRESET=${TRAIN_PRESET:-paper}
TRAIN_MINUTES=${TRAIN_MINUTES:-5}
TRAIN_SET=${TRAIN_SET:---set tasks.bias_fraction=0.9}
start=$SECONDS
mkdir -p "$OUT"
exec > >(tee "$OUT/$PHASE.txt") 2>&1

# The binaries, unpacked outside the working tree.
bins=/tmp/gpicl-kit
mkdir -p $bins
for f in "$KIT"/*.xz; do
  [ -f "$f" ] || continue
  b=$bins/$(basename "$f" .xz)
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$b"
  chmod +x "$b"
done
[ -f "$KIT/kit.txt" ] && cat "$KIT/kit.txt"
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in "$KIT"/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv

# Each binary's backend, its label, and the short name TRAIN_BACKEND gives it.
declare -A backend_of=([gpicl-cuda]=cuda [gpicl-spirv]=wgpu [gpicl]=wgpu)
declare -A file_of=([cuda]=gpicl-cuda [spirv]=gpicl-spirv [wgsl]=gpicl)
declare -A label_of=([gpicl-cuda]="burn CUDA" [gpicl-spirv]="burn wgpu, SPIR-V" [gpicl]="burn wgpu, WGSL")
order=(gpicl-cuda gpicl-spirv gpicl)
# The first number after the first word on the line that starts with WORD.
first_number() { awk -v w="$1" '$1 == w { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'; }

if [ "$PHASE" = bench ]; then
  declare -A ms
  echo "== PyTorch eager, the same model and whole step (tasks drawn on the device)"
  args=(); for p in $PRESETS; do args+=(--preset "$p"); done
  PYTHONUNBUFFERED=1 timeout 150 python3 bench/reference_torch.py "${args[@]}" --steps 20 \
    --tf32 | tee /tmp/torch.txt
  for p in $PRESETS; do
    for mode in torch-eager torch-eager-tf32; do
      ms[$mode,$p]=$(awk -v p="$p" -v m=$mode '$1 == p && $2 == m { print $4; exit }' /tmp/torch.txt)
    done
  done
  echo "== the same 20 training steps (\`tiny\`, seed 0) on Flex and on each GPU build: the losses should agree"
  for b in flex "${order[@]}"; do
    if [ "$b" = flex ]; then bin=$bins/gpicl backend=flex; else bin=$bins/$b backend=${backend_of[$b]}; fi
    [ -x "$bin" ] || continue
    echo "-- $b ($backend)"
    rm -rf "/tmp/tiny-$b"
    timeout 60 "$bin" train --preset tiny --steps 20 --backend "$backend" --data-dir web/data \
      --out "/tmp/tiny-$b" >/tmp/one.txt 2>&1
    status=$?
    grep '^step' /tmp/one.txt
    [ $status = 0 ] || { tail -5 /tmp/one.txt; echo "(failed: exit status $status)"; }
  done
  python3 - "${order[@]}" <<'PY'
import json, sys
def losses(b):
    try:
        return [l for _, l in json.load(open(f"/tmp/tiny-{b}/results.json"))["loss_log"]]
    except (OSError, ValueError, KeyError):
        return None
ref = losses("flex")
for b in sys.argv[1:]:
    got = losses(b)
    if ref and got:
        print(f"{b}: losses {got}, largest difference from Flex {max(abs(a - c) for a, c in zip(ref, got)):.2e}")
PY
  # Two passes, so that the deadline leaves every preset timed on one build: first the path
  # known to run (wgpu with WGSL, checked on llvmpipe), then the others.
  for b in gpicl gpicl-cuda gpicl-spirv; do
    [ -x "$bins/$b" ] || continue
    for p in $PRESETS; do
      if (( SECONDS - start > BENCH_SECONDS )); then echo "(time up: $b at $p skipped)"; continue; fi
      echo "== ${label_of[$b]}, preset $p"
      timeout 100 "$bins/$b" bench --backends "${backend_of[$b]}" --preset "$p" --steps 20 \
        --warmup 5 --projections device >/tmp/one.txt 2>&1
      status=$?
      grep -v XDG_RUNTIME_DIR /tmp/one.txt | tail -8
      [ $status = 0 ] || echo "(failed: exit status $status)"
      ms[$b,$p]=$(first_number "${backend_of[$b]}" </tmp/one.txt)
    done
  done
  {
    echo
    echo "| shape | PyTorch eager ms/step (FP32) | (TF32) | ${label_of[gpicl-cuda]} | ${label_of[gpicl-spirv]} | ${label_of[gpicl]} | best burn / PyTorch FP32 | / TF32 |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo –; }
    for p in $PRESETS; do
      t=${ms[torch-eager,$p]:-} t32=${ms[torch-eager-tf32,$p]:-}
      best=
      row="| \`$p\` | ${t:-–} | ${t32:-–}"
      for b in "${order[@]}"; do
        v=${ms[$b,$p]:-}
        row+=" | ${v:-–}"
        if [ -n "$v" ] && { [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then best=$v; fi
      done
      echo "$row | $(ratio "$best" "$t") | $(ratio "$best" "$t32") |"
    done
  } | tee "$OUT/table.md"
elif [ "$PHASE" = paper ]; then
  if [ "$TRAIN_BACKEND" = auto ]; then
    # CUDA where the kit has it, else wgpu with WGSL (the path checked on llvmpipe); set
    # TRAIN_BACKEND=spirv when the bench table shows SPIR-V running and faster.
    TRAIN_BACKEND=wgsl; [ -x "$bins/gpicl-cuda" ] && TRAIN_BACKEND=cuda
  fi
  file=${file_of[$TRAIN_BACKEND]:-}
  [ -n "$file" ] || { echo "TRAIN_BACKEND: cuda, spirv, wgsl or auto"; exit 2; }
  bin=$bins/$file backend=${backend_of[$file]}
  echo "== the paper's setting: meta-train \`$TRAIN_PRESET\` on $TRAIN_BACKEND for $TRAIN_MINUTES min ($TRAIN_SET)"
  # shellcheck disable=SC2086 # TRAIN_SET is a list of arguments
  timeout $((TRAIN_MINUTES * 60 + 60)) "$bin" train --preset "$TRAIN_PRESET" --backend "$backend" \
    --set tasks.projections=device $TRAIN_SET --data-dir web/data \
    --max-minutes "$TRAIN_MINUTES" --out /tmp/paper
  cp /tmp/paper/results.json "$OUT/paper-results.json"
  cp /tmp/paper/curves.svg "$OUT/paper-curves.svg"
  # The learner on unseen tasks of each test set (the baselines do not depend on the learner:
  # `gpicl eval --baselines` computes them anywhere from the same seeds; BASELINES=1 here too).
  extra=(); [ "${BASELINES:-0}" = 1 ] && extra=(--baselines --baseline-sequences 64)
  for set in mnist fashion-mnist; do
    echo "== $set, unseen tasks, 100 examples"
    timeout 90 "$bin" eval --checkpoint /tmp/paper/checkpoint.gpicl --backend "$backend" \
      --data web/data/$set-t10k-images-idx3-ubyte.gz --labels web/data/$set-t10k-labels-idx1-ubyte.gz \
      --seq-len 100 "${extra[@]}"
  done
else
  echo "usage: bash bench/device-run.sh bench|paper"
  exit 2
fi
echo "== done in $((SECONDS - start)) s"
