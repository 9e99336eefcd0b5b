"""python-paillier (phe) side of `bench/compare_paillier.sh`: the same operations as
`unseen bench paillier`, printed as JSON lines with "impl": "phe"."""

import argparse
import json
import random
import statistics
import sys
import time

import phe
from phe import paillier


def measure(iters, fn):
    fn()
    times = []
    for _ in range(max(1, iters)):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {"ms_median": statistics.median(times), "ms_min": times[0], "ms_max": times[-1], "iters": len(times)}


def report(op, bits, stats, note):
    print(json.dumps({"impl": "phe", "op": op, "bits": bits, **stats, "note": note}), flush=True)


def serve_one(body, weights, intercept):
    """What the original phe server does per request: parse, sum(w * x) + b, obfuscate, reply."""
    data = json.loads(body)
    pk = paillier.PaillierPublicKey(n=int(data["public_key"]["n"]))
    xs = [paillier.EncryptedNumber(pk, int(c), int(e)) for c, e in data["values"]]
    result = sum(x * w for x, w in zip(xs, weights)) + intercept
    return json.dumps({"pubkey": {"n": pk.n}, "values": (str(result.ciphertext()), result.exponent)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--model", required=True, help="salary model JSON written by `unseen train linear`")
    a = ap.parse_args()
    try:
        import gmpy2  # noqa: F401
        backend = "gmpy2"
    except ImportError:
        backend = "pure python"
    print(f"phe {phe.__version__} with {backend}", file=sys.stderr)

    bits, iters = a.bits, a.iters
    report("keygen", bits, measure(max(3, iters // 5), lambda: paillier.generate_paillier_keypair(n_length=bits)), "")
    pk, sk = paillier.generate_paillier_keypair(n_length=bits)
    report("encrypt", bits, measure(iters, lambda: pk.encrypt(1234.5678)), "public key, r^n")
    ct = pk.encrypt(1234.5678)
    report("decrypt", bits, measure(iters, lambda: sk.decrypt(ct)), "CRT")

    with open(a.model) as f:
        model = json.load(f)
    rng = random.Random(100)
    cases = [
        ("predict_d4", model["coefficients"], model["intercept"], [24, 4, 6, 1]),
        ("predict_d100", [rng.uniform(-1000, 1000) for _ in range(100)], rng.uniform(-1000, 1000),
         [(i * 37 % 90) + 10 for i in range(100)]),
    ]
    for op, weights, intercept, features in cases:
        enc = [pk.encrypt(x) for x in features]
        body = json.dumps({"public_key": {"n": pk.n},
                           "values": [(str(x.ciphertext()), x.exponent) for x in enc]})
        reply = json.loads(serve_one(body, weights, intercept))
        got = sk.decrypt(paillier.EncryptedNumber(pk, int(reply["values"][0]), int(reply["values"][1])))
        expected = intercept + sum(w * x for w, x in zip(weights, features))
        assert abs(got - expected) <= 1e-6 * max(1.0, abs(expected)), (got, expected)
        report(op, bits, measure(iters, lambda: serve_one(body, weights, intercept)),
               "server side: parse request, sum(w*x) + b, obfuscate, reply JSON")


if __name__ == "__main__":
    main()
