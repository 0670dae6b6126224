#!/usr/bin/python3
"""Reference training step of llama, qwen2 and qwen3 in plain PyTorch (float64, autograd), for Hearth's
trainer tests: the loss of a batch, the gradient of every trainable tensor, and the losses of ten AdamW
steps, for full fine-tuning and for LoRA over a frozen base.

Usage:
  torch_train.py CASE_DIR [CASE_DIR ...]

Each CASE_DIR holds case.json, written by the C++ test:
  {"model": HF_FOLDER, "method": "full" | "lora", "B": 2, "T": 16, "tokens": [...], "targets": [...],
   "lora": {"rank": 4, "alpha": 8.0, "targets": ["q", ...]},            (lora only)
   "params": [{"name": "...", "shape": [...]}, ...],                     (Hearth's trainable(), in order)
   "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "steps": 10}}
and, for LoRA, params.f32: the initial values of every factor (float32, concatenated in `params` order).
Targets < 0 are not counted. The script writes CASE_DIR/out.json ({"loss", "n_tokens", "losses"}) and
CASE_DIR/grads.f64: the gradients at the initial weights in `params` order (float64, concatenated).

Written from the architectures' definitions (transformers' modeling_llama / qwen2 / qwen3) and PEFT's LoRA
(y = W x + b + alpha/r · B A x), independently of Hearth's C++ code. Weight decay applies to tensors with
two or more dimensions (matrices, embeddings, LoRA factors), not to norms and biases, as Hearth's Params say.
Non-obvious choice: everything runs in float64 so that the reference's own rounding is negligible next
to Hearth's F32; a Hugging Face name Hearth reports that this script does not know is an error, so the
names are checked too.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_llama  # noqa: E402

torch.set_grad_enabled(True)  # torch_llama turns it off for inference
torch.set_num_threads(1)
DT = torch.float64

MODULES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
           "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}


def load(folder):
    p, _ = torch_llama.load_hf(folder)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    idx = os.path.join(folder, "model.safetensors.index.json")
    S = {}
    if os.path.exists(idx):
        for f in sorted(set(json.load(open(idx))["weight_map"].values())):
            S.update(torch_llama.read_safetensors(os.path.join(folder, f)))
    else:
        S.update(torch_llama.read_safetensors(os.path.join(folder, "model.safetensors")))
    tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in S
    if tied:
        S.pop("lm_head.weight", None)
    return p, S, tied


def rms(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def loss_of(p, S, tied, lora, scale, tokens, targets):
    B, T = tokens.shape
    nh, nkv, hd, eps = p["n_head"], p["n_head_kv"], p["head_dim"], p["eps"]
    x = S["model.embed_tokens.weight"][tokens]
    ang = torch.arange(T, dtype=DT)[:, None] * torch_llama.inv_freq(p)[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
    mask = torch.full((T, T), float("-inf"), dtype=DT).triu(1)
    for i in range(p["n_layer"]):
        pre = f"model.layers.{i}."

        def lin(inp, mod):
            y = inp @ S[pre + mod + ".weight"].T
            if pre + mod + ".bias" in S:
                y = y + S[pre + mod + ".bias"]
            if pre + mod in lora:
                a, b = lora[pre + mod]
                y = y + scale * ((inp @ a.T) @ b.T)
            return y

        h = rms(x, S[pre + "input_layernorm.weight"], eps)
        q = lin(h, MODULES["q"]).view(B, T, nh, hd)
        k = lin(h, MODULES["k"]).view(B, T, nkv, hd)
        v = lin(h, MODULES["v"]).view(B, T, nkv, hd)
        if pre + "self_attn.q_norm.weight" in S:
            q = rms(q, S[pre + "self_attn.q_norm.weight"], eps)
            k = rms(k, S[pre + "self_attn.k_norm.weight"], eps)
        q = q * cos + torch_llama.rotate_half(q) * sin
        k = k * cos + torch_llama.rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=2)
        v = v.repeat_interleave(nh // nkv, dim=2)
        s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(hd) + mask
        a = torch.einsum("bhts,bshd->bthd", torch.softmax(s, dim=-1), v).reshape(B, T, nh * hd)
        x = x + lin(a, MODULES["o"])
        h = rms(x, S[pre + "post_attention_layernorm.weight"], eps)
        x = x + lin(torch.nn.functional.silu(lin(h, MODULES["gate"])) * lin(h, MODULES["up"]), MODULES["down"])
    out_w = S["model.embed_tokens.weight"] if tied else S["lm_head.weight"]
    logits = rms(x, S["model.norm.weight"], eps) @ out_w.T
    return torch.nn.functional.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1), ignore_index=-1)


def run_case(d):
    c = json.load(open(os.path.join(d, "case.json")))
    p, S, tied = load(c["model"])
    B, T = c["B"], c["T"]
    tokens = torch.tensor(c["tokens"], dtype=torch.long).view(B, T)
    targets = torch.tensor(c["targets"], dtype=torch.long).view(B, T)
    names = [q["name"] for q in c["params"]]
    shapes = [q["shape"] for q in c["params"]]
    lora, scale, trainable = {}, 0.0, []
    if c["method"] == "lora":
        L = c["lora"]
        scale = L["alpha"] / L["rank"]
        vals = np.fromfile(os.path.join(d, "params.f32"), dtype="<f4").astype(np.float64)
        off, byname = 0, {}
        for n, shp in zip(names, shapes):
            cnt = int(np.prod(shp))
            t = torch.from_numpy(vals[off:off + cnt].reshape(shp).copy()).requires_grad_(True)
            byname[n] = t
            trainable.append(t)
            off += cnt
        if off != len(vals):
            raise ValueError(f"{d}: params.f32 holds {len(vals)} values, the names need {off}")
        for i in range(p["n_layer"]):
            for tgt in L["targets"]:
                mod = f"model.layers.{i}.{MODULES[tgt]}"
                lora[mod] = (byname[mod + ".lora_A.weight"], byname[mod + ".lora_B.weight"])
        if len(lora) * 2 != len(names):
            raise ValueError(f"{d}: Hearth has {len(names)} LoRA tensors, expected {len(lora) * 2}")
    else:
        for n, shp in zip(names, shapes):
            if n not in S:
                raise ValueError(f"{d}: Hearth's parameter {n} is not a weight of the model")
            if list(S[n].shape) != list(shp):
                raise ValueError(f"{d}: {n} has shape {list(S[n].shape)} here, {shp} in Hearth")
            S[n].requires_grad_(True)
            trainable.append(S[n])
        if len(names) != len(S):
            raise ValueError(f"{d}: Hearth trains {len(names)} tensors, the model has {len(S)}")

    loss = loss_of(p, S, tied, lora, scale, tokens, targets)
    loss.backward()
    grads = [t.grad.detach().clone() for t in trainable]
    np.concatenate([g.reshape(-1).numpy() for g in grads]).astype("<f8").tofile(os.path.join(d, "grads.f64"))
    result = {"loss": float(loss), "n_tokens": int((targets >= 0).sum())}

    a = c.get("adamw")
    if a:
        for t in trainable:
            t.grad = None
        groups = [{"params": [t for t in trainable if t.dim() >= 2], "weight_decay": a["weight_decay"]},
                  {"params": [t for t in trainable if t.dim() < 2], "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        opt = torch.optim.AdamW(groups, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
        losses = []
        for _ in range(a["steps"]):
            opt.zero_grad()
            lo = loss_of(p, S, tied, lora, scale, tokens, targets)
            losses.append(float(lo))
            lo.backward()
            opt.step()
        result["losses"] = losses
    json.dump(result, open(os.path.join(d, "out.json"), "w"))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    for d in sys.argv[1:]:
        run_case(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
