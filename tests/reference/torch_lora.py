#!/usr/bin/python3
"""Reference logits of a base model with a LoRA adapter, for Hearth's LoRA tests.

Usage:
  torch_lora.py --tokens "1 5 9 ..." --out DIR MODEL ADAPTER [MODEL ADAPTER ...]

MODEL is a .gguf file or a Hugging Face folder (read by torch_llama.py). ADAPTER is a PEFT folder
(adapter_config.json + adapter_model.safetensors) or a llama.cpp GGUF adapter (.gguf). For pair number i
it writes DIR/i.logits (float64 little-endian, one row of n_vocab logits per token).

Written from the formats' definitions, independently of Hearth's C++ code:
- PEFT: W' = W + (lora_alpha / r) * B @ A for every `...<module>.lora_A.weight` / `.lora_B.weight`
  (`use_rslora`: lora_alpha / sqrt(r)), names after "base_model.model.".
- llama.cpp: the delta B @ A is formed from the file's lora_b / lora_a as stored (ne {rank, n_out} and
  {n_in, rank}) and added to the GGUF weight *as stored*, scale adapter.lora.alpha / rank (1 when alpha
  is 0 or absent). For a llama model the stored q/k rows are interleaved, so the delta's rows are
  un-permuted exactly like the weight's (torch_llama.load_gguf) before it meets a Hugging Face layout.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama  # noqa: E402

HF_KEYS = {"self_attn.q_proj": "wq", "self_attn.k_proj": "wk", "self_attn.v_proj": "wv",
           "self_attn.o_proj": "wo", "mlp.gate_proj": "gate", "mlp.up_proj": "up", "mlp.down_proj": "down"}
GGUF_KEYS = {"attn_q": "wq", "attn_k": "wk", "attn_v": "wv", "attn_output": "wo", "ffn_gate": "gate",
             "ffn_up": "up", "ffn_down": "down"}


def peft_deltas(folder):
    cfg = json.load(open(os.path.join(folder, "adapter_config.json")))
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scale = alpha / (r ** 0.5 if cfg.get("use_rslora") else r)
    t = torch_llama.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    out = {}
    for name, a in t.items():
        if ".lora_A." not in name:
            continue
        b = t[name.replace(".lora_A.", ".lora_B.")]
        stem = name.replace("base_model.model.", "").split(".lora_A.")[0]  # model.layers.N.<module>
        parts = stem.split(".")
        layer, module = int(parts[2]), ".".join(parts[3:])
        out[(layer, HF_KEYS[module])] = scale * (b.to(torch.float64) @ a.to(torch.float64))
    return out


def gguf_deltas(path, p):
    kv, t = torch_llama.gguf_tensors(path)
    assert kv["general.type"] == "adapter" and kv["adapter.type"] == "lora"
    alpha = kv.get("adapter.lora.alpha", 0.0)
    hd = p["head_dim"]
    out = {}
    for name, a in t.items():
        if not name.endswith(".lora_a"):
            continue
        b = t[name[:-1] + "b"]
        rank = a.shape[0]
        scale = alpha / rank if alpha else 1.0
        delta = scale * (b @ a)  # rows in the stored order of the base GGUF weight
        _, layer, role = name.split(".")[:3]
        key = GGUF_KEYS[role]
        if kv["general.architecture"] == "llama" and key in ("wq", "wk"):
            heads = p["n_head"] if key == "wq" else p["n_head_kv"]
            shp = delta.shape
            delta = delta.reshape(heads, hd // 2, 2, -1).transpose(1, 2).reshape(shp)
        out[(int(layer), key)] = delta
    return out


def main():
    args = sys.argv[1:]
    tokens, out, pairs = None, None, []
    i = 0
    while i < len(args):
        if args[i] == "--tokens":
            tokens = [int(s) for s in args[i + 1].split()]
            i += 2
        elif args[i] == "--out":
            out = args[i + 1]
            i += 2
        else:
            pairs.append(args[i])
            i += 1
    if not tokens or not out or not pairs or len(pairs) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    for n in range(len(pairs) // 2):
        model, adapter = pairs[2 * n], pairs[2 * n + 1]
        p, W = torch_llama.load_gguf(model) if model.endswith(".gguf") else torch_llama.load_hf(model)
        deltas = gguf_deltas(adapter, p) if adapter.endswith(".gguf") else peft_deltas(adapter)
        for (layer, key), d in deltas.items():
            w = W["layers"][layer][key].to(torch.float64)
            assert w.shape == d.shape, (layer, key, w.shape, d.shape)
            W["layers"][layer][key] = w + d
        logits = torch_llama.forward(p, W, tokens)
        logits.numpy().astype("<f8").tofile(os.path.join(out, f"{n}.logits"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
