#!/usr/bin/env python3
"""Reads a file written by mxport's safetensors Writer (write_dtype_sample) with the Python
safetensors package and checks every tensor's dtype and bytes against the writer's record.
Run where safetensors and PyTorch >= 2.3 are installed (the GPU machine):
    python3 tests/interop/check_safetensors_interop.py FILE.safetensors"""
import json
import sys

import torch
from safetensors import safe_open


def main(path):
    expected = json.load(open(path + ".expected.json"))
    failures = 0
    with safe_open(path, framework="pt") as f:
        names = set(f.keys())
        assert names == set(expected), f"key sets differ: {names ^ set(expected)}"
        assert f.metadata() == {"format": "pt"}, f.metadata()
        for name, want in expected.items():
            t = f.get_tensor(name)
            got_dtype = str(t.dtype).replace("torch.", "")
            raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()
            ok = got_dtype == want["dtype"] and raw == want["hex"]
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:20s} {got_dtype:18s} {tuple(t.shape)}")
    print(f"{len(expected) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
