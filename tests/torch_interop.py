#!/usr/bin/python3
"""Loads an `anygrad train` checkpoint into PyTorch and evaluates it there.

The safetensors file is read with this file's own parser (the Debian PyTorch 1.13
has no safetensors package): 8-byte little-endian header length, JSON header,
raw little-endian data. The model is rebuilt as a torch.nn.Sequential with the
layer indices anygrad uses, and load_state_dict(strict=True) checks every name
and shape. Adam's state is checked against PyTorch's Adam state_dict layout by
loading it into torch.optim.Adam. Prints one line:
    RESULT model=<m> params=<n> loss=<test loss> acc=<test accuracy> correct=<k>
usage: torch_interop.py CHECKPOINT [DATA_DIR]
"""
import gzip
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return tensors, meta


def build(model):
    if model == "mlp":
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(), nn.Dropout(0.4),
        nn.Linear(1024, 10))


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


def main():
    path = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    tensors, meta = read_safetensors(path)
    model_name = meta["anygrad.model"]
    net = build(model_name)
    weights = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    net.load_state_dict(weights, strict=True)  # every name and shape must match
    net.eval()

    state = {k: v for k, v in tensors.items() if k.startswith("optimizer.state.")}
    if meta.get("optimizer.kind") == "Adam":
        params = list(net.parameters())
        opt = torch.optim.Adam(params, lr=float(meta["optimizer.lr"]))
        steps = [int(s) for s in meta["optimizer.param_steps"].split(",")]
        sd = {"state": {}, "param_groups": opt.state_dict()["param_groups"]}
        for i, p in enumerate(params):
            m, v = state[f"optimizer.state.{i}.exp_avg"], state[f"optimizer.state.{i}.exp_avg_sq"]
            assert m.shape == p.shape and v.shape == p.shape, f"optimizer state {i}: shape"
            sd["state"][i] = {"step": torch.tensor(float(steps[i])), "exp_avg": m,
                              "exp_avg_sq": v}
        opt.load_state_dict(sd)

    mean, sd = float(meta["anygrad.norm_mean"]), float(meta["anygrad.norm_std"])
    x = idx(f"{data}/t10k-images-idx3-ubyte.gz").to(torch.float32) / 255.0
    y = idx(f"{data}/t10k-labels-idx1-ubyte.gz").to(torch.int64)
    x = (x - mean) / sd
    x = x.reshape(-1, 784) if model_name == "mlp" else x.reshape(-1, 1, 28, 28)
    with torch.no_grad():
        losses, correct = [], 0
        for i in range(0, x.shape[0], 500):
            out = net(x[i:i + 500])
            losses.append(nn.functional.cross_entropy(out, y[i:i + 500], reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + 500]).sum())
    loss = float(sum(losses)) / x.shape[0]
    nparams = sum(p.numel() for p in net.parameters())
    print(f"RESULT model={model_name} params={nparams} loss={loss:.6f} "
          f"acc={correct / x.shape[0]:.4f} correct={correct}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
