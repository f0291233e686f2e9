#!/usr/bin/env python3
"""Checks an exported Hugging Face directory with readers independent of mxport: the
safetensors files are parsed here with json + struct (no mxport code, no safetensors package)
and every tensor is compared byte for byte with the original HF state dict (a torch.save'd
model.pt, loaded by PyTorch). Also checks the index against the files and that config.json
parses. Usage: check_export.py EXPORT_DIR ORIGINAL_MODEL_PT"""
import json
import os
import struct
import sys

import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def raw_bytes(t):
    t = t.contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def main(out_dir, model_pt):
    original = torch.load(model_pt, weights_only=True)
    index = json.load(open(os.path.join(out_dir, "model.safetensors.index.json")))
    json.load(open(os.path.join(out_dir, "config.json")))
    tensors = {}
    for f in sorted(set(index["weight_map"].values())):
        for name, value in read_safetensors(os.path.join(out_dir, f)).items():
            assert index["weight_map"][name] == f, f"{name} is in {f}, index says otherwise"
            tensors[name] = value
    failures = 0
    if set(tensors) != set(original):
        print("key sets differ:", sorted(set(tensors) ^ set(original))[:10])
        failures += 1
    total = 0
    for name, t in original.items():
        if name not in tensors:
            continue
        dtype, shape, data = tensors[name]
        ok = list(t.shape) == shape and data == raw_bytes(t)
        total += len(data)
        if not ok:
            print("differs:", name)
            failures += 1
    assert index["metadata"]["total_size"] == total, "index total_size is wrong"
    print(f"{len(original) - failures} passed, {failures} failed "
          f"({len(tensors)} tensors, {total} bytes checked against {model_pt})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
