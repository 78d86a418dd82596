#!/usr/bin/env bash
# The prepared GPU sessions (README, "Benchmark"; issues 13 and 18), each call within the device
# tool's lease (15 minutes of device time, 10 a call):
#
#   bash bench/device-run.sh bench   # ~5 min: the comparison table with PyTorch
#   bash bench/device-run.sh paper   # ~8 min: the `paper` preset meta-trained, then Table 1's row
#   bash bench/device-run.sh tables  # ~8 min: learners of two sizes for any table (issue 18)
#
# The machine has no Rust: `cargo xtask device-kit` builds the binaries here into `.devrun/`
# (name it in the call's `carry`): `gpicl` (wgpu, kernels compiled to WGSL), `gpicl-spirv`
# (wgpu through burn's `vulkan` feature: SPIR-V) and `gpicl-cuda`, each with burn's fusion and
# autotuning, listed with their backends in `.devrun/kit.tsv` (xtask's `KIT`). Debian packages
# in `.devrun/debs/` (the Vulkan loader) are unpacked first when the machine lacks them.
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
# `tables` (issue 18: is the learner's size what holds it level with the baselines on tables?):
# the shipped learner's recipe for each model shape in SHAPES, all at once on the one GPU, the
# same minutes each: the `pretrained` preset from scratch on MNIST tasks for STAGE1_MINUTES,
# then half of each batch random tables from the mixed prior (lr 3e-4) for STAGE2_MINUTES;
# then each learner on the held-out suite with 8 views (the learner's columns; the baselines do
# not depend on it and are in docs/results/suite-views/shipped-8-views-suite13.md) and on the three
# public tables (scikit-learn's copies, written here: docs/results/suite-views/
# public-tables-2026-12-03.md; `gpicl suite --only-data`), each shape after the first also
# paired against the first (`--against`), and packed (`gpicl package`, f16) to be read at home. Writes
# $OUT/tables.txt (this log) and $OUT/tables.tgz (per shape: both stages' results.json, the
# suite's table, the tables' readings, the packed learner). TRAIN_BACKEND as for `paper`, or
# flex (a dry run on any machine).
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
# `tables`: shapes as `--set` overrides of `pretrained`, separated by `;` (d 128 is the shipped
# learner's shape, the control; d 256 with ff 1024 is the paper's width).
SHAPES=${SHAPES:-"--set model.d_model=128;--set model.d_model=256 --set model.d_ff=1024"}
STAGE1_MINUTES=${STAGE1_MINUTES:-3}
STAGE2_MINUTES=${STAGE2_MINUTES:-2}
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

# The kit's binaries as xtask lists them (`KIT`; `.devrun/kit.tsv`), in the order they are
# timed: each one's file, the short name TRAIN_BACKEND gives it, its backend and its label.
declare -A backend_of file_of label_of
order=()
[ -f "$KIT/kit.tsv" ] || { echo "$KIT/kit.tsv is missing: run \`cargo xtask device-kit\` first"; exit 2; }
while IFS=$'\t' read -r file name backend label; do
  backend_of[$file]=$backend file_of[$name]=$file label_of[$file]=$label
  order+=("$file")
done < "$KIT/kit.tsv"
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
    if [ "$b" = flex ]; then bin=$bins/${order[0]} backend=flex; else bin=$bins/$b backend=${backend_of[$b]}; fi
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
  # Build after build, so that the deadline leaves every preset timed on one: first the path
  # known to run (wgpu with WGSL, checked on llvmpipe), then the others.
  for b in "${order[@]}"; do
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
    header="| shape | PyTorch eager ms/step (FP32) | (TF32)" rule="|---|---:|---:"
    for b in "${order[@]}"; do header+=" | ${label_of[$b]}" rule+="|---:"; done
    echo "$header | best burn / PyTorch FP32 | / TF32 |"
    echo "$rule|---:|---:|"
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
elif [ "$PHASE" = paper ] || [ "$PHASE" = tables ]; then
  if [ "$TRAIN_BACKEND" = auto ]; then
    # CUDA where the kit has it, else wgpu with WGSL (the path checked on llvmpipe); set
    # TRAIN_BACKEND=spirv when the bench table shows SPIR-V running and faster.
    TRAIN_BACKEND=wgsl
    cuda=${file_of[cuda]:-}
    [ -n "$cuda" ] && [ -x "$bins/$cuda" ] && TRAIN_BACKEND=cuda
  fi
  if [ "$TRAIN_BACKEND" = flex ]; then
    # Flex is in every binary: the first one's.
    bin=$bins/${order[0]} backend=flex
  else
    file=${file_of[$TRAIN_BACKEND]:-}
    [ -n "$file" ] || { echo "TRAIN_BACKEND: cuda, spirv, wgsl, flex or auto"; exit 2; }
    bin=$bins/$file backend=${backend_of[$file]}
  fi
fi
if [ "$PHASE" = tables ]; then
  work=/tmp/gpicl-tables
  rm -rf "$work" && mkdir -p "$work/public"
  # Each shape's two stages, in the background, all shapes at once; `proj=device`: each task's
  # projection drawn on the GPU.
  stages() {
    local dir=$1; shift
    local limit1 limit2
    limit1=$(awk -v m="$STAGE1_MINUTES" 'BEGIN { printf "%d", m * 60 + 90 }')
    limit2=$(awk -v m="$STAGE2_MINUTES" 'BEGIN { printf "%d", m * 60 + 90 }')
    # shellcheck disable=SC2086,SC2048 # the shape is a list of arguments
    timeout "$limit1" "$bin" train --preset pretrained --backend "$backend" --data-dir web/data \
      $* --set tasks.projections=device --max-minutes "$STAGE1_MINUTES" --out "$dir/stage1" \
      > "$dir/stage1.log" 2>&1 || return
    # shellcheck disable=SC2086,SC2048
    timeout "$limit2" "$bin" train --preset pretrained --backend "$backend" --data-dir web/data \
      $* --init "$dir/stage1" --set tasks.random_tables=0.5 --set tasks.table_prior=mixed \
      --set tasks.classes_curriculum_steps=0 --set train.lr=0.0003 --set train.warmup_steps=50 \
      --set tasks.projections=device --max-minutes "$STAGE2_MINUTES" --out "$dir/stage2" \
      > "$dir/stage2.log" 2>&1
  }
  IFS=';' read -r -a shapes <<< "$SHAPES"
  pids=()
  for i in "${!shapes[@]}"; do
    mkdir -p "$work/shape$i"
    echo "${shapes[$i]}" > "$work/shape$i/shape.txt"
    echo "== shape $i (${shapes[$i]}): stage 1 ($STAGE1_MINUTES min, MNIST tasks) then stage 2 ($STAGE2_MINUTES min, half random tables)"
    stages "$work/shape$i" ${shapes[$i]} &
    pids+=($!)
  done
  # Not a bare `wait`: that would also wait for this log's `tee`, which ends with the script.
  wait "${pids[@]}"
  python3 - "$work/public" <<'PY' || echo "(the public tables were not written: no scikit-learn here)"
import sys
from sklearn.datasets import load_iris, load_wine, load_breast_cancer
for name, load in [("iris", load_iris), ("wine", load_wine), ("breast-cancer", load_breast_cancer)]:
    d = load()
    with open(f"{sys.argv[1]}/{name}.csv", "w") as out:
        out.write(",".join(list(d.feature_names) + ["label"]) + "\n")
        for row, y in zip(d.data, d.target):
            out.write(",".join(repr(float(v)) for v in row) + f",{int(y)}\n")
PY
  sha256sum "$work"/public/*.csv 2>/dev/null
  hardware="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1), burn $backend (TRAIN_BACKEND=$TRAIN_BACKEND)"
  for dir in "$work"/shape*; do
    echo "== $(basename "$dir"): $(cat "$dir/shape.txt")"
    for stage in stage1 stage2; do
      tr '\r' '\n' < "$dir/$stage.log" | grep -v '^\s*$' | tail -n 3
    done
    [ -f "$dir/stage2/checkpoint.gpicl" ] || { echo "(no learner: a stage failed)"; continue; }
    # Every shape after the first (the control) is also read against it on the same sequences
    # and views: the paired difference, the figure that says whether its size helped.
    against=()
    [ "$dir" != "$work/shape0" ] && [ -d "$work/shape0/learner" ] && against=(--against "$work/shape0/learner")
    timeout 300 "$bin" suite --checkpoint "$dir/stage2" --backend "$backend" --views 8 \
      --no-baselines --data-dir web/data "${against[@]}" > "$dir/suite.md" 2>"$dir/suite.err"
    cat "$dir/suite.md"
    # The three public tables in one reading (the last quarter of 30 examples), pooled.
    tables=()
    for t in iris wine breast-cancer; do
      [ -f "$work/public/$t.csv" ] && tables+=(--data "$work/public/$t.csv")
    done
    if [ ${#tables[@]} -gt 0 ]; then
      timeout 120 "$bin" suite --checkpoint "$dir/stage2" --backend "$backend" --only-data \
        "${tables[@]}" --seq-len 30 --views 8 --no-baselines "${against[@]}" \
        > "$dir/public-tables.md" 2>"$dir/public-tables.err"
      grep '^|' "$dir/public-tables.md"
    fi
    timeout 240 "$bin" package "$dir/stage2" --out "$dir/learner" --hardware "$hardware" \
      --data-dir web/data > "$dir/package.log" 2>&1 || tail -n 3 "$dir/package.log"
    rm -f "$dir"/stage*/checkpoint.gpicl
  done
  (cd "$work" && tar czf "$OUT/tables.tgz" shape*)
  ls -la "$OUT"
elif [ "$PHASE" = paper ]; then
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
elif [ "$PHASE" != bench ]; then
  echo "usage: bash bench/device-run.sh bench|paper|tables"
  exit 2
fi
echo "== done in $((SECONDS - start)) s"
