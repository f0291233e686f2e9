#!/usr/bin/env bash
# The main job on the bundled sample: a tiny Qwen3-MoE checkpoint that real PyTorch shards at
# TP=2, PP=2, EP=4 (DP=2 in its training world), exported by a real coordinator and 10 worker
# processes (more workers than the 8 rank files, so DP replicas split the work), then checked
# by an independent reader against the original Hugging Face tensors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target mxport mxport-coordinator mxport-worker -j "$(nproc)"

SAMPLE=build/sample
LAYOUT=qwen3_moe_tp2_pp2_ep4
/usr/bin/python3 tests/fixtures/make_megatron_fixtures.py --out "$SAMPLE" --only "$LAYOUT" >/dev/null
echo "== the checkpoint"
./build/bin/mxport plan --source "$SAMPLE/layouts/$LAYOUT" --hf-config "$SAMPLE/models/qwen3_moe/hf" \
  --max-shard-size 200KB
echo "== export: coordinator + 10 workers"
rm -rf "$SAMPLE/export"
./build/bin/mxport local-run --source "$SAMPLE/layouts/$LAYOUT" \
  --hf-config "$SAMPLE/models/qwen3_moe/hf" --output "$SAMPLE/export" --workers 10 \
  --max-shard-size 200KB
echo "== independent check"
/usr/bin/python3 tools/check_export.py "$SAMPLE/export" "$SAMPLE/models/qwen3_moe/hf/model.pt"
ls -l "$SAMPLE/export"
