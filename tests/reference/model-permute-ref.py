#!/usr/bin/env python3
"""Reference check of the q/k row permutation between a Hugging Face folder and a GGUF file.

Usage: model-permute-ref.py HF_FOLDER MODEL.gguf

Reads both files with independent readers (numpy + struct, no Hearth code) and checks that every GGUF
weight equals the Hugging Face weight, except that for `llama` the q/k projections must equal
llama.cpp's converter permutation (convert_hf_to_gguf.py, LlamaModel.permute):
    w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)
with n_head = num_key_value_heads for k. The Hugging Face weights must be F32; the GGUF ones F32 or F16
(compared after an exact F16 -> F32 widening). Exit 0 when all match.
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(folder):
    path = folder + "/model.safetensors"
    raw = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: expected F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype="<f4").reshape(info["shape"])
    return out


def read_gguf(path):
    raw = open(path, "rb").read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, raw, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def rstr():
        nonlocal pos
        n = rd("Q")
        s = raw[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            et = rd("I")
            return [rval(et) for _ in range(rd("Q"))]
        return rd(scalar[t])

    assert raw[:4] == b"GGUF"
    pos = 4
    rd("I")
    n_tensors, n_kv = rd("Q"), rd("Q")
    kv = {}
    for _ in range(n_kv):
        k = rstr()
        kv[k] = rval(rd("I"))
    infos = []
    for _ in range(n_tensors):
        name = rstr()
        dims = [rd("Q") for _ in range(rd("I"))]
        typ, off = rd("I"), rd("Q")
        infos.append((name, dims, typ, off))
    align = kv.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        if typ not in (0, 1):
            raise SystemExit(f"{name}: type {typ}, expected F32 (0) or F16 (1)")
        count = int(np.prod(dims))
        size = 4 if typ == 0 else 2
        arr = np.frombuffer(raw[data + off:data + off + size * count], dtype="<f4" if typ == 0 else "<f2")
        arr = arr.astype(np.float32)
        tensors[name] = arr.reshape(list(reversed(dims)))  # GGUF ne[0] is the fastest dimension
    return kv, tensors


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}
LAYER = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
         "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
         "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_proj.bias": "attn_q.bias",
         "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
         "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
         "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
         "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}


def main():
    folder, gguf_path = sys.argv[1], sys.argv[2]
    cfg = json.load(open(folder + "/config.json"))
    hf = read_safetensors(folder)
    kv, gg = read_gguf(gguf_path)
    arch = kv["general.architecture"]
    n_head, n_head_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    checked = permuted = 0
    for name, w in hf.items():
        if name in GLOBAL:
            gname = GLOBAL[name]
        else:
            parts = name.split(".")
            assert parts[0] == "model" and parts[1] == "layers", name
            gname = f"blk.{parts[2]}." + LAYER[".".join(parts[3:])]
        expect = w
        if arch == "llama" and (".q_proj." in name or ".k_proj." in name):
            expect = permute(w, n_head if ".q_proj." in name else n_head_kv)
            permuted += 1
        got = gg[gname]
        if got.shape != expect.shape or not np.array_equal(got, expect):
            print(f"MISMATCH {name} -> {gname}: shapes {expect.shape} vs {got.shape}, "
                  f"max diff {np.abs(got - expect).max() if got.shape == expect.shape else 'n/a'}")
            return 1
        checked += 1
    print(f"{arch}: {checked} tensors equal, {permuted} of them after llama.cpp's q/k permutation")
    return 0 if checked == len(gg) - ("rope_freqs.weight" in gg) else 1


if __name__ == "__main__":
    sys.exit(main())
