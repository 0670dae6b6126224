#!/usr/bin/python3
"""PyTorch side of bench-train: training steps of a llama-shaped model on the CPU, LoRA or full, and the
tokens per second and peak memory they reach. bench-train (tests/bench/bench-train.cpp) runs this script
with the same shape, batch, sequence length and thread count as its Hearth runs and prints both.

Usage:
  torch_train_bench.py --method lora|full [--layers 12 --embd 768 --heads 12 --ff 2048 --vocab 32000]
                       [--batch 4 --seq 256 --steps 3 --warmup 1 --threads 2 --rank 16]

Prints one JSON line: method, tokens_per_s, step_s, peak_rss_mib, params, trainable.

Non-obvious choice: the model is written the way a PyTorch user would write it (nn.Linear, an RMSNorm
function, causal attention with a mask and softmax (this Debian torch predates
F.scaled_dot_product_attention), fp32 everywhere, torch.optim.AdamW) rather than as a
slow mirror of Hearth's kernels, so the comparison is against what people actually run.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoraLinear(nn.Module):
    def __init__(self, n_in, n_out, rank, alpha):
        super().__init__()
        self.base = nn.Linear(n_in, n_out, bias=False)
        self.base.weight.requires_grad_(False)
        self.rank = rank
        if rank > 0:
            self.a = nn.Parameter(torch.empty(rank, n_in))
            nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
            self.b = nn.Parameter(torch.zeros(n_out, rank))
            self.scale = alpha / rank

    def forward(self, x):
        y = self.base(x)
        if self.rank > 0:
            y = y + (x @ self.a.t() @ self.b.t()) * self.scale
        return y


def rms_norm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class Block(nn.Module):
    def __init__(self, d, h, ff, rank, alpha):
        super().__init__()
        mk = lambda i, o: LoraLinear(i, o, rank, alpha)  # noqa: E731
        self.h = h
        self.q, self.k, self.v, self.o = mk(d, d), mk(d, d), mk(d, d), mk(d, d)
        self.gate, self.up, self.down = mk(d, ff), mk(d, ff), mk(ff, d)
        self.n1 = nn.Parameter(torch.ones(d))
        self.n2 = nn.Parameter(torch.ones(d))

    def forward(self, x, cos, sin, mask):
        self.mask = mask
        B, T, D = x.shape
        hd = D // self.h
        a = rms_norm(x, self.n1)
        q = self.q(a).view(B, T, self.h, hd).transpose(1, 2)
        k = self.k(a).view(B, T, self.h, hd).transpose(1, 2)
        v = self.v(a).view(B, T, self.h, hd).transpose(1, 2)

        def rope(t):
            t1, t2 = t[..., : hd // 2], t[..., hd // 2:]
            return torch.cat([t1 * cos - t2 * sin, t2 * cos + t1 * sin], dim=-1)

        q, k = rope(q), rope(k)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(self.mask[:T, :T], float("-inf")).softmax(-1)
        y = att @ v
        x = x + self.o(y.transpose(1, 2).reshape(B, T, D))
        m = rms_norm(x, self.n2)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Llama(nn.Module):
    def __init__(self, a, rank):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.embd)
        self.blocks = nn.ModuleList(Block(a.embd, a.heads, a.ff, rank, 2.0 * rank) for _ in range(a.layers))
        self.norm = nn.Parameter(torch.ones(a.embd))
        self.out = nn.Linear(a.embd, a.vocab, bias=False)
        hd = a.embd // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd // 2, dtype=torch.float32) * 2 / hd))
        ang = torch.outer(torch.arange(a.seq, dtype=torch.float32), inv)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        self.register_buffer("mask", torch.ones(a.seq, a.seq, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, tokens, targets):
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        logits = self.out(rms_norm(x, self.norm))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", choices=["lora", "full"], required=True)
    for k, v in [("layers", 12), ("embd", 768), ("heads", 12), ("ff", 2048), ("vocab", 32000), ("batch", 4),
                 ("seq", 256), ("steps", 3), ("warmup", 1), ("threads", 2), ("rank", 16), ("seed", 1)]:
        p.add_argument("--" + k, type=int, default=v)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    lora = a.method == "lora"
    model = Llama(a, a.rank if lora else 0)
    for n, t in model.named_parameters():
        t.requires_grad_(n.endswith(".a") or n.endswith(".b") if lora else True)
    params = sum(t.numel() for t in model.parameters())
    trainable = [t for t in model.parameters() if t.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(a.seed)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g)
    targets = torch.cat([tokens[:, 1:], torch.full((a.batch, 1), -1)], dim=1)

    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    n_targets = a.batch * (a.seq - 1)
    print(json.dumps({
        "method": a.method,
        "tokens_per_s": n_targets / step_s,
        "step_s": step_s,
        "loss": float(loss),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "params": params,
        "trainable": sum(t.numel() for t in trainable),
    }))


if __name__ == "__main__":
    main()
