#!/usr/bin/python3
"""PyTorch reference for Hearth's optimizer side: torch.optim.AdamW steps and
torch.nn.utils.clip_grad_norm_, computed from inputs a C++ test writes.

Usage: torch_adamw.py IN.json OUT.json

IN.json: {"cases": [ ... ]}, each case either
  {"kind": "adamw", "betas": [b1, b2], "eps": e, "weight_decay": wd, "lrs": [lr per step],
   "params": [{"shape": [..], "value": [..], "decay": true|false, "grads": [[step 0 grads], ...]}]}
  {"kind": "clip", "max_norm": x, "grads": [[..], [..]]}
OUT.json: {"results": [ ... ]} in the same order:
  adamw: {"steps": [[param 0 values after step 1, param 1 values ...], ...]}  (after every step)
  clip:  {"norm": total norm before clipping, "grads": [clipped grads]}

Non-obvious choice: parameters with decay = false go into a second param group with weight_decay 0,
as trainers do for norms and biases, so one optimizer exercises both groups; the learning rate is set
on every group before each step, as an LR scheduler would.
"""
import json
import sys

import torch


def run_adamw(case):
    params = []
    for p in case["params"]:
        t = torch.tensor(p["value"], dtype=torch.float32).reshape(p["shape"])
        params.append(torch.nn.Parameter(t))
    decay = [p for p, d in zip(params, case["params"]) if d["decay"]]
    no_decay = [p for p, d in zip(params, case["params"]) if not d["decay"]]
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": case["weight_decay"]})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    b1, b2 = case["betas"]
    opt = torch.optim.AdamW(groups, lr=case["lrs"][0], betas=(b1, b2), eps=case["eps"],
                            weight_decay=case["weight_decay"])
    steps = []
    for s, lr in enumerate(case["lrs"]):
        for g in opt.param_groups:
            g["lr"] = lr
        for p, d in zip(params, case["params"]):
            p.grad = torch.tensor(d["grads"][s], dtype=torch.float32).reshape(d["shape"])
        opt.step()
        steps.append([p.detach().reshape(-1).tolist() for p in params])
    return {"steps": steps}


def run_clip(case):
    ps = []
    for g in case["grads"]:
        p = torch.nn.Parameter(torch.zeros(len(g), dtype=torch.float32))
        p.grad = torch.tensor(g, dtype=torch.float32)
        ps.append(p)
    norm = torch.nn.utils.clip_grad_norm_(ps, case["max_norm"])
    return {"norm": float(norm), "grads": [p.grad.tolist() for p in ps]}


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: torch_adamw.py IN.json OUT.json")
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        cases = json.load(f)["cases"]
    out = []
    for c in cases:
        if c["kind"] == "adamw":
            out.append(run_adamw(c))
        elif c["kind"] == "clip":
            out.append(run_clip(c))
        else:
            sys.exit("unknown case kind " + str(c["kind"]))
    with open(sys.argv[2], "w") as f:
        json.dump({"results": out}, f)


if __name__ == "__main__":
    main()
