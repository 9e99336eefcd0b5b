"""phe side of the keys.json interop test.

  keys_json.py decrypt KEYS V E     -> prints phe's decryption of EncryptedNumber(V, E)
  keys_json.py encrypt KEYS VALUE   -> prints {"v": ..., "e": ...} encrypted by phe
"""

import json
import sys

from phe import paillier


def load(path):
    with open(path) as f:
        keys = json.load(f)
    pub = paillier.PaillierPublicKey(n=int(keys["public_key"]["n"]))
    priv = paillier.PaillierPrivateKey(pub, int(keys["private_key"]["p"]), int(keys["private_key"]["q"]))
    return pub, priv


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    pub, priv = load(path)
    if cmd == "decrypt":
        print(repr(priv.decrypt(paillier.EncryptedNumber(pub, int(sys.argv[3]), int(sys.argv[4])))))
    elif cmd == "encrypt":
        text = sys.argv[3]
        value = int(text) if text.lstrip("-").isdigit() else float(text)
        x = pub.encrypt(value)
        print(json.dumps({"v": str(x.ciphertext()), "e": x.exponent}))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
