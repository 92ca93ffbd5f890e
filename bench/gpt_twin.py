#!/usr/bin/python3
"""PyTorch twin of examples/char_gpt.c: the same corpus, split, model, init,
optimizer and schedule, so that the two can be compared in one run
(bench/compare_gpt.sh). Prints lines in char_gpt's format:
    step N  lr X  train loss X  val loss X  X ms/step (median)
usage: gpt_twin.py [--text FILE_OR_DIR] [--steps N] [--threads N] [--eval-every N]
                   [--eval-batches N] [--batch N] [--context N] [--layers N]
                   [--heads N] [--width N] [--device cpu|cuda]"""
import argparse
import math
import os
import resource
import statistics
import sys
import time

import torch
from torch import nn


def load_text(path):
    if not os.path.isdir(path):
        with open(path, "rb") as f:
            return f.read()
    data = b""
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.startswith(".") or name.endswith(".dat") or name.endswith(".u8") or not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            data += f.read()
    return data


class GPT(nn.Module):
    def __init__(self, vocab, context, layers, heads, width):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(context, width)
        self.h = nn.Sequential(*[nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0,
                                                            activation="gelu", batch_first=True,
                                                            norm_first=True) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        for w in (self.wte.weight, self.wpe.weight, self.lm_head.weight):
            nn.init.normal_(w, 0.0, 0.02)

    def forward(self, idx):
        T = idx.shape[1]
        mask = torch.triu(torch.full((T, T), float("-inf"), device=idx.device), diagonal=1)
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x, src_mask=mask)
        return self.lm_head(self.ln_f(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", default="/usr/share/games/fortunes")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-batches", type=int, default=50)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    text = load_text(a.text)
    vocab = sorted(set(text))
    stoi = {b: i for i, b in enumerate(vocab)}
    tok = torch.tensor([stoi[b] for b in text], dtype=torch.long)
    split = len(tok) // 10 * 9
    dev = torch.device(a.device)
    model = GPT(len(vocab), a.context, a.layers, a.heads, a.width).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    warmup, lr0, min_lr = 100, 1e-3, 1e-4
    print(f"gpt_twin on {dev} ({torch.get_num_threads()} threads): {len(text)} bytes ({split} train), "
          f"vocabulary {len(vocab)}, {sum(p.numel() for p in model.parameters())} parameters", flush=True)

    def batch(lo, hi):
        off = torch.randint(lo, hi - a.context - 1, (a.batch,))
        x = torch.stack([tok[o:o + a.context] for o in off]).to(dev)
        y = torch.stack([tok[o + 1:o + 1 + a.context] for o in off]).to(dev)
        return x, y

    def loss_of(x, y):
        logits = model(x)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def evaluate(lo, hi):
        with torch.no_grad():
            return sum(float(loss_of(*batch(lo, hi))) for _ in range(a.eval_batches)) / a.eval_batches

    times = []
    for step in range(a.steps):
        if step < warmup:
            lr = lr0 * (step + 1) / warmup
        else:
            t = (step - warmup) / max(1, a.steps - warmup)
            lr = min_lr + 0.5 * (lr0 - min_lr) * (1 + math.cos(math.pi * t))
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        model.train()
        loss = loss_of(*batch(0, split))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        if step == a.steps - 1 or (step + 1) % a.eval_every == 0:
            model.eval()
            tr, val = evaluate(0, split), evaluate(split, len(tok))
            med = statistics.median(times[10:] if len(times) > 10 else times)
            print(f"step {step + 1:5d}  lr {lr:.2e}  train loss {tr:.4f}  val loss {val:.4f}  "
                  f"{1e3 * med:.1f} ms/step (median)", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {rss / 1024:.0f} MB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
