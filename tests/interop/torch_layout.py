"""Reference forward pass of an unseen CNN model folder in numpy, with PyTorch's semantics and
tensor layouts (conv weight [out, in, kh, kw] as cross-correlation, dense weight [out, in],
flatten in C, H, W order). Used by the interop tests:

  torch_layout.py eval MODEL_DIR DATA_DIR LIMIT     -> {"accuracy": ..., "predictions": [...]}
  torch_layout.py resave MODEL_DIR OUT.safetensors  -> the weights re-written by safetensors.numpy
"""

import gzip
import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def load_images(data_dir, dataset, limit):
    with gzip.open(f"{data_dir}/{dataset}/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{data_dir}/{dataset}/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return images[:limit], labels[:limit]


def forward(card, tensors, x):
    conv = fc = 0
    for layer in card["architecture"]["layers"]:
        kind = layer["type"]
        if kind == "conv2d":
            conv += 1
            w, b = tensors[f"conv{conv}.weight"], tensors[f"conv{conv}.bias"]
            p, s, k = layer["padding"], layer["stride"], layer["kernel"]
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
            x = np.einsum("nchwij,ocij->nohw", win, w) + b[None, :, None, None]
        elif kind == "square":
            x = x * x
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif kind == "linear":
            fc += 1
            x = x @ tensors[f"fc{fc}.weight"].T + tensors[f"fc{fc}.bias"]
        else:
            raise SystemExit("unsupported layer " + kind)
    return x


def main():
    cmd, model = sys.argv[1], sys.argv[2]
    with open(f"{model}/model.json") as f:
        card = json.load(f)
    tensors = {k: v.astype(np.float64) for k, v in load_file(f"{model}/model.safetensors").items()}
    if cmd == "resave":
        save_file({k: v.astype(np.float32) for k, v in tensors.items()}, sys.argv[3])
        return
    data_dir, limit = sys.argv[3], int(sys.argv[4])
    images, labels = load_images(data_dir, card["dataset"], limit)
    norm = card["normalization"]
    x = ((images.astype(np.float64) / 255.0 - norm["mean"]) / norm["std"])[:, None, :, :]
    pred = forward(card, tensors, x).argmax(axis=1)
    print(json.dumps({"accuracy": float((pred == labels).mean()), "predictions": pred.tolist()}))


if __name__ == "__main__":
    main()
