#!/usr/bin/env python3
"""Classify a handwritten digit without showing it to the server.

    unseen serve --model models/ciphernet-mnist --http 127.0.0.1:8080     # in another terminal
    pip install ./python
    python examples/classify_digit.py [--server URL] [--model NAME] [--index I] [--image FILE.png]

The image is encrypted here, the server classifies the ciphertext, and only this script can
decrypt the answer. The first run makes a key folder and registers the evaluation keys with the
server (a few seconds); later runs reuse them.
"""

import argparse
import gzip
from pathlib import Path

import numpy as np

import unseen

REPO = Path(__file__).resolve().parents[1]


def mnist_test_image(index):
    with gzip.open(REPO / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        images = f.read()
    with gzip.open(REPO / "data/mnist/t10k-labels-idx1-ubyte.gz") as f:
        labels = f.read()
    image = np.frombuffer(images, dtype=np.uint8, offset=16 + index * 784, count=784).reshape(28, 28)
    return image, labels[8 + index]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="ciphernet-mnist")
    ap.add_argument("--index", type=int, default=0, help="MNIST test image (default 0)")
    ap.add_argument("--keys", help="key folder (default ~/.unseen/keys/<server>/<model>)")
    args = ap.parse_args()

    image, label = mnist_test_image(args.index)
    client = unseen.Client(args.server, model=args.model, keys=args.keys)
    result = client.predict(image)
    print(
        f"MNIST test image {args.index}: class {result.names[0]} "
        f"(probability {result.probabilities[0].max():.3f}), true class {label}"
    )


if __name__ == "__main__":
    main()
