#!/usr/bin/env python3
"""What `unseen.Client.predict` adds to the CLI's own round trip, on one running server.

    python bench/python_client.py URL MODEL [ROUNDS]   # see bench/compare_python.sh

Alternates, for ROUNDS rounds: one `Client.predict` of MNIST test image i, timed around the
call (numpy in, conversion, encryption, request, decryption, Prediction out), and one
`python -m unseen predict-image --json` of the same image, whose own timings (encrypt + round
trip + decrypt, measured inside the process) are what the CLI spends on the same work. Both
use the same key folder, registered beforehand. Prints one JSON line: the medians and the
overhead of the Python call in percent.
"""

import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import unseen

REPO = Path(__file__).resolve().parents[1]


def main():
    url, model = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    with gzip.open(REPO / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with tempfile.TemporaryDirectory() as keys:
        client = unseen.Client(url, model=model, keys=keys)
        client.predict(images[0])  # keys made and registered
        py, cli = [], []
        for i in range(rounds):
            t = time.perf_counter()
            client.predict(images[i])
            py.append((time.perf_counter() - t) * 1e3)
            out = subprocess.run(
                [sys.executable, "-m", "unseen", "predict-image", "--server", url, "--keys", keys,
                 "--mnist-index", str(i), "--data", str(REPO / "data"), "--json"],
                capture_output=True, text=True, check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            cli.append(r["client_encrypt_ms"] + r["round_trip_ms"] + r["client_decrypt_ms"])
    p, c = statistics.median(py), statistics.median(cli)
    print(json.dumps({"rounds": rounds, "client_predict_ms": p, "cli_round_trip_ms": c,
                      "overhead_percent": (p / c - 1) * 100}))


if __name__ == "__main__":
    main()
