#!/usr/bin/env python3
"""Generate the small ONNX test models in tests/onnx/.

Developer-only: needs PyTorch (see /var/cache/unseen-torch-venv), onnx,
onnxscript, onnxruntime, numpy, scikit-learn. CI only consumes the
committed .onnx/.json outputs.

Usage (from the repo root):
    /var/cache/unseen-torch-venv/bin/python scripts/onnx_models/make_models.py

Outputs (tests/onnx/):
    small_cnn.onnx             Conv(1->4,k5,s2,p1) -> x*x -> AvgPool2 -> Flatten
                               -> Linear(144->32) -> x*x -> Linear(32->10)
                               TorchScript exporter, opset 13, dynamic batch.
    small_cnn_dynamo.onnx      same weights, dynamo exporter, opset 18, batch 1.
    small_cnn_bn_poly.onnx     Conv -> BatchNorm2d -> 0.1+0.5x+0.25x**2 -> AvgPool
                               -> Flatten -> Linear(144->32) -> poly -> Linear(32->10)
                               TorchScript, opset 13 (BN is kept: exported with
                               do_constant_folding=False so Conv+BN is not fused).
    small_cnn_bn_poly_dynamo.onnx  same, dynamo exporter, opset 18.
    small_cnn_relu.onnx        Conv -> ReLU -> AvgPool -> Flatten -> Linear(144->10)
    breast_cancer_mlp.onnx     Linear(30->16) -> x*x -> Linear(16->2), on
                               standardised features.
    breast_cancer.csv          the whole data set: 30 raw features and `label`.
    breast_cancer_scaler.json  {"mean": [...30], "std": [...30]}  x' = (x-mean)/std
    breast_cancer_test.json    held-out raw features, labels and reference
                               onnxruntime logits of breast_cancer_mlp.onnx.
    manifest.json              per-file input/output names+shapes, op types,
                               onnxruntime accuracy.

Image models take float32 input of shape [N,1,28,28] = pixels/255 (no
mean/std normalisation) and output 10 logits.
"""
import gzip
import json
import os
import struct
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn

SEED = 0
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MNIST_DIR = os.path.join(ROOT, "data", "mnist")
OUT_DIR = os.path.join(ROOT, "tests", "onnx")
IN_NAME = "input"
OUT_NAME = "logits"


def write_breast_cancer_csv(ds):
    """The whole data set (569 rows) as CSV: the 30 raw features, then `label` (0 malignant,
    1 benign), the input of `unseen eval --csv`."""
    names = [n.replace(" ", "_") for n in ds.feature_names]
    with open(os.path.join(OUT_DIR, "breast_cancer.csv"), "w") as f:
        f.write(",".join(names + ["label"]) + "\n")
        for row, label in zip(ds.data, ds.target):
            f.write(",".join(repr(float(v)) for v in row) + f",{int(label)}\n")


def seed_all(seed=SEED):
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    assert magic >> 8 == 0x08, f"unexpected IDX dtype in {path}"
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist():
    def imgs(name):
        x = load_idx(os.path.join(MNIST_DIR, name)).astype(np.float32) / 255.0
        return x[:, None, :, :]

    def labels(name):
        return load_idx(os.path.join(MNIST_DIR, name)).astype(np.int64)

    return (
        imgs("train-images-idx3-ubyte.gz"),
        labels("train-labels-idx1-ubyte.gz"),
        imgs("t10k-images-idx3-ubyte.gz"),
        labels("t10k-labels-idx1-ubyte.gz"),
    )


class Square(nn.Module):
    def forward(self, x):
        return x * x


class Poly(nn.Module):
    def forward(self, x):
        return 0.1 + 0.5 * x + 0.25 * x**2


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=5, stride=2, padding=1),  # 28 -> 13
        Square(),
        nn.AvgPool2d(2),  # 13 -> 6
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 32),
        Square(),
        nn.Linear(32, 10),
    )


def small_cnn_bn_poly():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=5, stride=2, padding=1),
        nn.BatchNorm2d(4),
        Poly(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 32),
        Poly(),
        nn.Linear(32, 10),
    )


def small_cnn_relu():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=5, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 10),
    )


def train(model, x, y, epochs=1, batch=128, lr=1e-3):
    g = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def export_torchscript(model, example, path, fold=True):
    torch.onnx.export(
        model,
        (example,),
        path,
        dynamo=False,
        opset_version=13,
        input_names=[IN_NAME],
        output_names=[OUT_NAME],
        dynamic_axes={IN_NAME: {0: "batch"}, OUT_NAME: {0: "batch"}},
        do_constant_folding=fold,
    )


def export_dynamo(model, example, path):
    # Static batch (= example's batch) keeps the graph free of Shape/Gather/
    # Concat shape arithmetic; Flatten then becomes a Reshape with a constant.
    prog = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=18,
        input_names=[IN_NAME],
        output_names=[OUT_NAME],
        external_data=False,
        verbose=False,
    )
    prog.save(path, external_data=False)


def describe(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    ops = []
    for n in m.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)
    return {
        "opset": [{"domain": o.domain, "version": o.version} for o in m.opset_import],
        "producer": f"{m.producer_name} {m.producer_version}",
        "inputs": [{"name": i.name, "shape": dims(i)} for i in m.graph.input],
        "outputs": [{"name": o.name, "shape": dims(o)} for o in m.graph.output],
        "op_types": ops,
        "node_count": len(m.graph.node),
        "initializers": [
            {"name": t.name, "dims": list(t.dims), "data_type": t.data_type}
            for t in m.graph.initializer
        ],
        "bytes": os.path.getsize(path),
    }


def ort_logits(path, x, batch_size=None):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    fixed = sess.get_inputs()[0].shape[0]
    if isinstance(fixed, int):
        batch_size = fixed
    if batch_size is None:
        return sess.run(None, {name: x})[0]
    return np.concatenate(
        [sess.run(None, {name: x[i : i + batch_size]})[0] for i in range(0, len(x), batch_size)]
    )


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(1)
    manifest = {}

    def record(fname, acc=None, torch_ref=None, x_ref=None):
        path = os.path.join(OUT_DIR, fname)
        info = describe(path)
        if torch_ref is not None:
            info["max_abs_diff_vs_torch"] = float(
                np.abs(ort_logits(path, x_ref) - torch_ref).max()
            )
        if acc is not None:
            info["ort_accuracy"] = acc
        manifest[fname] = info
        assert info["bytes"] < 200_000, f"{fname} too large: {info['bytes']}"
        print(f"{fname}: {info['bytes']} B, in={info['inputs']} out={info['outputs']}")
        print(f"  ops: {info['op_types']}  acc={acc}")

    xtr, ytr, xte, yte = load_mnist()
    x1 = torch.from_numpy(xte[:1])
    x_ref = xte[:16]

    def mnist_acc(path):
        return float((ort_logits(path, xte, 1000).argmax(1) == yte).mean())

    image_models = [
        ("small_cnn", small_cnn, True),
        ("small_cnn_bn_poly", small_cnn_bn_poly, False),
        ("small_cnn_relu", small_cnn_relu, None),
    ]
    for name, ctor, dynamo_too in image_models:
        seed_all()
        t0 = time.time()
        model = train(ctor(), xtr, ytr)
        print(f"[{name}] trained in {time.time() - t0:.1f}s")
        with torch.no_grad():
            ref = model(torch.from_numpy(x_ref)).numpy()
        # fold=False for the BN model so BatchNormalization survives in the graph.
        export_torchscript(model, x1, os.path.join(OUT_DIR, f"{name}.onnx"), fold=dynamo_too is not False)
        record(f"{name}.onnx", mnist_acc(os.path.join(OUT_DIR, f"{name}.onnx")), ref, x_ref)
        if dynamo_too is not None:
            p = os.path.join(OUT_DIR, f"{name}_dynamo.onnx")
            try:
                export_dynamo(model, x1, p)
                record(f"{name}_dynamo.onnx", mnist_acc(p), ref[:1], x_ref[:1])
            except Exception as e:  # report and keep going
                print(f"[{name}] dynamo export failed: {type(e).__name__}: {e}")

    # --- breast cancer MLP -------------------------------------------------
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    seed_all()
    ds = load_breast_cancer()
    X, y = ds.data.astype(np.float64), ds.target.astype(np.int64)
    Xtr, Xte, ytr_b, yte_b = train_test_split(X, y, test_size=0.2, random_state=SEED, stratify=y)
    mean = Xtr.mean(axis=0)
    std = Xtr.std(axis=0)  # population std, same as sklearn StandardScaler.scale_
    write_breast_cancer_csv(ds)
    with open(os.path.join(OUT_DIR, "breast_cancer_scaler.json"), "w") as f:
        json.dump(
            {"feature_names": list(ds.feature_names), "mean": mean.tolist(), "std": std.tolist()},
            f,
            indent=1,
        )
    Ztr = ((Xtr - mean) / std).astype(np.float32)
    Zte = ((Xte - mean) / std).astype(np.float32)
    mlp = nn.Sequential(nn.Linear(30, 16), Square(), nn.Linear(16, 2))
    train(mlp, Ztr, ytr_b, epochs=50, batch=32, lr=1e-3)
    p = os.path.join(OUT_DIR, "breast_cancer_mlp.onnx")
    export_torchscript(mlp, torch.from_numpy(Zte[:1]), p)
    logits = ort_logits(p, Zte)
    acc = float((logits.argmax(1) == yte_b).mean())
    with torch.no_grad():
        ref = mlp(torch.from_numpy(Zte)).numpy()
    record("breast_cancer_mlp.onnx", acc, ref, Zte)
    with open(os.path.join(OUT_DIR, "breast_cancer_test.json"), "w") as f:
        json.dump(
            {
                "features": Xte.tolist(),
                "labels": yte_b.tolist(),
                "ort_logits": logits.astype(float).tolist(),
            },
            f,
        )

    with open(os.path.join(OUT_DIR, "manifest.json"), "w") as f:
        json.dump(
            {
                "generator": "scripts/onnx_models/make_models.py",
                "torch": torch.__version__,
                "onnx": onnx.__version__,
                "onnxruntime": ort.__version__,
                "seed": SEED,
                "models": manifest,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
