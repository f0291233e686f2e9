#!/usr/bin/env bash
# `mxport plan` on damaged copies of a real fixture layout must exit non-zero and name exactly
# what is missing or duplicated: a removed rank directory, a removed expert key (the rank file
# re-saved by real PyTorch without it), and an expert map giving two EP ranks the same expert.
# Usage: plan_errors.sh MXPORT FIXTURES_DIR
set -uo pipefail
MXPORT=$1
FIXTURES=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
passes=0

expect_failure() {  # name, expected substring, command...
  local name=$1 want=$2
  shift 2
  local out
  if out=$("$@" 2>&1); then
    echo "FAIL $name: exited 0"; failures=$((failures + 1)); return
  fi
  if [[ "$out" != *"$want"* ]]; then
    echo "FAIL $name: message lacks '$want':"; echo "$out" | head -5; failures=$((failures + 1))
    return
  fi
  echo "ok   $name"; passes=$((passes + 1))
}

LAYOUT=qwen3_moe_tp2_pp2_ep4_seq
HF=$FIXTURES/models/qwen3_moe/hf
cp -r "$FIXTURES/layouts/$LAYOUT" "$WORK/good"
if ! "$MXPORT" plan --source "$WORK/good" --hf-config "$HF" >/dev/null; then
  echo "FAIL the undamaged layout does not plan"; exit 1
fi

cp -r "$WORK/good" "$WORK/no_rank_dir"
rm -rf "$WORK/no_rank_dir/iter_0000100/mp_rank_01_001_002"
expect_failure "removed rank directory" "mp_rank_01_001_002" \
  "$MXPORT" plan --source "$WORK/no_rank_dir" --hf-config "$HF"

cp -r "$WORK/good" "$WORK/no_expert_key"
FIXTURE_SCRIPTS=$(cd "$(dirname "$0")/../fixtures" && pwd)
/usr/bin/python3 - "$WORK/no_expert_key/iter_0000100/mp_rank_00_001_002/model_optim_rng.pt" \
  "$FIXTURE_SCRIPTS" <<'PY'
import sys, torch
path = sys.argv[1]
sys.path.insert(0, sys.argv[2])
import make_torch_fixtures  # registers the stand-in Megatron enum module the args refer to
state = torch.load(path, weights_only=False)
del state["model"]["decoder.layers.1.mlp.experts.local_experts.1.linear_fc2.weight"]
torch.save(state, path)
PY
# pp1 starts at global layer 3; ep2 owns experts 4 and 5.
expect_failure "removed expert key" \
  "model.layers.4.mlp.experts.5.down_proj.weight: missing" \
  "$MXPORT" plan --source "$WORK/no_expert_key" --hf-config "$HF"
expect_failure "removed expert key names the Megatron key" \
  "decoder.layers.1.mlp.experts.local_experts.1.linear_fc2.weight" \
  "$MXPORT" plan --source "$WORK/no_expert_key" --hf-config "$HF"

echo '[[0,1],[2,3],[4,5],[5,6]]' > "$WORK/dup_map.json"
expect_failure "two EP ranks given the same expert" \
  "global expert 5 is claimed by EP rank 2 (local 1) and EP rank 3 (local 0)" \
  "$MXPORT" plan --source "$WORK/good" --hf-config "$HF" --expert-map "$WORK/dup_map.json"

sed 's/"hidden_size": 64/"hidden_size": 96/' "$HF/config.json" > "$WORK/config.json"
expect_failure "HF config contradicting the args" "hidden_size is 96 but the checkpoint args give 64" \
  "$MXPORT" plan --source "$WORK/good" --hf-config "$WORK"

expect_failure "no checkpoint" "not a Megatron checkpoint" "$MXPORT" plan --source "$WORK" --arch qwen3_moe

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
