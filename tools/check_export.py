#!/usr/bin/env python3
"""Checks an exported Hugging Face directory with readers independent of mxport: the
safetensors files are parsed here with json + struct (no mxport code, no safetensors package)
and every tensor is compared byte for byte with the original HF state dict (a torch.save'd
model.pt, loaded by PyTorch). Also checks the index against the files and that config.json
parses.

With --quantized, quantized modules are dequantized here (E2M1 and E4M3 decoded by hand with
numpy: PyTorch 1.13 has no float8 dtype) and checked against the original instead:
  - NVFP4 (weight U8 [out,in/2], weight_scale F8_E4M3 [out,in/16], weight_scale_2 F32 []):
    weight_scale_2 == amax/2688 with the amax maxed over fused siblings (q/k/v, gate/up, w1/w3),
    every block scale within e4m3 rounding of block_amax/(6*weight_scale_2), and every element
    within half an E2M1 step (or the saturation above 6) times its block's scale;
  - block FP8 (weight F8_E4M3 [out,in], weight_scale_inv F32 [ceil(out/128),ceil(in/128)]):
    scale_inv == tile_amax/448 (1 for an all-zero tile), |w - dq| <= |w|/16 + scale_inv/1024;
  - FP8 per tensor (weight F8_E4M3 [out,in], weight_scale F32 [], input_scale F32 [1]):
    weight_scale == amax/448 with the amax maxed over fused siblings (mode fp8 computes it; the
    ModelOpt fixtures calibrate with the true amax, so checkpoint_fp8 reads the same),
    |w - dq| <= |w|/16 + weight_scale/1024;
  - input_scale (NVFP4 F32 [], FP8 F32 [1]; from the checkpoint's activation amax, so only its
    form is checked here): finite and positive, equal across fused siblings; each module's
    declared quant_algo (uniform, or MIXED_PRECISION quantized_layers) matches its tensors:
    NVFP4 / FP8 with input_scale, W4A16_NVFP4 without;
  - unquantized tensors still equal the original bit for bit, every quantized module has its
    complete tensor set, and hf_quant_config.json's exclude_modules / config.json's
    quantization_config list exactly the linear modules without quantized tensors.
Usage: check_export.py EXPORT_DIR ORIGINAL_MODEL_PT [--quantized]"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def e4m3_table():
    out = np.zeros(256, np.float32)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        e, m = (code >> 3) & 0xF, code & 0x7
        if e == 0xF and m == 0x7:
            out[code] = np.nan
        elif e == 0:
            out[code] = sign * m * 2.0 ** -9
        else:
            out[code] = sign * 2.0 ** (e - 7) * (1 + m / 8)
    return out


E4M3 = e4m3_table()
FUSED = [(".q_proj.", ".k_proj.", ".v_proj."), (".gate_proj.", ".up_proj."), (".w1.", ".w3.")]


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


def as_f32(t):
    return t.float().numpy().astype(np.float32)


def fused_amax(original, name):
    names = [name]
    for family in FUSED:
        for member in family:
            if member in name:
                names = [name.replace(member, other) for other in family]
    return max(float(np.abs(as_f32(original[n])).max()) for n in names)


class Stats:
    def __init__(self):
        self.nvfp4 = self.fp8_block = self.fp8 = self.copied = 0
        self.max_err = 0.0
        self.max_bound_use = 0.0


def check_nvfp4(name, w, tensors, original, st):
    module = name[:-len(".weight")]
    out, k = w.shape
    problems = []
    dtype, shape, packed = tensors[name]
    sdtype, sshape, scales = tensors[module + ".weight_scale"]
    gdtype, gshape, s2b = tensors[module + ".weight_scale_2"]
    if (dtype, shape, sdtype, sshape, gdtype, gshape) != (
            "U8", [out, k // 2], "F8_E4M3", [out, k // 16], "F32", []):
        got = (dtype, shape, sdtype, sshape, gdtype, gshape)
        return ["%s: NVFP4 dtypes/shapes %s" % (module, got)]
    s2 = np.frombuffer(s2b, "<f4")[0]
    want = np.float32(fused_amax(original, name)) / np.float32(2688)
    if s2 != want:
        problems.append("%s: weight_scale_2 %r, amax/2688 gives %r" % (module, s2, want))
    p = np.frombuffer(packed, np.uint8).reshape(out, k // 2)
    codes = np.empty((out, k), np.uint8)
    codes[:, 0::2] = p & 0xF  # the even element is in the low nibble
    codes[:, 1::2] = p >> 4
    sc = E4M3[np.frombuffer(scales, np.uint8)].reshape(out, k // 16)
    d = (sc * s2).astype(np.float32)  # per-block divisor, f32
    dq = (E2M1[codes].reshape(out, k // 16, 16) * d[:, :, None]).astype(np.float32)
    x = as_f32(w).reshape(out, k // 16, 16)
    bamax = np.abs(x).max(axis=2)
    target = bamax.astype(np.float64) / (6.0 * float(s2))
    zero = bamax == 0
    if np.any(sc[zero] != 1.0):
        problems.append("%s: an all-zero block has a scale other than 1" % module)
    # e4m3 rounding: 2^-4 relative; 2^-9 absolute (the subnormal step and the lower clamp).
    bad = ~zero & (np.abs(sc - target) > target / 16 + 2.0 ** -9)
    if np.any(bad):
        problems.append("%s: %d block scales are not e4m3(block_amax/(6*s2))" % (module, bad.sum()))
    v = np.abs(x) / d[:, :, None].astype(np.float64)
    step = np.where(v < 2, 0.25, np.where(v < 4, 0.5, np.where(v <= 6, 1.0, v - 6)))
    bound = (step + 1e-6) * d[:, :, None]
    err = np.abs(x.astype(np.float64) - dq)
    if np.any(v > 6 / (1 - 1 / 16) + 1e-6) or np.any(err > bound):
        problems.append("%s: %d elements beyond the E2M1 bound" % (module, (err > bound).sum()))
    st.max_err = max(st.max_err, float(err.max()))
    st.max_bound_use = max(st.max_bound_use, float((err / np.maximum(bound, 1e-300)).max()))
    st.nvfp4 += 1
    return problems


def check_fp8_block(name, w, tensors, original, st):
    module = name[:-len(".weight")]
    out, k = w.shape
    tr, tc = (out + 127) // 128, (k + 127) // 128
    dtype, shape, q = tensors[name]
    idtype, ishape, inv = tensors[module + ".weight_scale_inv"]
    if (dtype, shape, idtype, ishape) != ("F8_E4M3", [out, k], "F32", [tr, tc]):
        return ["%s: block FP8 dtypes/shapes %s" % (module, (dtype, shape, idtype, ishape))]
    problems = []
    grid = np.frombuffer(inv, "<f4").reshape(tr, tc)
    x = as_f32(w)
    amax = np.zeros((tr, tc), np.float32)
    for i in range(tr):
        for j in range(tc):
            amax[i, j] = np.abs(x[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]).max()
    want = np.where(amax == 0, np.float32(1), amax / np.float32(448)).astype(np.float32)
    if np.any(grid != want):
        problems.append("%s: weight_scale_inv is not tile_amax/448" % module)
    s = np.repeat(np.repeat(grid, 128, 0), 128, 1)[:out, :k]
    dq = (E4M3[np.frombuffer(q, np.uint8)].reshape(out, k) * s).astype(np.float32)
    err = np.abs(x.astype(np.float64) - dq)
    bound = (np.abs(x) / 16 + s / 1024) * (1 + 1e-6)
    if np.any(err > bound):
        problems.append("%s: %d elements beyond the E4M3 bound" % (module, (err > bound).sum()))
    st.max_err = max(st.max_err, float(err.max()))
    st.max_bound_use = max(st.max_bound_use, float((err / bound).max()))
    st.fp8_block += 1
    return problems


def check_input_scale(name, tensors, nvfp4):
    module = name[:-len(".weight")]
    if module + ".input_scale" not in tensors:
        return []
    dtype, shape, data = tensors[module + ".input_scale"]
    if (dtype, shape) != ("F32", [] if nvfp4 else [1]):
        return ["%s: input_scale is %s %s" % (module, dtype, shape)]
    v = np.frombuffer(data, "<f4")[0]
    if not np.isfinite(v) or v <= 0:
        return ["%s: input_scale %r" % (module, v)]
    for family in FUSED:
        for member in family:
            if member in module + ".":
                for other in family:
                    sib = (module + ".").replace(member, other) + "input_scale"
                    if sib in tensors and tensors[sib][2] != data:
                        return ["%s: input_scale differs from %s" % (module, sib)]
    return []


def check_fp8(name, w, tensors, original, st):
    module = name[:-len(".weight")]
    dtype, shape, data = tensors[name]
    sdtype, sshape, sb = tensors[module + ".weight_scale"]
    if (dtype, shape, sdtype, sshape) != ("F8_E4M3", list(w.shape), "F32", []):
        return ["%s: FP8 dtypes/shapes %s" % (module, (dtype, shape, sdtype, sshape))]
    s = np.frombuffer(sb, "<f4")[0]
    want = np.float32(fused_amax(original, name)) / np.float32(448)
    problems = [] if s == want else ["%s: weight_scale %r, amax/448 gives %r" % (module, s, want)]
    x = as_f32(w).astype(np.float64)
    dq = E4M3[np.frombuffer(data, np.uint8)].reshape(w.shape).astype(np.float64) * float(s)
    err = np.abs(x - dq)
    bound = (np.abs(x) / 16 + float(s) / 1024) * (1 + 1e-6)
    if np.any(err > bound):
        problems.append("%s: %d elements beyond the E4M3 bound" % (module, (err > bound).sum()))
    st.max_err = max(st.max_err, float(err.max()))
    st.max_bound_use = max(st.max_bound_use, float((err / bound).max()))
    st.fp8 += 1
    return problems


def written_algo(module, tensors):
    """The ModelOpt quant_algo a module's tensors make: input_scale means static activations."""
    has_input = module + ".input_scale" in tensors
    if module + ".weight_scale_2" in tensors:
        return "NVFP4" if has_input else "W4A16_NVFP4"
    return "FP8" if has_input else "FP8 without input_scale"


def check_declared_algos(hf, qc, tensors, quantized):
    """quant_algo (uniform) or quantized_layers (MIXED_PRECISION) names what each module holds."""
    written = {m: written_algo(m, tensors) for m in quantized}
    algo = hf.get("quant_algo")
    if algo == "MIXED_PRECISION":
        layers = hf.get("quantized_layers", {})
        declared = {m: c.get("quant_algo") for m, c in layers.items()}
        if qc.get("quantized_layers") != layers:
            return ["config.json quantized_layers differ from hf_quant_config.json"]
    else:
        declared = {m: algo for m in quantized}
        group = qc.get("config_groups", {}).get("group_0", {})
        if ("input_activations" in group) != (algo in ("NVFP4", "FP8")):
            return ["config.json input_activations disagree with quant_algo %r" % algo]
    wrong = sorted(m for m in set(written) | set(declared) if written.get(m) != declared.get(m))
    return ["%s: declared %r, its tensors are %r" % (m, declared.get(m), written.get(m))
            for m in wrong[:10]]


def check_quant_configs(out_dir, tensors):
    """exclude_modules / ignore / modules_to_not_convert == linear modules without scales."""
    linear, quantized = set(), set()
    for name, (_, shape, _) in tensors.items():
        if name.endswith(".weight") and len(shape) == 2 and "norm" not in name:
            linear.add(name[:-len(".weight")])
        for suffix in (".weight_scale_2", ".weight_scale_inv", ".weight_scale"):
            if name.endswith(suffix):
                quantized.add(name[:-len(suffix)])
    excluded = sorted(linear - quantized)
    config = json.load(open(os.path.join(out_dir, "config.json")))
    qc = config.get("quantization_config")
    if qc is None:
        return ["config.json has no quantization_config"]
    problems = []
    hf_path = os.path.join(out_dir, "hf_quant_config.json")
    if qc.get("quant_method") == "modelopt":
        hf = json.load(open(hf_path))["quantization"]
        if hf.get("exclude_modules") != excluded:
            problems.append("hf_quant_config.json exclude_modules differ from the "
                            "unquantized linears")
        if qc.get("ignore") != excluded or qc.get("quant_algo") != hf.get("quant_algo"):
            problems.append("config.json quantization_config disagrees with hf_quant_config.json")
        problems += check_declared_algos(hf, qc, tensors, quantized)
    elif qc.get("quant_method") == "fp8":
        if (qc.get("modules_to_not_convert") != excluded
                or qc.get("weight_block_size") != [128, 128]):
            problems.append("config.json block-FP8 quantization_config is wrong")
        if os.path.exists(hf_path):
            problems.append("hf_quant_config.json written for block FP8")
    else:
        problems.append("unknown quant_method %r" % qc.get("quant_method"))
    return problems


def main(out_dir, model_pt, quantized):
    original = torch.load(model_pt, weights_only=True)
    index = json.load(open(os.path.join(out_dir, "model.safetensors.index.json")))
    json.load(open(os.path.join(out_dir, "config.json")))
    tensors = {}
    for f in sorted(set(index["weight_map"].values())):
        for name, value in read_safetensors(os.path.join(out_dir, f)).items():
            assert index["weight_map"][name] == f, f"{name} is in {f}, index says otherwise"
            tensors[name] = value
    assert set(index["weight_map"]) == set(tensors), "index and files list different tensors"
    failures = 0
    st = Stats()
    scale_names = set()
    if quantized:
        for name, (dtype, _, _) in tensors.items():
            for suffix, needs in ((".weight_scale_2", (".weight_scale",)),
                                  (".weight_scale_inv", ()), (".weight_scale", ()),
                                  (".input_scale", ())):
                if name.endswith(suffix):
                    module = name[:-len(suffix)]
                    scale_names.update(module + s for s in (suffix,) + needs)
    if set(tensors) - scale_names != set(original):
        print("key sets differ:", sorted((set(tensors) - scale_names) ^ set(original))[:10])
        failures += 1
    total = sum(len(data) for _, _, data in tensors.values())
    for name, t in original.items():
        if name not in tensors:
            continue
        module = name[:-len(".weight")]
        if quantized and module + ".weight_scale_2" in tensors:
            problems = check_nvfp4(name, t, tensors, original, st)
        elif quantized and module + ".weight_scale_inv" in tensors:
            problems = check_fp8_block(name, t, tensors, original, st)
        elif quantized and module + ".weight_scale" in tensors:
            problems = check_fp8(name, t, tensors, original, st)
        else:
            dtype, shape, data = tensors[name]
            same = list(t.shape) == shape and data == raw_bytes(t)
            problems = [] if same else ["differs: " + name]
            st.copied += 1
        if quantized:
            problems += check_input_scale(name, tensors, module + ".weight_scale_2" in tensors)
        for p in problems:
            print(p)
        failures += bool(problems)
    if quantized:
        for p in check_quant_configs(out_dir, tensors):
            print(p)
            failures += 1
    assert index["metadata"]["total_size"] == total, "index total_size is wrong"
    print(f"{len(original) - failures} passed, {failures} failed "
          f"({len(tensors)} tensors, {total} bytes checked against {model_pt})")
    if quantized:
        print(f"quantized: {st.nvfp4} NVFP4, {st.fp8} FP8 and {st.fp8_block} block-FP8 "
              f"weights dequantized, "
              f"{st.copied} tensors bit-exact; max |w - dq| {st.max_err:.3g}, "
              f"max error / bound {st.max_bound_use:.3f}")
        if st.nvfp4 + st.fp8 + st.fp8_block == 0:
            print("--quantized, but no quantized weight was found")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("model_pt")
    parser.add_argument("--quantized", action="store_true",
                        help="dequantize NVFP4 / FP8 / block-FP8 weights and check error bounds")
    args = parser.parse_args()
    sys.exit(main(args.export_dir, args.model_pt, args.quantized))
