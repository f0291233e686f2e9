#!/usr/bin/env bash
# `mxport local-run` (a real coordinator and worker processes over TCP) on every fixture
# layout with fewer and more workers than rank files; every file must equal the
# single-process export byte for byte. Usage: local_run_test.sh BIN_DIR FIXTURES_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
FIXTURES=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passes=0
failures=0
check() {  # layout model workers [quantization]
  local layout=$1 model=$2 workers=$3 quant=${4:-none} name="$1 with $3 workers"
  [ "$quant" = none ] || name="$name, $quant"
  local out="$WORK/$layout-$workers-$quant" ref="$WORK/$layout-reference-$quant"
  [ -d "$ref" ] || "$BIN/mxport" export --source "$FIXTURES/layouts/$layout" \
    --hf-config "$FIXTURES/models/$model/hf" --output "$ref" --max-shard-size 100KiB \
    --quantization "$quant" >/dev/null
  if ! "$BIN/mxport" local-run --source "$FIXTURES/layouts/$layout" \
      --hf-config "$FIXTURES/models/$model/hf" --output "$out" --workers "$workers" \
      --max-shard-size 100KiB --job-id "j-$workers" --quantization "$quant" \
      > "$WORK/log" 2>&1; then
    echo "FAIL $name: $(tail -2 "$WORK/log")"; failures=$((failures + 1)); return
  fi
  for f in "$ref"/*; do
    if ! cmp -s "$f" "$out/$(basename "$f")"; then
      echo "FAIL $name: $(basename "$f") differs"; failures=$((failures + 1)); return
    fi
  done
  echo "ok   $name"; passes=$((passes + 1))
}
# Every fixture layout, with fewer workers than rank files (half, at least one) and twice as
# many (DP replicas split the files; at most 16 processes on this small machine).
models=$(ls "$FIXTURES/models")
for dir in "$FIXTURES"/layouts/*/; do
  layout=$(basename "$dir")
  model=""
  for m in $models; do  # the longest model name the layout name starts with
    case "$layout" in "$m"_*) [ ${#m} -gt ${#model} ] && model=$m ;; esac
  done
  files=$(find "$dir" -mindepth 2 -maxdepth 2 -type d -name 'mp_rank_*' | wc -l)
  fewer=$(( files / 2 > 0 ? files / 2 : 1 ))
  more=$(( files * 2 < 16 ? files * 2 : 16 ))
  check "$layout" "$model" "$fewer"
  check "$layout" "$model" "$more"
done
# Quantized: statistics all-gathered between worker processes, every file and sidecar
# (config.json with quantization_config, hf_quant_config.json, the index) equal to `mxport export`.
check qwen3_moe_tp2_pp2_ep4 qwen3_moe 5 nvfp4
check qwen3_moe_tp2_ep2_etp2 qwen3_moe 3 fp8_block
check mixtral_tp2_pp2_ep2 mixtral 12 nvfp4
check qwen3_moe_tp2_ep2_modelopt qwen3_moe 4 checkpoint  # scales from ModelOpt amax
check qwen3_moe_tp2_ep2_modelopt qwen3_moe 3 fp8  # weight amax computed, input amax read
check qwen2_moe_pp2_ep4_seq_modelopt qwen2_moe 6 checkpoint_fp8
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
