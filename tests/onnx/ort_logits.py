#!/usr/bin/env python3
"""Reference logits from onnxruntime, for the unseen-onnx import tests.

Usage: ort_logits.py MODEL INPUT [OUTPUT]

INPUT is a .npy array or raw little-endian float32 values; raw input is reshaped to
[N, *sample] with the sample shape taken from the model's input (all dimensions but the
first). A model exported with a fixed batch is run chunk by chunk. The logits ([N, classes],
float32) are written raw to OUTPUT, or printed one sample a line when OUTPUT is absent.
"""
import sys

import numpy as np
import onnxruntime as ort


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    model, inp = argv[1], argv[2]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    info = sess.get_inputs()[0]
    sample = [int(d) for d in info.shape[1:]]
    if inp.endswith(".npy"):
        x = np.load(inp).astype(np.float32)
    else:
        x = np.fromfile(inp, dtype="<f4").reshape([-1] + sample)
    batch = info.shape[0] if isinstance(info.shape[0], int) else len(x)
    outs = [sess.run(None, {info.name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    logits = np.concatenate(outs).astype("<f4")
    if len(argv) == 4:
        logits.tofile(argv[3])
    else:
        for row in logits:
            print(" ".join(repr(float(v)) for v in row))


if __name__ == "__main__":
    main(sys.argv)
