#!/usr/bin/env python3
"""Reference PyTorch run of `ciphernet` (the TenSEAL tutorial-4 network) on MNIST / Fashion-MNIST,
to check what the issue's training recipe reaches outside unseen's trainer.

    python3 -m venv target/torch-venv && target/torch-venv/bin/pip install torch numpy
    target/torch-venv/bin/python bench/torch_ciphernet.py --data data/fashion-mnist --seed 0 [--ema 0.999]

Conv2d(1->4, k7, s3, bias) -> x^2 -> flatten 256 -> Linear(256->64) -> x^2 -> Linear(64->10),
CrossEntropyLoss, Adam(lr=1e-3, PyTorch defaults), batch 64, reshuffled every epoch, 10 epochs.
PyTorch default initialisation. Data read from the official IDX .gz files.

--norm none : x = pixel/255              (transforms.ToTensor() only, as in the TenSEAL tutorial)
--norm std  : x = (pixel/255 - mean)/std  with mean/std of the training set
"""
import argparse, gzip, json, os, struct, time
import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(root, split):
    pre = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(root, f"{pre}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(root, f"{pre}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


class ConvNet(nn.Module):
    def __init__(self, hidden=64, output=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=7, padding=0, stride=3)
        self.fc1 = nn.Linear(256, hidden)
        self.fc2 = nn.Linear(hidden, output)

    def forward(self, x):
        x = self.conv1(x)
        x = x * x
        x = x.view(-1, 256)
        x = self.fc1(x)
        x = x * x
        return self.fc2(x)


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    correct = sum((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(y), 1000))
    model.train()
    return correct / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/fashion-mnist")
    ap.add_argument("--norm", choices=["none", "std"], default="none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ema", type=float, default=0.0,
                    help="evaluate an exponential moving average of the weights with this decay, bias-corrected "
                         "early on as in unseen's trainer: d = min(decay, (1+t)/(10+t)); 0 = plain weights")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "test")
    if a.norm == "std":
        mean, std = xtr.mean().item(), xtr.std().item()
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
        print(json.dumps({"normalization": {"mean": round(mean, 4), "std": round(std, 4)}}))

    model = ConvNet()  # PyTorch default inits (kaiming_uniform_(a=sqrt(5)), bias U(+-1/sqrt(fan_in)))
    crit = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed)
    n = len(ytr)
    avg = [p.detach().clone() for p in model.parameters()] if a.ema > 0 else None
    step = 0
    t0 = time.time()
    hist = []
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n, generator=gen)  # like DataLoader(shuffle=True), drop_last=False
        loss_sum, batches = 0.0, 0
        for i in range(0, n, a.batch_size):
            idx = perm[i:i + a.batch_size]
            opt.zero_grad()
            loss = crit(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            step += 1
            if avg is not None:
                d = min(a.ema, (1.0 + step) / (10.0 + step))
                with torch.no_grad():
                    for q, p in zip(avg, model.parameters()):
                        q.mul_(d).add_(p.detach(), alpha=1.0 - d)
            loss_sum += loss.item()
            batches += 1
        if avg is not None:
            live = [p.detach().clone() for p in model.parameters()]
            with torch.no_grad():
                for p, q in zip(model.parameters(), avg):
                    p.copy_(q)
            acc = accuracy(model, xte, yte)
            with torch.no_grad():
                for p, q in zip(model.parameters(), live):
                    p.copy_(q)
        else:
            acc = accuracy(model, xte, yte)
        hist.append(acc)
        print(json.dumps({"epoch": epoch, "train_loss": round(loss_sum / batches, 5),
                          "test_accuracy": acc, "seconds": round(time.time() - t0, 1)}), flush=True)
    print(json.dumps({"final": True, "data": os.path.basename(os.path.normpath(a.data)), "norm": a.norm,
                      "ema": a.ema, "seed": a.seed, "test_accuracy": hist[-1], "peak": max(hist),
                      "peak_epoch": 1 + hist.index(max(hist)), "seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
