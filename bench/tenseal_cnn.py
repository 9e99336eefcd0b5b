"""TenSEAL side of the encrypted-CNN comparison: the reference system's evaluation of an unseen
model folder (ciphernet architecture) on CKKS-encrypted MNIST / Fashion-MNIST test images, with
TenSEAL's own packing (im2col encoding, conv2d_im2col per channel, pack_vectors, mm).

Prints one JSON object: per-image server time, client encryption/decryption time, sizes of the
evaluation keys and of one uploaded image, accuracy and agreement with the plaintext model.

  python bench/tenseal_cnn.py --model models/ciphernet-mnist --images 20 [--threads 1]
"""

import argparse
import gzip
import json
import statistics
import time

import numpy as np
import tenseal as ts
from safetensors.numpy import load_file


def load_test(data_dir, dataset, limit):
    with gzip.open(f"{data_dir}/{dataset}/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{data_dir}/{dataset}/t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return images[:limit], labels[:limit]


def plain_logits(w, x):
    win = np.lib.stride_tricks.sliding_window_view(x, (7, 7))[::3, ::3]  # 8 x 8 x 7 x 7
    conv = np.einsum("hwij,oij->ohw", win, w["conv1.weight"][:, 0]) + w["conv1.bias"][:, None, None]
    h = (conv * conv).reshape(-1)
    h = h @ w["fc1.weight"].T + w["fc1.bias"]
    h = h * h
    return h @ w["fc2.weight"].T + w["fc2.bias"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="data")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    with open(f"{a.model}/model.json") as f:
        card = json.load(f)
    if card["architecture"]["name"] != "ciphernet":
        raise SystemExit("the TenSEAL reference evaluates the ciphernet architecture only")
    w = {k: v.astype(np.float64) for k, v in load_file(f"{a.model}/model.safetensors").items()}
    norm = card["normalization"]
    images, labels = load_test(a.data, card["dataset"], a.images)

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192,
                     coeff_mod_bit_sizes=[31, 26, 26, 26, 26, 26, 26, 31], n_threads=a.threads)
    ctx.global_scale = 2 ** 26
    ctx.generate_galois_keys()
    eval_keys = len(ctx.serialize(save_public_key=False, save_secret_key=False,
                                  save_galois_keys=True, save_relin_keys=True))

    server, enc_t, dec_t, upload = [], [], [], 0
    correct = agree = 0
    max_err = 0.0
    for img, label in zip(images, labels):
        x = (img.astype(np.float64) / 255.0 - norm["mean"]) / norm["std"]
        t = time.perf_counter()
        enc_x, windows = ts.im2col_encoding(ctx, x.tolist(), 7, 7, 3)
        enc_t.append(time.perf_counter() - t)
        upload = len(enc_x.serialize())
        t = time.perf_counter()
        channels = [enc_x.conv2d_im2col(k[0].tolist(), windows) + float(b)
                    for k, b in zip(w["conv1.weight"], w["conv1.bias"])]
        y = ts.CKKSVector.pack_vectors(channels)
        y.square_()
        y = y.mm(w["fc1.weight"].T.tolist()) + w["fc1.bias"].tolist()
        y.square_()
        y = y.mm(w["fc2.weight"].T.tolist()) + w["fc2.bias"].tolist()
        server.append(time.perf_counter() - t)
        download = len(y.serialize())
        t = time.perf_counter()
        out = np.array(y.decrypt())
        dec_t.append(time.perf_counter() - t)
        ref = plain_logits(w, x)
        max_err = max(max_err, float(np.abs(out - ref).max()))
        correct += int(out.argmax() == label)
        agree += int(out.argmax() == ref.argmax())
    n = len(labels)
    print(json.dumps({
        "impl": "tenseal", "version": ts.__version__, "threads": a.threads, "images": n,
        "server_single_image_ms": 1e3 * statistics.median(server),
        "client_encrypt_ms": 1e3 * statistics.median(enc_t),
        "client_decrypt_ms": 1e3 * statistics.median(dec_t),
        "eval_keys_bytes": eval_keys, "upload_bytes": upload, "download_bytes": download,
        "accuracy": correct / n, "agreement": agree / n, "max_logit_error": max_err,
    }))


if __name__ == "__main__":
    main()
