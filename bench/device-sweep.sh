#!/usr/bin/env bash
# Sweeps on one GPU machine: every run of every spec in $SPECS as its own shard (the way an array
# job spreads a sweep over machines), all in parallel, each stopped after $MINUTES of training;
# then each sweep is merged with --partial (a run stopped early counts as far as it went; a
# plateau it was still on counts as "at least that long"). Needs a release `gpicl` at
# $GPICL_BIN and the Vulkan loader. Writes under $OUT: sweeps.tgz (per sweep: merged.json,
# phase.svg, plateau.svg, and every run's results.json) and log.txt (the device tool brings
# back few files).
set -u
OUT=${OUT:-/tmp/gpicl-sweeps}
BIN=${GPICL_BIN:-.devrun/gpicl}
SPECS=${SPECS:-docs/sweeps/phase-browser.json}
MINUTES=${MINUTES:-4}
LIMIT=${LIMIT:-330}
[ -x "$BIN" ] || { [ -f "$BIN.gz" ] && gunzip -k "$BIN.gz" && chmod +x "$BIN"; }
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
runs() { python3 -c "
import json, sys, math
print(math.prod(len(a['values']) for a in json.load(open(sys.argv[1]))['axes']))" "$1"; }
mkdir -p "$OUT/work"
for spec in $SPECS; do
  name=$(basename "$spec" .json)
  n=$(runs "$spec")
  for i in $(seq 0 $((n - 1))); do
    timeout "$LIMIT" "$BIN" sweep run "$spec" --out "$OUT/work/$name/s$i" --shard "$i/$n" \
      --backend "${BACKEND:-wgpu}" --data-dir web/data --max-minutes "$MINUTES" \
      > "$OUT/work/$name-$i.log" 2>&1 &
  done
done
wait
for spec in $SPECS; do
  name=$(basename "$spec" .json)
  "$BIN" sweep merge "$OUT/work/$name"/s* --partial --out "$OUT/merged/$name" >> "$OUT/log.txt" 2>&1
done
for f in "$OUT"/work/*.log; do
  echo "== $f"; tr '\r' '\n' < "$f" | grep -v '^\s*$' | tail -n 6
done >> "$OUT/log.txt"
(cd "$OUT" && tar czf sweeps.tgz merged $(find work -name results.json -o -name spec.json))
rm -rf "$OUT/work" "$OUT/merged"
