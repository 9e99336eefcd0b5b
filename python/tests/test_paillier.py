"""unseen.paillier against exact integer arithmetic and against python-paillier, both ways."""

import os
import random
import stat
from fractions import Fraction

import numpy as np
import phe
import pytest

from unseen import paillier


@pytest.fixture(scope="module")
def keys():
    return paillier.generate_paillier_keypair(2048)


def test_integers_are_exact(keys):
    pk, sk = keys
    rng = random.Random(1)
    xs = [rng.randrange(-(2**200), 2**200) for _ in range(40)] + [0, 1, -1]
    ws = [rng.randrange(-(2**60), 2**60) for _ in xs]
    enc = pk.encrypt(np.array(xs, dtype=object))
    assert enc.shape == (len(xs),)
    # element-wise products and sums, exactly (no float anywhere)
    prod = enc * np.array(ws, dtype=np.int64)
    got = [sk.decrypt(x) for x in prod.tolist()]
    assert got == [x * w for x, w in zip(xs, ws)]
    total = enc.sum()
    assert sk.decrypt(total) == sum(xs)
    shifted = enc + 7
    assert [sk.decrypt(x) for x in shifted.tolist()] == [x + 7 for x in xs]
    assert sk.decrypt(pk.encrypt(5) - pk.encrypt(12)) == -7
    assert sk.decrypt(3 - pk.encrypt(12)) == -9


def test_floats_match_phe_exactly(keys):
    pk, sk = keys
    rng = np.random.default_rng(2)
    x = rng.normal(scale=100.0, size=(4, 5))
    w = rng.normal(size=(4, 5))
    enc = pk.encrypt(x)
    assert enc.shape == (4, 5)
    np.testing.assert_allclose(sk.decrypt(enc), x, rtol=0, atol=1e-12)
    # the same operations on phe's side decrypt to the same floats, bit for bit
    y = enc * w + 1.5
    phe_sk = paillier.to_phe(sk)
    phe_y = paillier.to_phe(y)
    ours = sk.decrypt(y)
    theirs = np.vectorize(phe_sk.decrypt, otypes=[float])(phe_y)
    assert np.array_equal(ours, theirs)
    d = enc.tolist()[0].public_key.encrypt(0.0)
    flat = pk.encrypt(x.ravel())
    dot = flat.dot(w.ravel())
    expected = sum(phe.EncryptedNumber(paillier.to_phe(pk), c.ciphertext, c.exponent) * float(wi)
                   for c, wi in zip(flat.tolist(), w.ravel()))
    assert sk.decrypt(dot) == phe_sk.decrypt(expected)
    assert sk.decrypt(d) == 0.0


def test_phe_to_unseen_and_back():
    phe_pk, phe_sk = phe.generate_paillier_keypair(n_length=2048)
    pk, sk = paillier.from_phe(phe_pk), paillier.from_phe(phe_sk)
    assert pk == sk.public_key and pk.n == phe_pk.n
    # phe encrypts, unseen computes and decrypts
    theirs = [phe_pk.encrypt(v) for v in [1.25, -3, 10**20, 0.1]]
    arr = paillier.from_phe(theirs)
    assert arr.shape == (4,)
    assert list(sk.decrypt(arr * 2)) == [2.5, -6.0, 2.0 * 10**20, 0.2]
    # unseen encrypts, phe decrypts
    ours = pk.encrypt(np.array([0.5, -7.75]))
    back = paillier.to_phe(ours)
    assert [phe_sk.decrypt(x) for x in back] == [0.5, -7.75]
    # phe's encrypted-number JSON and JWK files read in both directions
    enc = pk.encrypt(42)
    again = paillier.read_encrypted_number(enc.to_json(), pk)
    assert sk.decrypt(again) == 42
    assert paillier.read_public_jwk(pk.to_jwk()) == pk


def test_key_files(tmp_path, keys):
    pk, sk = keys
    for fmt in ["keys-json", "jwk"]:
        path = tmp_path / f"k-{fmt}"
        paillier.save_keys(sk, path, format=fmt)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        pk2, sk2 = paillier.load_keys(path)
        assert pk2 == pk and sk2.p == sk.p and sk2.q == sk.q
    with pytest.raises(ValueError):
        paillier.save_keys(sk, tmp_path / "x", format="pem")
    with pytest.raises(ValueError):
        paillier.load_keys(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{\"public_key\": 5}")
    with pytest.raises(ValueError):
        paillier.load_keys(tmp_path / "bad.json")


def test_errors_are_exceptions(keys):
    pk, sk = keys
    # out of the encoding range: never a wrong number
    with pytest.raises(OverflowError):
        pk.encrypt(pk.n)
    big = pk.encrypt(pk.n // 4)
    with pytest.raises(OverflowError):
        sk.decrypt(big * 2)
    with pytest.raises(ValueError):
        pk.encrypt(float("nan"))
    with pytest.raises(TypeError):
        pk.encrypt(np.array(["a", "b"]))
    with pytest.raises(TypeError):
        pk.encrypt(True)
    enc = pk.encrypt(np.arange(3.0))
    with pytest.raises(ValueError):
        enc + np.zeros(4)
    with pytest.raises(TypeError):
        enc * enc
    with pytest.raises(TypeError):
        pk.encrypt(1) * pk.encrypt(2)
    with pytest.raises(ValueError):
        enc.dot(np.ones(2))
    other, _ = paillier.generate_paillier_keypair(2048)
    with pytest.raises(ValueError):
        pk.encrypt(1) + other.encrypt(1)
    with pytest.raises(ValueError):
        paillier.PublicKey(10)


def test_private_key_encryption_is_the_same_scheme(keys):
    pk, sk = keys
    x = np.linspace(-5, 5, 11)
    assert np.array_equal(sk.decrypt(sk.encrypt(x)), x)
    assert sk.decrypt(sk.encrypt(3) + pk.encrypt(4)) == 7
    assert Fraction(sk.decrypt(pk.encrypt(0.1))) == Fraction(0.1)
