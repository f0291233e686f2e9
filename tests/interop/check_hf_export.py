#!/usr/bin/env python3
"""Exports every layout of the Megatron fixtures with `mxport export` and checks the result with
independent readers: Python safetensors (every tensor bit-equal to the HF original model.pt)
and transformers (the exported directory loads and reproduces the original model's logits,
committed in tests/fixtures/megatron/<model>/logits.pt, within 1e-3 in bf16). One layout per
model is also exported without --hf-config, so the generated config.json is loaded too.
Run where transformers, safetensors and a GPU are (the device machine):
    python3 tests/interop/check_hf_export.py --mxport BIN --fixtures DIR --out DIR"""
import argparse
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED = os.path.join(HERE, "..", "fixtures", "megatron")


def export(mxport, fixtures, layout, out, with_config):
    cmd = [mxport, "export", "--source", os.path.join(fixtures, layout["dir"]),
           "--output", out, "--max-shard-size", "200KB", "--overwrite"]
    if with_config:
        cmd += ["--hf-config", os.path.join(fixtures, layout["expected"])]
    else:
        cmd += ["--arch", layout["arch"]]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def check_tensors(out, original):
    index = json.load(open(os.path.join(out, "model.safetensors.index.json")))
    got = {}
    for f in sorted(set(index["weight_map"].values())):
        got.update(load_file(os.path.join(out, f)))
    if set(got) != set(original):
        return f"key sets differ: {sorted(set(got) ^ set(original))[:5]}"
    for name, want in original.items():
        g = got[name]
        if g.dtype != want.dtype or g.shape != want.shape or not torch.equal(
                g.view(torch.uint8) if g.dim() else g, want.view(torch.uint8) if want.dim() else want):
            return f"{name} differs"
    return None


def check_logits(out, model_name):
    from transformers import AutoModelForCausalLM
    ref = torch.load(os.path.join(COMMITTED, model_name, "logits.pt"), weights_only=False)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16,
                                                 attn_implementation="eager").cuda().eval()
    with torch.no_grad():
        logits = model(ref["input_ids"].cuda()).logits.float().cpu()
    diff = (logits - ref["logits_bf16_cuda"].float()).abs().max().item()
    return diff


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mxport", required=True)
    p.add_argument("--fixtures", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    catalog = json.load(open(os.path.join(args.fixtures, "catalog.json")))
    originals = {}
    passed = failed = 0
    seen_models = set()
    for layout in catalog:
        name, model = layout["name"], layout["model"]
        if model not in originals:
            originals[model] = torch.load(os.path.join(args.fixtures, layout["expected"], "model.pt"),
                                         weights_only=True)
        variants = [True] + ([False] if model not in seen_models else [])
        seen_models.add(model)
        for with_config in variants:
            out = os.path.join(args.out, name + ("" if with_config else "_generated_config"))
            problem = None
            diff = float("nan")
            try:
                export(args.mxport, args.fixtures, layout, out, with_config)
                problem = check_tensors(out, originals[model])
                if problem is None:
                    diff = check_logits(out, model)
                    if not diff <= 1e-3:
                        problem = f"logits differ by {diff}"
            except subprocess.CalledProcessError as e:
                problem = f"mxport failed: {e.stderr.strip()[-400:]}"
            except Exception as e:  # noqa: BLE001 - report every failure, keep going
                problem = f"{type(e).__name__}: {e}"
            tag = name + ("" if with_config else " (generated config.json)")
            if problem is None:
                passed += 1
                print(f"ok   {tag:50s} max |logit diff| {diff:.2e}")
            else:
                failed += 1
                print(f"FAIL {tag:50s} {problem}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
