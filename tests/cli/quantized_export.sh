#!/usr/bin/env bash
# `mxport export --quantization` on real fixture layouts, checked by tools/check_export.py
# --quantized (an independent Python reader that decodes E2M1/E4M3 by hand and bounds the
# dequantization error against the HF original): NVFP4 on a layout whose TP boundaries cut
# 16-element blocks (experts split 8+8 columns by ETP=2), NVFP4 with exclusions, block FP8,
# the ModelOpt-calibrated layouts in modes checkpoint (NVFP4 + input_scale), checkpoint_fp8
# (per tensor), and nvfp4 and fp8 (weight amax from the weights, input_scale from the activation
# amax: nvfp4 declared NVFP4 where the same layout without quantizer state is W4A16_NVFP4; fp8
# byte-identical to checkpoint_fp8, as the fixtures calibrate with the weights' true amax), then
# the modes that must fail with a clear message.
# Usage: quantized_export.sh MXPORT FIXTURES_DIR
set -uo pipefail
MXPORT=$1
FIXTURES=$2
CHECK=$(cd "$(dirname "$0")/../../tools" && pwd)/check_export.py
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
passes=0

export_and_check() {  # name, layout, model, mxport export flags...
  local name=$1 layout=$2 model=$3
  shift 3
  if ! "$MXPORT" export --source "$FIXTURES/layouts/$layout" \
      --hf-config "$FIXTURES/models/$model/hf" --output "$WORK/$name" --max-shard-size 100KB "$@" \
      >"$WORK/$name.log" 2>&1; then
    echo "FAIL $name: export failed"; cat "$WORK/$name.log"; failures=$((failures + 1)); return
  fi
  if ! /usr/bin/python3 "$CHECK" "$WORK/$name" "$FIXTURES/models/$model/hf/model.pt" \
      --quantized >"$WORK/$name.check" 2>&1; then
    echo "FAIL $name: check_export.py --quantized"; cat "$WORK/$name.check"; failures=$((failures + 1))
    return
  fi
  echo "ok   $name: $(tail -1 "$WORK/$name.check")"; passes=$((passes + 1))
}

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

export_and_check nvfp4_etp2 qwen3_moe_tp2_ep2_etp2 qwen3_moe --quantization nvfp4
export_and_check nvfp4_llama_tp4 llama_tp4 llama --quantization nvfp4
export_and_check nvfp4_exclude mixtral_ep4 mixtral --quantization nvfp4 \
  --quant-exclude '*.self_attn.*' '*.experts.0.*'
export_and_check fp8_block_tp2_pp2_ep4 qwen3_moe_tp2_pp2_ep4 qwen3_moe --quantization fp8_block

# The same model from another layout: byte-identical weights and configs.
"$MXPORT" export --source "$FIXTURES/layouts/qwen3_moe_tp1_pp1_ep1" \
  --hf-config "$FIXTURES/models/qwen3_moe/hf" --output "$WORK/nvfp4_tp1" --max-shard-size 100KB \
  --quantization nvfp4 >/dev/null
if diff -r "$WORK/nvfp4_etp2" "$WORK/nvfp4_tp1" >/dev/null; then
  echo "ok   nvfp4 tp1 and tp2_ep2_etp2 exports are identical"; passes=$((passes + 1))
else
  echo "FAIL nvfp4 exports of two layouts differ"; failures=$((failures + 1))
fi
export_and_check checkpoint_tp2 qwen3_moe_tp2_ep2_modelopt qwen3_moe --quantization checkpoint
export_and_check checkpoint_tp1 qwen3_moe_ep2_modelopt qwen3_moe --quantization checkpoint
export_and_check fp8_tp2 qwen3_moe_tp2_ep2_modelopt qwen3_moe --quantization fp8
export_and_check checkpoint_fp8_tp2 qwen3_moe_tp2_ep2_modelopt qwen3_moe \
  --quantization checkpoint_fp8
if diff -r "$WORK/fp8_tp2" "$WORK/checkpoint_fp8_tp2" >/dev/null; then
  echo "ok   fp8 (weight amax computed) equals checkpoint_fp8 (weight amax read)"
  passes=$((passes + 1))
else
  echo "FAIL fp8 and checkpoint_fp8 exports of a calibrated layout differ"
  failures=$((failures + 1))
fi
if diff -r "$WORK/checkpoint_tp2" "$WORK/checkpoint_tp1" >/dev/null; then
  echo "ok   checkpoint exports of TP=2 and TP=1 are identical"; passes=$((passes + 1))
else
  echo "FAIL checkpoint exports of TP=2 and TP=1 differ"; failures=$((failures + 1))
fi
export_and_check nvfp4_modelopt_tp2 qwen3_moe_tp2_ep2_modelopt qwen3_moe --quantization nvfp4
# The fixtures calibrate with the weights' true amax, so nvfp4 (weight amax computed) and
# checkpoint (weight amax read) agree byte for byte once nvfp4 reads the activation amax.
if diff -r "$WORK/checkpoint_tp2" "$WORK/nvfp4_modelopt_tp2" >/dev/null; then
  echo "ok   nvfp4 with activation amax equals the checkpoint export"; passes=$((passes + 1))
else
  echo "FAIL nvfp4 and checkpoint exports of a calibrated layout differ"
  failures=$((failures + 1))
fi
if grep -q '"quant_algo": "W4A16_NVFP4"' "$WORK/nvfp4_etp2/hf_quant_config.json" &&
    ! grep -q 'input_scale' "$WORK/nvfp4_etp2/model.safetensors.index.json"; then
  echo "ok   nvfp4 without quantizer state is W4A16_NVFP4"; passes=$((passes + 1))
else
  echo "FAIL nvfp4 without quantizer state is not weight-only"; failures=$((failures + 1))
fi
for pair in "checkpoint_tp1 NVFP4" "fp8_tp2 FP8" "checkpoint_fp8_tp2 FP8" \
    "nvfp4_modelopt_tp2 NVFP4"; do
  set -- $pair
  if grep -q "\"quant_algo\": \"$2\"" "$WORK/$1/hf_quant_config.json" &&
      grep -q '"kv_cache_quant_algo": null' "$WORK/$1/hf_quant_config.json" &&
      grep -q '"model.layers.0.mlp.experts.7.down_proj.input_scale"' \
        "$WORK/$1/model.safetensors.index.json"; then
    echo "ok   $1 declares $2 and the uncalibrated expert has its input_scale"
    passes=$((passes + 1))
  else
    echo "FAIL $1: hf_quant_config.json or the uncalibrated expert's tensors"
    failures=$((failures + 1))
  fi
done
if grep -q '"model.layers.0.self_attn.q_proj"' "$WORK/nvfp4_exclude/hf_quant_config.json"; then
  echo "ok   excluded attention is listed in exclude_modules"; passes=$((passes + 1))
else
  echo "FAIL exclude_modules lacks the excluded attention"; failures=$((failures + 1))
fi

LAYOUT="--source $FIXTURES/layouts/qwen3_moe_ep2 --hf-config $FIXTURES/models/qwen3_moe/hf"
expect_failure "fp8 needs activation amax, naming a module" \
  "and the checkpoint has none for model.layers.0." \
  "$MXPORT" export $LAYOUT --output "$WORK/fp8" --quantization fp8
expect_failure "fp8 without activation amax suggests fp8_block" \
  "use 'fp8_block' (dynamic activations, no calibration) or 'nvfp4'" \
  "$MXPORT" export $LAYOUT --output "$WORK/fp8" --quantization fp8
expect_failure "checkpoint_fp8 needs calibration" "has no quantizer amax" \
  "$MXPORT" export $LAYOUT --output "$WORK/ckpt_fp8" --quantization checkpoint_fp8
expect_failure "checkpoint mode needs quantizer state" "re-exports a ModelOpt calibration" \
  "$MXPORT" export $LAYOUT --output "$WORK/ckpt" --quantization checkpoint
expect_failure "unknown mode lists the modes" \
  "accepted: none, nvfp4, fp8, fp8_block, checkpoint, checkpoint_fp8" \
  "$MXPORT" export $LAYOUT --output "$WORK/int4" --quantization int4
expect_failure "an exclusion matching nothing" "'*.no_such_module'" \
  "$MXPORT" export $LAYOUT --output "$WORK/typo" --quantization nvfp4 \
  --quant-exclude '*.no_such_module'
for failed in fp8 ckpt_fp8; do
  if [ -e "$WORK/$failed/model.safetensors.index.json" ]; then
    echo "FAIL $failed wrote an export"; failures=$((failures + 1))
  fi
done

echo "$passes passed, $failures failed"
[ "$failures" -eq 0 ]
