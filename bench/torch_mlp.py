#!/usr/bin/python3
"""PyTorch side of bench/compare_torch.sh: the 784-256-128-10 ReLU MLP on
Fashion-MNIST, timed the way `anygrad train` and bench/mlp_step time it.

Workloads (comma-separated in --workloads):
  epoch-sgd, epoch-adam  one epoch over the 60000 training images, batch 128,
                         shuffled, SGD (lr 0.05, momentum 0.9) or Adam (lr 1e-3);
                         each step also reads the loss and counts correct
                         predictions, as anygrad train does. One warm-up epoch
                         (the first pays for page faults), then --epochs timed.
  step1                  the same loop at batch 1 over the first --steps images
                         (SGD lr 0.002, momentum 0.9): microseconds per step.
                         Real images, not one repeated sample: repeating a
                         sample drives the loss to zero and the gradients into
                         denormal floats, which are many times slower on x86.

Threads: --threads sets torch.set_num_threads; the BLAS pool is set by the
caller through OPENBLAS_NUM_THREADS (it must be in the environment before torch
is imported). Prints one line per workload:
  RESULT <workload> <unit> <sample> <sample> ...
Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import ctypes
import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_train(data_dir):
    x = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
    x = (x - x.mean()) / x.std(unbiased=False)  # as anygrad train: one mean and std
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def make_optim(kind, params, lr):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr)


def time_epochs(x, y, kind, lr, epochs, batch):
    torch.manual_seed(1)
    model = mlp()
    opt = make_optim(kind, model.parameters(), lr)
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


def openblas_core():
    """The kernel set the OpenBLAS behind torch's BLAS calls chose, if any."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    except OSError:
        return "unknown"
    for lib in sorted(libs):
        try:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            return f"{fn().decode()} ({os.path.basename(lib)})"
        except (OSError, AttributeError):
            continue
    return "not OpenBLAS: " + (", ".join(os.path.basename(l) for l in sorted(libs)) or "none")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="epoch-sgd,epoch-adam,step1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up")
    ap.add_argument("--steps", type=int, default=3000, help="images in a step1 epoch")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    (torch.rand(256, 256) @ torch.rand(256, 256)).sum().item()  # loads the BLAS
    print(f"INFO torch {torch.__version__} threads {torch.get_num_threads()} "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')} "
          f"openblas core {openblas_core()}", flush=True)
    x, y = load_train(a.data)
    for w in a.workloads.split(","):
        if w in ("epoch-sgd", "epoch-adam"):
            kind = w[len("epoch-"):]
            times, loss, acc = time_epochs(x, y, kind, 0.05 if kind == "sgd" else 1e-3,
                                           a.epochs, 128)
            unit = "s"
        elif w == "step1":
            n = min(a.steps, len(x))
            times, loss, acc = time_epochs(x[:n], y[:n], "sgd", 0.002, a.epochs, 1)
            times = [t / n * 1e6 for t in times]
            unit = "us"
        else:
            raise SystemExit(f"unknown workload {w}")
        print(f"INFO {w}: last epoch loss {loss:.4f} train acc {acc:.4f}", flush=True)
        print("RESULT", w, unit, *(f"{t:.4f}" for t in times), flush=True)

if __name__ == "__main__":
    main()
