#!/usr/bin/env bash
# A phase-diagram sweep on one GPU machine, as four shards in parallel (the way an array job
# spreads it over machines), then merged. Needs a release `gpicl` at $GPICL_BIN and the Vulkan
# loader. Writes under $OUT: merged/ (merged.json, phase.svg), runs.tgz (every run's
# results.json), shard logs.
set -u
OUT=${OUT:-/tmp/gpicl-sweep}
BIN=${GPICL_BIN:-.devrun/gpicl}
SPEC=${SPEC:-docs/sweeps/phase-browser.json}
SHARDS=${SHARDS:-4}
LIMIT=${LIMIT:-280}
[ -x "$BIN" ] || { [ -f "$BIN.gz" ] && gunzip -k "$BIN.gz" && chmod +x "$BIN"; }
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
mkdir -p "$OUT"
for i in $(seq 0 $((SHARDS - 1))); do
  timeout "$LIMIT" "$BIN" sweep run "$SPEC" --out "$OUT/s$i" --shard "$i/$SHARDS" \
    --backend "${BACKEND:-wgpu}" --data-dir web/data > "$OUT/shard$i.log" 2>&1 &
done
wait
tar czf "$OUT/runs.tgz" $(find "$OUT" -name results.json)
"$BIN" sweep merge $(for i in $(seq 0 $((SHARDS - 1))); do echo "$OUT/s$i"; done) --out "$OUT/merged"
cat "$OUT"/shard*.log > "$OUT/log.txt"
rm -rf "$OUT"/shard*.log "$OUT"/s[0-9]*
