#!/usr/bin/python3
"""Recomputes tests/attention_twin.c's outputs and gradients in PyTorch: the
modules are loaded with load_state_dict(strict=True) (every name and shape must
match), the causal mask is PyTorch's additive upper triangle of -inf, and
outputs and parameter gradients must agree to 1e-5 relative to their largest
value. Prints one line per module; exits 1 on any mismatch.
usage: torch_attention.py DIR"""
import sys

import torch
from torch import nn

from torch_interop import read_safetensors


def compare(what, ours, theirs):
    scale = max(float(theirs.abs().max()), 1e-6)
    err = float((ours - theirs).abs().max()) / scale
    return err, err <= 1e-5


def main():
    d = sys.argv[1]
    torch.set_num_threads(1)
    ok_all = True
    for name in ("mha", "block"):
        state, _ = read_safetensors(f"{d}/{name}.safetensors")
        io, _ = read_safetensors(f"{d}/{name}-io.safetensors")
        if name == "mha":
            m = nn.MultiheadAttention(16, 4, dropout=0.0, bias=True, batch_first=True)
        else:
            m = nn.TransformerEncoderLayer(16, 4, 64, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        m.load_state_dict(state, strict=True)
        m.train()  # the plain (autograd) path, not the inference fast path
        x = io["x"].clone()
        mask = torch.triu(torch.full((7, 7), float("-inf")), diagonal=1)
        y = m(x, x, x, attn_mask=mask, need_weights=False)[0] if name == "mha" else m(x, src_mask=mask)
        (y * io["g"]).sum().backward()
        worst, ok = compare("y", io["y"], y.detach())
        for pname, p in m.named_parameters():
            err, good = compare(pname, io["grad." + pname], p.grad)
            worst, ok = max(worst, err), ok and good
        print(f"{'ok  ' if ok else 'FAIL'} {name}: output and {len(list(m.parameters()))} parameter "
              f"gradients agree with PyTorch to {worst:.2e} of their scale")
        ok_all = ok_all and ok
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
