#!/usr/bin/env bash
# `mxport local-run` (a real coordinator and worker processes over TCP) on several fixture
# layouts with fewer and more workers than rank files; every file must equal the
# single-process export byte for byte. Usage: local_run_test.sh BIN_DIR FIXTURES_DIR
set -uo pipefail
BIN=$(cd "$1" && pwd)
FIXTURES=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passes=0
failures=0
check() {  # layout model workers
  local layout=$1 model=$2 workers=$3 name="$1 with $3 workers"
  local out="$WORK/$layout-$workers" ref="$WORK/$layout-reference"
  [ -d "$ref" ] || "$BIN/mxport" export --source "$FIXTURES/layouts/$layout" \
    --hf-config "$FIXTURES/models/$model/hf" --output "$ref" --max-shard-size 100KiB >/dev/null
  if ! "$BIN/mxport" local-run --source "$FIXTURES/layouts/$layout" \
      --hf-config "$FIXTURES/models/$model/hf" --output "$out" --workers "$workers" \
      --max-shard-size 100KiB --job-id "j-$workers" > "$WORK/log" 2>&1; then
    echo "FAIL $name: $(tail -2 "$WORK/log")"; failures=$((failures + 1)); return
  fi
  for f in "$ref"/*; do
    if ! cmp -s "$f" "$out/$(basename "$f")"; then
      echo "FAIL $name: $(basename "$f") differs"; failures=$((failures + 1)); return
    fi
  done
  echo "ok   $name"; passes=$((passes + 1))
}
check qwen3_moe_tp2_pp2_ep4 qwen3_moe 3       # 8 rank files, fewer workers
check qwen3_moe_tp2_pp2_ep4 qwen3_moe 16      # twice as many: DP replicas split the files
check qwen3_moe_tp4_ep2_etp1 qwen3_moe 2      # sparse rank-file set
check mixtral_pp2_vpp2_ep2 mixtral 4          # virtual pipeline
check qwen2_moe_tp2_ep2 qwen2_moe 5           # shared experts, QKV bias
check llama_tied_tp2_pp2 llama_tied 4         # dense, tied embeddings
echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
