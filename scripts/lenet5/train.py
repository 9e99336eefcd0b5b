#!/usr/bin/env python3
"""Train the shipped LeNet-5-style network on MNIST in PyTorch and export it to ONNX.

Developer-only (needs PyTorch; CI only consumes the committed files). The network is
LeNet-5 with its tanh replaced by a trained quadratic `a0 + a1 x + a2 x^2` after batch
normalisation, and average pooling, so every layer is one unseen compiles:

    conv 1->6 k5 p2, BN, quad, avgpool 2   28x28 -> 6x14x14
    conv 6->16 k5,   BN, quad, avgpool 2   -> 16x5x5
    linear 400->120, BN, quad
    linear 120->84,  BN, quad
    linear 84->10

Inputs are pixels / 255 (`--normalization unit` in unseen). Training: AdamW with a one-cycle
schedule, random shifts, small rotations and scalings of the training images, and an
exponential moving average of the weights and batch-norm statistics, which is what is exported.

Usage (from the repo root):
    /var/cache/unseen-torch-venv/bin/python scripts/lenet5/train.py OUT.onnx [--epochs 15]
then
    unseen import --onnx OUT.onnx --dataset mnist --normalization unit --out models/lenet5-mnist
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "onnx_models"))
from make_models import load_mnist  # noqa: E402


class Quad(nn.Module):
    """a0 + a1 x + a2 x^2 with trained scalars, starting near the identity plus a square."""

    def __init__(self):
        super().__init__()
        self.a0 = nn.Parameter(torch.tensor(0.0))
        self.a1 = nn.Parameter(torch.tensor(1.0))
        self.a2 = nn.Parameter(torch.tensor(0.1))

    def forward(self, x):
        return self.a0 + self.a1 * x + self.a2 * (x * x)


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), Quad(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), Quad(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.BatchNorm1d(120), Quad(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), Quad(),
        nn.Linear(84, 10),
    )


def augment(x, gen):
    """Random shift (up to 2 px), rotation (up to 8 degrees) and scale (0.92-1.08) per image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(8)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.08
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 2000]).argmax(1) for i in range(0, len(x), 2000)])
    return float((pred == y).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    xtr, ytr, xte, yte = (torch.from_numpy(a) for a in load_mnist())
    model = lenet5()
    batch = 128
    steps = max(1, args.epochs * math.ceil(len(xtr) / batch))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.999), use_buffers=True
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(augment(xtr[idx], gen)), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            ema.update_parameters(model)
            total += float(loss.detach()) * len(idx)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {total / len(xtr):.4f}, "
            f"test accuracy {accuracy(model, xte, yte):.4f}, "
            f"averaged {accuracy(ema.module, xte, yte):.4f} ({time.time() - started:.0f} s)",
            flush=True,
        )
    model = ema.module
    model.eval()
    torch.onnx.export(
        model,
        (xte[:1],),
        args.out,
        dynamo=False,
        opset_version=13,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=False,
    )
    print(f"wrote {args.out}: test accuracy {accuracy(model, xte, yte):.4f}")


if __name__ == "__main__":
    main()
