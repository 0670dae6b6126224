#!/usr/bin/python3
"""Reference for bench-gpu-train (tests/bench/bench-gpu-train.cpp): training throughput and device memory of
the same llama-shaped model (random initialisation), batch and sequence length through Hugging Face
transformers + PEFT on the same GPU: full fine-tuning and LoRA. tests/gpu/run.sh runs both programs and
compares (issue 6: Hearth's LoRA tokens/s >= 1.5x this script's).

Usage:
  peft_train_bench.py [--method full|lora|both] [--layers 24 --embd 1024 --heads 16 --kv-heads 16 --ff 2816
                      --vocab 32000] [--batch 8 --seq 512] [--warmup 3 --steps 10 --min-seconds 2] [--rank 16]
                      [--device cuda|cpu] [--impl auto|hf|torch] [--precision bf16|f32] [--json FILE]

The setting is what `transformers.Trainer(..., bf16=True)` does, the common way to fine-tune:
- full: F32 weights (the master copy), forward and backward under torch.autocast(bfloat16), gradients
  and AdamW moments in F32;
- LoRA: the frozen base loaded in BF16 (torch_dtype=torch.bfloat16, as PEFT users load it), LoRA factors in
  F32 (PEFT's autocast_adapter_dtype; cast here explicitly for older PEFT), r = --rank, alpha = 2r, dropout 0,
  on q, k, v, o, gate, up and down projections; the same autocast;
- attention through F.scaled_dot_product_attention ("sdpa", transformers' default where torch has it);
- torch.optim.AdamW (lr 1e-4, no weight decay), fused when TrainingArguments' default optimizer is
  "adamw_torch_fused", otherwise torch's default (foreach on CUDA); clip_grad_norm_(1.0) every step
  (Trainer's max_grad_norm); no gradient checkpointing, no torch.compile.
One timed step = zero_grad + forward + backward + clip + AdamW step, wall time between two
torch.cuda.synchronize() calls; the mean over >= --steps steps and >= --min-seconds after --warmup steps.
tokens/s = batch * seq / mean step time (every position processed), as bench-gpu-train counts it.

Non-obvious choice: when transformers or peft cannot be imported (the GPU machine may have only PyTorch),
the same network is written in plain PyTorch (nn.Linear, RMSNorm, half-split RoPE, SDPA, SwiGLU, LoRA as
two extra products on each adapted projection) with the same precision setting, and every line of output
says "torch (no transformers/peft on this machine)", so a comparison against it is never passed off as one
against PEFT. --impl hf fails instead of falling back.

Output: human lines, `RESULT <name> <value> <unit...>` lines for run.sh, and --json FILE.
"""
import argparse
import dataclasses
import json
import math
import resource
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TARGETS_HF = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NO_HF_LABEL = "torch (no transformers/peft on this machine)"


# ---- plain PyTorch llama (used only without transformers/peft) ---------------------------------------
class LoraLinear(nn.Module):
    def __init__(self, n_in, n_out, rank, alpha):
        super().__init__()
        self.base = nn.Linear(n_in, n_out, bias=False)
        self.rank = rank
        if rank > 0:
            self.lora_a = nn.Parameter(torch.empty(rank, n_in))
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            self.lora_b = nn.Parameter(torch.zeros(n_out, rank))
            self.scale = alpha / rank

    def forward(self, x):
        y = self.base(x)
        if self.rank > 0:
            y = y + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale
        return y


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):  # as transformers' LlamaRMSNorm: F32 statistics, back to the input type
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Block(nn.Module):
    def __init__(self, a, rank):
        super().__init__()
        d, hd = a.embd, a.embd // a.heads
        kv = a.kv_heads * hd
        mk = lambda i, o: LoraLinear(i, o, rank, 2.0 * rank)  # noqa: E731
        self.h, self.kvh, self.hd = a.heads, a.kv_heads, hd
        self.q, self.k, self.v, self.o = mk(d, d), mk(d, kv), mk(d, kv), mk(d, d)
        self.gate, self.up, self.down = mk(d, a.ff), mk(d, a.ff), mk(a.ff, d)
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        a = self.n1(x)
        q = self.q(a).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(a).view(B, T, self.kvh, self.hd).transpose(1, 2)
        v = self.v(a).view(B, T, self.kvh, self.hd).transpose(1, 2)

        def rope(t):
            t1, t2 = t[..., : self.hd // 2], t[..., self.hd // 2:]
            c, s = cos[:T].to(t.dtype), sin[:T].to(t.dtype)
            return torch.cat([t1 * c - t2 * s, t2 * c + t1 * s], dim=-1)

        q, k = rope(q), rope(k)
        if self.kvh != self.h:
            k = k.repeat_interleave(self.h // self.kvh, dim=1)
            v = v.repeat_interleave(self.h // self.kvh, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0 (the development VM's Debian torch)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
            y = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1).to(v.dtype) @ v
        x = x + self.o(y.transpose(1, 2).reshape(B, T, D))
        m = self.n2(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class TorchLlama(nn.Module):
    def __init__(self, a, rank):
        super().__init__()
        self.emb = nn.Embedding(a.vocab, a.embd)
        self.blocks = nn.ModuleList(Block(a, rank) for _ in range(a.layers))
        self.norm = RMSNorm(a.embd)
        self.out = nn.Linear(a.embd, a.vocab, bias=False)
        hd = a.embd // a.heads
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd // 2, dtype=torch.float32) * 2 / hd))
        ang = torch.outer(torch.arange(a.seq, dtype=torch.float32), inv)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)
        self.register_buffer("mask", torch.ones(a.seq, a.seq, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, tokens):
        x = self.emb(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        logits = self.out(self.norm(x))
        # as transformers' causal-LM loss: position t predicts token t+1, in F32
        return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))


# ---- set-up ----------------------------------------------------------------------------------------------
def hf_versions():
    """(transformers, peft) modules, or None for each that does not import."""
    mods = []
    for name in ("transformers", "peft"):
        try:
            mods.append(__import__(name))
        except Exception:  # noqa: BLE001 - any failure to import means "not usable here"
            mods.append(None)
    return mods


def trainer_default_fused():
    """True when transformers.TrainingArguments' default optimizer is the fused AdamW."""
    try:
        from transformers import TrainingArguments
    except Exception:  # noqa: BLE001
        return False
    try:  # the resolved default (a version may pick the fused optimizer in __post_init__)
        return "fused" in str(TrainingArguments(output_dir=tempfile.mkdtemp(), report_to=[]).optim)
    except Exception:  # noqa: BLE001 - e.g. accelerate missing: the declared default
        pass
    try:
        for f in dataclasses.fields(TrainingArguments):
            if f.name == "optim":
                return "fused" in str(getattr(f.default, "value", f.default))
    except Exception:  # noqa: BLE001
        pass
    return False


def on_device(dev, build):
    """Builds the module directly on `dev` where torch can (torch >= 2.0), else on the CPU and moves it."""
    if hasattr(torch.device(dev), "__enter__"):
        with torch.device(dev):
            return build()
    return build().to(dev)


def build_hf(a, method, dev, transformers, peft):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.embd, intermediate_size=a.ff, num_hidden_layers=a.layers,
                      num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                      max_position_embeddings=max(a.seq, 2048), rms_norm_eps=1e-5, tie_word_embeddings=False,
                      use_cache=False)  # RoPE base: the default 10000 (transformers 5 moved its keyword)
    attn = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager"
    try:
        cfg._attn_implementation = attn
    except Exception:  # noqa: BLE001 - older transformers: its own default
        pass
    model = on_device(dev, lambda: LlamaForCausalLM(cfg))
    label = f"transformers {transformers.__version__}"
    if method == "lora":
        from peft import LoraConfig, get_peft_model
        if a.precision == "bf16":
            model = model.to(torch.bfloat16)
        lc = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, target_modules=TARGETS_HF, bias="none",
                        task_type="CAUSAL_LM")
        model = get_peft_model(model, lc)
        label += f" + peft {peft.__version__}"
    label += f", attention {getattr(model.config, '_attn_implementation', '?')}"

    def loss_fn(tokens):
        return model(input_ids=tokens, labels=tokens).loss
    return model, loss_fn, label


def build_torch(a, method, dev):
    lora = method == "lora"
    model = on_device(dev, lambda: TorchLlama(a, a.rank if lora else 0))
    for n, t in model.named_parameters():
        t.requires_grad_(("lora_a" in n or "lora_b" in n) if lora else True)
    if lora and a.precision == "bf16":
        for t in model.parameters():
            if not t.requires_grad:
                t.data = t.data.to(torch.bfloat16)
    attn = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager (masked softmax)"
    return model, model, f"{NO_HF_LABEL}, attention {attn}"


def uses_hf(a, method, mods):
    transformers, peft = mods
    return a.impl == "hf" or (a.impl == "auto" and transformers is not None and (method == "full" or peft is not None))


def run(a, method, dev, mods, fallback_why=""):
    """One method's measurement; fallback_why: run the plain-torch network because the HF one failed so."""
    transformers, peft = mods
    use_hf = not fallback_why and uses_hf(a, method, mods)
    if use_hf and (transformers is None or (method == "lora" and peft is None)):
        raise RuntimeError("--impl hf but transformers" + ("/peft" if method == "lora" else "") + " does not import")
    torch.manual_seed(a.seed)
    cuda = dev.startswith("cuda")
    t0 = time.perf_counter()
    model, loss_fn, label = build_hf(a, method, dev, transformers, peft) if use_hf else build_torch(a, method, dev)
    if fallback_why:
        label = label.replace(NO_HF_LABEL, f"torch (the transformers/peft run failed: {fallback_why})")
    # Trainable weights (the LoRA factors; everything for full) in F32, as Trainer's mixed precision keeps them.
    for t in model.parameters():
        if t.requires_grad and t.dtype != torch.float32:
            t.data = t.data.float()
    trainable = [t for t in model.parameters() if t.requires_grad]
    if cuda:  # the peak from here on: the model as trained, optimizer state, activations (not the F32 → BF16 cast)
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    n_params = sum(t.numel() for t in model.parameters())
    fused = cuda and trainer_default_fused()
    opt = torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                            **({"fused": True} if fused else {}))
    model.train()
    setup_s = time.perf_counter() - t0

    g = torch.Generator().manual_seed(a.seed)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq), generator=g).to(dev)
    autocast = torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16,
                              enabled=a.precision == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(tokens)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def used_mib():
        if not cuda:
            return 0.0
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 1048576.0

    loss_first = None
    for _ in range(a.warmup):
        loss = step()
        if loss_first is None:
            loss_first = float(loss)
    sync()
    used = used_mib()
    times = []
    t_window = time.perf_counter()
    while (len(times) < a.steps or time.perf_counter() - t_window < a.min_seconds) and len(times) < 100000:
        ts = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - ts)
        if loss_first is None:
            loss_first = float(loss)
    used = max(used, used_mib())
    loss_last = float(loss)
    if not math.isfinite(loss_last):
        raise RuntimeError(f"the loss is not finite ({loss_last})")
    step_s = sum(times) / len(times)
    r = {
        "method": method, "impl": label, "hf": bool(use_hf), "fused_adamw": bool(fused),
        "tokens_per_s": a.batch * a.seq / step_s, "step_ms": 1e3 * step_s,
        "step_ms_min": 1e3 * min(times), "step_ms_max": 1e3 * max(times), "timed_steps": len(times),
        "params": n_params, "trainable": sum(t.numel() for t in trainable),
        "loss_first": loss_first, "loss_last": loss_last, "setup_s": setup_s,
        "device_used_mib": used,
    }
    if cuda:
        r["max_allocated_mib"] = torch.cuda.max_memory_allocated() / 1048576.0
        r["max_reserved_mib"] = torch.cuda.max_memory_reserved() / 1048576.0
    else:
        r["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--method", choices=["full", "lora", "both"], default="both")
    for k, v in [("layers", 24), ("embd", 1024), ("heads", 16), ("kv-heads", 0), ("ff", 2816), ("vocab", 32000),
                 ("batch", 8), ("seq", 512), ("warmup", 3), ("steps", 10), ("rank", 16), ("seed", 1)]:
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (cpu: a smoke test of this script)")
    p.add_argument("--impl", choices=["auto", "hf", "torch"], default="auto")
    p.add_argument("--precision", choices=["bf16", "f32"], default="bf16")
    p.add_argument("--json", default="")
    a = p.parse_args()
    a.kv_heads = a.kv_heads or a.heads
    if a.embd % a.heads or a.heads % a.kv_heads or (a.embd // a.heads) % 2:
        p.error("--embd must be a multiple of --heads (even head size), --heads a multiple of --kv-heads")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("peft_train_bench: torch sees no CUDA device (use --device cpu for a smoke test)", file=sys.stderr)
        return 1
    mods = hf_versions() if a.impl != "torch" else [None, None]
    have = ", ".join(f"{n} {m.__version__}" if m else f"no {n}" for n, m in zip(("transformers", "peft"), mods))
    dev_name = torch.cuda.get_device_name(torch.device(a.device)) if a.device.startswith("cuda") else "cpu"
    print(f"peft_train_bench: torch {torch.__version__} (CUDA {torch.version.cuda}), {have}; device {dev_name}")
    print(f"model: llama {a.layers} layers x {a.embd}, {a.heads} heads ({a.kv_heads} KV), ff {a.ff}, vocab "
          f"{a.vocab}, random init; batch {a.batch} x seq {a.seq}; {a.precision} (autocast, F32 trainable "
          f"weights); LoRA r={a.rank} alpha={2 * a.rank} on q,k,v,o,gate,up,down")
    methods = ["full", "lora"] if a.method == "both" else [a.method]
    results, failed = [], False
    for m in methods:
        try:
            try:
                r = run(a, m, a.device, mods)
            except Exception as e:  # noqa: BLE001 - auto: say so, and measure the plain-torch network instead
                if a.impl != "auto" or not uses_hf(a, m, mods):
                    raise
                why = " ".join(f"{type(e).__name__}: {e}".split())[:160]
                print(f"peft_train_bench: {m}: the transformers/peft run failed ({why}); plain torch instead",
                      file=sys.stderr)
                if a.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                r = run(a, m, a.device, mods, fallback_why=why)
        except Exception as e:  # noqa: BLE001 - one line per failed method, then the next one
            msg = " ".join(str(e).split())[:300]
            print(f"peft_train_bench: {m}: {type(e).__name__}: {msg}", file=sys.stderr)
            results.append({"method": m, "error": f"{type(e).__name__}: {msg}"})
            failed = True
            continue
        finally:
            if a.device.startswith("cuda"):
                torch.cuda.empty_cache()
        results.append(r)
        mem = (f"{r['device_used_mib']:.0f} MiB in use on the GPU, torch max allocated {r['max_allocated_mib']:.0f} "
               f"MiB" if "max_allocated_mib" in r else f"peak RSS {r['peak_rss_mib']:.0f} MiB")
        print(f"{m}: {r['impl']}{', fused AdamW' if r['fused_adamw'] else ''}: {r['trainable']} trainable of "
              f"{r['params']}; {r['tokens_per_s']:.1f} tokens/s, {r['step_ms']:.1f} ms/step over {r['timed_steps']} "
              f"steps; {mem}; loss {r['loss_first']:.4f} -> {r['loss_last']:.4f}; set-up {r['setup_s']:.1f} s")
    for r in results:
        if "error" in r:
            continue
        m, impl = r["method"], r["impl"]
        print(f"RESULT peft_{m}_tokens_per_s {r['tokens_per_s']:.1f} tok/s [{impl}]")
        if "max_allocated_mib" in r:
            print(f"RESULT peft_{m}_device_mib {r['device_used_mib']:.0f} MiB in use on the GPU (torch max "
                  f"allocated {r['max_allocated_mib']:.0f}, reserved {r['max_reserved_mib']:.0f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"program": "peft_train_bench.py", "device": dev_name, "torch": torch.__version__,
                       "transformers": mods[0].__version__ if mods[0] else None,
                       "peft": mods[1].__version__ if mods[1] else None, "precision": a.precision,
                       "layers": a.layers, "embd": a.embd, "heads": a.heads, "kv_heads": a.kv_heads, "ff": a.ff,
                       "vocab": a.vocab, "batch": a.batch, "seq": a.seq, "rank": a.rank, "runs": results}, f,
                      indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
