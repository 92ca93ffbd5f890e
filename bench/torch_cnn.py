#!/usr/bin/python3
"""PyTorch side of bench/compare_torch.sh for the CNN: the TensorFlow-tutorial
net of `anygrad train --model cnn` and examples/fashion_cnn (conv 5x5x32 pad 2,
ReLU, max-pool 2, conv 5x5x64 pad 2, ReLU, max-pool 2, dense 1024, ReLU,
dropout 0.4, dense 10) on Fashion-MNIST with Adam (lr 1e-3).

Workload cnn-adam: one epoch over the first --limit training images (default
all 60000), batch --batch (default 128), shuffled; each step also reads the loss
and counts correct predictions, as anygrad train does. One warm-up epoch (the
first pays for page faults), then --epochs timed. Times are reported scaled to
60000 images (seconds a full epoch would take at that speed).

Threads: --threads sets torch.set_num_threads; the BLAS pool is set by the
caller through OPENBLAS_NUM_THREADS (it must be in the environment before torch
is imported). Prints
  RESULT cnn-adam s <sample> <sample> ...
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import os
import time

import torch
import torch.nn as nn

from torch_mlp import load_train, openblas_core


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(1024, 10))


def time_epochs(x, y, epochs, batch):
    torch.manual_seed(1)
    model = cnn()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(1)
    times = []
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen)
        correct = 0
        loss_sum = 0.0
        for at in range(0, len(x), batch):
            idx = perm[at:at + batch]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        if e > 0:  # epoch 0 is the warm-up
            times.append(time.perf_counter() - t0)
    return times, loss_sum / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images (0: all)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    (torch.rand(256, 256) @ torch.rand(256, 256)).sum().item()  # loads the BLAS
    print(f"INFO torch {torch.__version__} threads {torch.get_num_threads()} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} "
          f"openblas core {openblas_core()}", flush=True)
    x, y = load_train(a.data)
    if a.limit > 0:
        x, y = x[:a.limit], y[:a.limit]
    x = x.reshape(-1, 1, 28, 28).contiguous()
    times, loss, acc = time_epochs(x, y, a.epochs, a.batch)
    times = [t * 60000 / len(x) for t in times]
    print(f"INFO cnn-adam: last epoch loss {loss:.4f} train acc {acc:.4f}", flush=True)
    print("RESULT cnn-adam s", *(f"{t:.4f}" for t in times), flush=True)


if __name__ == "__main__":
    main()
