#!/usr/bin/python3
"""Recomputes tests/attention_twin.c's outputs and gradients in PyTorch: the
modules are loaded with load_state_dict(strict=True) (every name and shape must
match), the causal mask is PyTorch's additive upper triangle of -inf, and
outputs and parameter gradients must agree to 1e-5 relative to their largest
value. The GPT is bench/gpt_twin.py's. With a --model gpt checkpoint of anygrad
train, its weights (the optimizer's state left out) load strictly and give the
logits anygrad computed. Prints one line per check; exits 1 on any mismatch.
usage: torch_attention.py DIR [GPT_CHECKPOINT]"""
import os
import sys

import torch
from torch import nn

from torch_interop import read_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from gpt_twin import GPT  # noqa: E402


def compare(what, ours, theirs):
    scale = max(float(theirs.abs().max()), 1e-6)
    err = float((ours - theirs).abs().max()) / scale
    return err, err <= 1e-5


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    ok_all = True
    for name in ("mha", "block", "gpt"):
        state, _ = read_safetensors(f"{d}/{name}.safetensors")
        io, _ = read_safetensors(f"{d}/{name}-io.safetensors")
        if name == "mha":
            m = nn.MultiheadAttention(16, 4, dropout=0.0, bias=True, batch_first=True)
        elif name == "gpt":
            m = GPT(11, 7, 2, 2, 16)
        else:
            m = nn.TransformerEncoderLayer(16, 4, 64, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        m.load_state_dict(state, strict=True)
        m.train()  # the plain (autograd) path, not the inference fast path
        x = io["x"].clone()
        mask = torch.triu(torch.full((7, 7), float("-inf")), diagonal=1)
        if name == "mha":
            y = m(x, x, x, attn_mask=mask, need_weights=False)[0]
        elif name == "gpt":
            y = m(x.long())
        else:
            y = m(x, src_mask=mask)
        (y * io["g"]).sum().backward()
        worst, ok = compare("y", io["y"], y.detach())
        for pname, p in m.named_parameters():
            err, good = compare(pname, io["grad." + pname], p.grad)
            worst, ok = max(worst, err), ok and good
        print(f"{'ok  ' if ok else 'FAIL'} {name}: output and {len(list(m.parameters()))} parameter "
              f"gradients agree with PyTorch to {worst:.2e} of their scale")
        ok_all = ok_all and ok
    if len(sys.argv) > 2:
        state, meta = read_safetensors(sys.argv[2])
        state = {k: v for k, v in state.items() if not k.startswith("optimizer.")}
        V, T = len(meta["anygrad.vocab"]) // 2, int(meta["anygrad.context"])
        m = GPT(V, T, int(meta["anygrad.blocks"]), int(meta["anygrad.heads"]), int(meta["anygrad.width"]))
        m.load_state_dict(state, strict=True)
        with torch.no_grad():
            y = m((torch.arange(T) % V).reshape(1, T))
        io, _ = read_safetensors(f"{d}/ckpt-io.safetensors")
        err, ok = compare("logits", io["y"], y)
        print(f"{'ok  ' if ok else 'FAIL'} anygrad train --model gpt checkpoint: loads with strict=True, "
              f"{len(state)} tensors, logits agree to {err:.2e} of their scale")
        ok_all = ok_all and ok
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
