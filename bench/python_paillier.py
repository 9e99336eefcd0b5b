#!/usr/bin/env python3
"""Encrypting and decrypting a numpy array of floats with a 2048-bit key: unseen.paillier against
python-paillier (phe, with gmpy2), side by side in one process. Prints one JSON line.

    python bench/python_paillier.py [COUNT]      # see bench/compare_python.sh
"""

import json
import os
import sys
import time

import numpy as np
import phe

from unseen import paillier


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    x = np.random.default_rng(0).normal(scale=1000.0, size=count)
    pk, sk = paillier.generate_paillier_keypair(2048)
    ppk, psk = paillier.to_phe(pk), paillier.to_phe(sk)

    enc, t_enc = timed(lambda: pk.encrypt(x))
    dec, t_dec = timed(lambda: sk.decrypt(enc))
    assert np.array_equal(dec, x)
    # the private key's holder may encrypt through the CRT (phe has no such path)
    enc_sk, t_enc_sk = timed(lambda: sk.encrypt(x))
    assert np.array_equal(sk.decrypt(enc_sk), x)
    penc, tp_enc = timed(lambda: [ppk.encrypt(float(v)) for v in x])
    pdec, tp_dec = timed(lambda: np.array([psk.decrypt(c) for c in penc]))
    assert np.array_equal(pdec, x)
    # both directions interoperate on these very arrays
    assert np.array_equal(sk.decrypt(paillier.from_phe(penc)), x)

    print(json.dumps({
        "count": count,
        "threads": os.environ.get("RAYON_NUM_THREADS", "all"),
        "gmpy2": bool(getattr(phe.util, "HAVE_GMP", False) or "gmpy2" in sys.modules),
        "unseen_encrypt_s": t_enc,
        "unseen_decrypt_s": t_dec,
        "unseen_encrypt_private_key_s": t_enc_sk,
        "phe_encrypt_s": tp_enc,
        "phe_decrypt_s": tp_dec,
        "encrypt_speedup": tp_enc / t_enc,
        "encrypt_private_key_speedup": tp_enc / t_enc_sk,
        "decrypt_speedup": tp_dec / t_dec,
    }))


if __name__ == "__main__":
    main()
