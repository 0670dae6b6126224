#!/usr/bin/python3
"""Reference forward pass of llama, qwen2 and qwen3 in plain PyTorch (float64), for Hearth's inference tests.

Usage:
  torch_llama.py --tokens "1 5 9 ..." --greedy N --out DIR MODEL [MODEL ...]

MODEL is a .gguf file or a Hugging Face folder (config.json + model.safetensors[.index.json]). For model
number i (from 0) it writes DIR/i.logits (float64 little-endian, len(tokens) rows of n_vocab logits for the
given tokens) and DIR/i.greedy (the N token ids greedy decoding appends, one line, space-separated).

Written from the architectures' definitions (transformers' modeling_llama / modeling_qwen2 / modeling_qwen3)
and the file formats' specifications, independently of Hearth's C++ code: safetensors is parsed here from
its raw bytes; GGUF tensors are dequantized by gguf_dequant.py (numpy, written from ggml's block layouts).

Non-obvious choice: everything runs in the Hugging Face convention (half-split RoPE). A GGUF llama file's
q/k rows, which llama.cpp's converter permuted for its interleaved RoPE, are permuted back here, so a
mistake in either layout in Hearth shows up as a mismatch instead of cancelling out.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_dequant  # noqa: E402

torch.set_grad_enabled(False)
torch.set_num_threads(1)  # tiny models: threads only add overhead
DT = torch.float64


# ---- loading ---------------------------------------------------------------------------------------

def read_safetensors(path):
    raw = open(path, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = np.frombuffer(raw[base + b:base + e], dtype=np.uint8)
        dt = info["dtype"]
        if dt == "F32":
            a = buf.view("<f4").astype(np.float64)
        elif dt == "F16":
            a = buf.view("<f2").astype(np.float64)
        elif dt == "BF16":
            a = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: dtype {dt} of {name}")
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def load_hf(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    idx = os.path.join(folder, "model.safetensors.index.json")
    t = {}
    if os.path.exists(idx):
        for f in sorted(set(json.load(open(idx))["weight_map"].values())):
            t.update(read_safetensors(os.path.join(folder, f)))
    else:
        t.update(read_safetensors(os.path.join(folder, "model.safetensors")))
    arch = cfg.get("model_type", "llama")
    n_embd, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    p = dict(arch=arch, n_layer=cfg["num_hidden_layers"], n_embd=n_embd, n_head=n_head,
             n_head_kv=cfg.get("num_key_value_heads", n_head),
             head_dim=cfg.get("head_dim") or n_embd // n_head, theta=cfg.get("rope_theta", 10000.0),
             eps=cfg.get("rms_norm_eps", 1e-6), scaling=cfg.get("rope_scaling"))
    W = {"embed": t["model.embed_tokens.weight"], "norm": t["model.norm.weight"],
         "lm_head": t.get("lm_head.weight", t["model.embed_tokens.weight"]), "layers": []}
    if cfg.get("tie_word_embeddings", False):
        W["lm_head"] = t["model.embed_tokens.weight"]
    for i in range(p["n_layer"]):
        pre = f"model.layers.{i}."
        L = {}
        for key, name in [("attn_norm", "input_layernorm.weight"), ("ffn_norm", "post_attention_layernorm.weight"),
                          ("wq", "self_attn.q_proj.weight"), ("wk", "self_attn.k_proj.weight"),
                          ("wv", "self_attn.v_proj.weight"), ("wo", "self_attn.o_proj.weight"),
                          ("bq", "self_attn.q_proj.bias"), ("bk", "self_attn.k_proj.bias"),
                          ("bv", "self_attn.v_proj.bias"), ("bo", "self_attn.o_proj.bias"),
                          ("q_norm", "self_attn.q_norm.weight"), ("k_norm", "self_attn.k_norm.weight"),
                          ("gate", "mlp.gate_proj.weight"), ("up", "mlp.up_proj.weight"),
                          ("down", "mlp.down_proj.weight")]:
            L[key] = t.get(pre + name)
        W["layers"].append(L)
    return p, W


def gguf_tensors(path):
    """Metadata and every tensor of a GGUF file, dequantized to float64, in PyTorch order."""
    _, kv, tensors, data, data_start = gguf_dequant.parse(path)
    t = {}
    for name, shape, ttype, off in tensors:
        n = int(np.prod(shape, dtype=np.int64))
        _, bs, bb = gguf_dequant.TYPES[ttype]
        start = data_start + off
        vals = gguf_dequant.dequantize(data[start:start + n // bs * bb], ttype, n).astype(np.float64)
        t[name] = torch.from_numpy(vals.reshape(list(reversed(shape))).copy())
    return kv, t


def load_gguf(path):
    kv, t = gguf_tensors(path)
    arch = kv["general.architecture"]
    a = arch + "."
    n_embd, n_head = kv[a + "embedding_length"], kv[a + "attention.head_count"]
    p = dict(arch=arch, n_layer=kv[a + "block_count"], n_embd=n_embd, n_head=n_head,
             n_head_kv=kv.get(a + "attention.head_count_kv", n_head),
             head_dim=kv.get(a + "attention.key_length", n_embd // n_head),
             theta=kv.get(a + "rope.freq_base", 10000.0), eps=kv[a + "attention.layer_norm_rms_epsilon"],
             scaling=None)
    if kv.get(a + "rope.scaling.type") == "linear":
        p["scaling"] = {"rope_type": "linear", "factor": kv[a + "rope.scaling.factor"]}
    if "rope_freqs.weight" in t:
        p["freq_divisors"] = t["rope_freqs.weight"]
    hd = p["head_dim"]

    def unpermute(w, heads):  # llama.cpp's llama q/k row order -> Hugging Face's
        if arch != "llama" or w is None:
            return w
        shp = w.shape
        w = w.reshape(heads, hd // 2, 2, -1).transpose(1, 2)
        return w.reshape(shp)

    W = {"embed": t["token_embd.weight"], "norm": t["output_norm.weight"],
         "lm_head": t.get("output.weight", t["token_embd.weight"]), "layers": []}
    for i in range(p["n_layer"]):
        g = lambda s: t.get(f"blk.{i}.{s}")  # noqa: E731
        L = dict(attn_norm=g("attn_norm.weight"), ffn_norm=g("ffn_norm.weight"),
                 wq=unpermute(g("attn_q.weight"), n_head), wk=unpermute(g("attn_k.weight"), p["n_head_kv"]),
                 wv=g("attn_v.weight"), wo=g("attn_output.weight"),
                 bq=unpermute(g("attn_q.bias"), n_head), bk=unpermute(g("attn_k.bias"), p["n_head_kv"]),
                 bv=g("attn_v.bias"), bo=g("attn_output.bias"), q_norm=g("attn_q_norm.weight"),
                 k_norm=g("attn_k_norm.weight"), gate=g("ffn_gate.weight"), up=g("ffn_up.weight"),
                 down=g("ffn_down.weight"))
        W["layers"].append(L)
    return p, W


# ---- the network -----------------------------------------------------------------------------------

def inv_freq(p):
    hd = p["head_dim"]
    f = 1.0 / (p["theta"] ** (torch.arange(0, hd, 2, dtype=DT) / hd))
    s = p.get("scaling") or {}
    kind = s.get("rope_type", s.get("type"))
    if "freq_divisors" in p:
        f = f / p["freq_divisors"]
    elif kind == "linear":
        f = f / s["factor"]
    elif kind == "llama3":  # transformers' _compute_llama3_parameters
        factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        wavelen = 2 * math.pi / f
        lo_wl, hi_wl = old / lo, old / hi
        g = torch.where(wavelen > lo_wl, f / factor, f)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * g / factor + smooth * g
        medium = ~(wavelen < hi_wl) & ~(wavelen > lo_wl)
        f = torch.where(medium, smoothed, g)
    return f


def rms(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(p, W, tokens):
    T = len(tokens)
    nh, nkv, hd, eps = p["n_head"], p["n_head_kv"], p["head_dim"], p["eps"]
    x = W["embed"][torch.tensor(tokens)]
    ang = torch.arange(T, dtype=DT)[:, None] * inv_freq(p)[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
    for L in W["layers"]:
        h = rms(x, L["attn_norm"], eps)
        q, k, v = h @ L["wq"].T, h @ L["wk"].T, h @ L["wv"].T
        if L["bq"] is not None:
            q, k, v = q + L["bq"], k + L["bk"], v + L["bv"]
        q, k, v = q.view(T, nh, hd), k.view(T, nkv, hd), v.view(T, nkv, hd)
        if L["q_norm"] is not None:
            q, k = rms(q, L["q_norm"], eps), rms(k, L["k_norm"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        a = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, nh * hd)
        o = a @ L["wo"].T
        if L["bo"] is not None:
            o = o + L["bo"]
        x = x + o
        h = rms(x, L["ffn_norm"], eps)
        x = x + (torch.nn.functional.silu(h @ L["gate"].T) * (h @ L["up"].T)) @ L["down"].T
    return rms(x, W["norm"], eps) @ W["lm_head"].T


def main():
    args = sys.argv[1:]
    tokens, greedy, out, models = None, 0, None, []
    i = 0
    while i < len(args):
        if args[i] == "--tokens":
            tokens = [int(s) for s in args[i + 1].split()]
            i += 2
        elif args[i] == "--greedy":
            greedy = int(args[i + 1])
            i += 2
        elif args[i] == "--out":
            out = args[i + 1]
            i += 2
        else:
            models.append(args[i])
            i += 1
    if not tokens or not out or not models:
        print(__doc__, file=sys.stderr)
        return 2
    os.makedirs(out, exist_ok=True)
    for n, m in enumerate(models):
        p, W = load_gguf(m) if m.endswith(".gguf") else load_hf(m)
        logits = forward(p, W, tokens)
        logits.numpy().astype("<f8").tofile(os.path.join(out, f"{n}.logits"))
        seq = list(tokens)
        for _ in range(greedy):
            seq.append(int(torch.argmax(forward(p, W, seq)[-1])))
        with open(os.path.join(out, f"{n}.greedy"), "w") as f:
            f.write(" ".join(str(t) for t in seq[len(tokens):]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
