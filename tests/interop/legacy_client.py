"""A python-paillier client written the way the original salary service's client is: it keeps
its keys in keys.json, encrypts four features with phe, sends
{"public_key": {"n": N}, "values": [[ciphertext, exponent], ...]} over TCP with no delimiter,
reads until the reply ends in "]}", and decrypts. Used by the interop tests against
`unseen serve --legacy-tcp`.

Prints one JSON line: what the server returned (decrypted) and what phe computes locally
for the same model (the exact value a phe server would have returned).
"""

import argparse
import json
import os
import socket

from phe import paillier


def get_keys(path, bits):
    if os.path.exists(path):
        with open(path) as f:
            keys = json.load(f)
        pub = paillier.PaillierPublicKey(n=int(keys["public_key"]["n"]))
        priv = paillier.PaillierPrivateKey(pub, keys["private_key"]["p"], keys["private_key"]["q"])
        return pub, priv
    pub, priv = paillier.generate_paillier_keypair(n_length=bits)
    with open(path, "w") as f:
        json.dump({"public_key": {"n": pub.n}, "private_key": {"p": priv.p, "q": priv.q}}, f)
    return pub, priv


def serialize(pub, data):
    enc = [pub.encrypt(x) for x in data]
    return json.dumps({"public_key": {"n": pub.n}, "values": [(str(x.ciphertext()), x.exponent) for x in enc]})


def recv_reply(sock):
    data = b""
    while not data.endswith(b"]}"):
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("connection closed before the reply ended in ]}: %r" % data[:200])
        data += chunk
    return json.loads(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--features", default="24,4,6,1")
    ap.add_argument("--requests", type=int, default=2, help="requests sent on one connection")
    a = ap.parse_args()
    pub, priv = get_keys(a.keys, a.bits)
    features = [int(x) for x in a.features.split(",")]
    with open(a.model) as f:
        model = json.load(f)
    # What a phe server computes for the same request (weights *and* intercept).
    local = sum(pub.encrypt(x) * w for x, w in zip(features, model["coefficients"])) + model["intercept"]
    expected = priv.decrypt(local)
    results = []
    with socket.create_connection(("127.0.0.1", a.port)) as sock:
        for _ in range(a.requests):
            sock.sendall(serialize(pub, features).encode())
            reply = recv_reply(sock)
            assert int(reply["pubkey"]["n"]) == pub.n
            answer = paillier.EncryptedNumber(pub, int(reply["values"][0]), int(reply["values"][1]))
            results.append(priv.decrypt(answer))
    print(json.dumps({"decrypted": results, "expected": expected,
                      "plain": model["intercept"] + sum(w * x for w, x in zip(model["coefficients"], features))}))


if __name__ == "__main__":
    main()
