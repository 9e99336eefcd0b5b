"""Paillier encryption compatible with python-paillier (``phe``), on numbers and numpy arrays.

The same encoding, exponents and overflow rules as phe, so ciphertexts move between the two in
both directions (:func:`to_phe`, :func:`from_phe`) and phe code can move over one call at a
time. Arrays are encrypted, decrypted and combined on every core with the GIL released::

    import numpy as np
    from unseen import paillier

    public_key, private_key = paillier.generate_paillier_keypair(2048)
    x = public_key.encrypt(np.array([1.5, -2.0, 3.25]))   # EncryptedArray of shape (3,)
    y = x * np.array([2.0, 0.5, 1.0]) + 1                 # element-wise, plaintext operands
    private_key.decrypt(y)                                # array([ 4. ,  0. ,  4.25])
    private_key.decrypt(x.dot(np.array([1.0, 1.0, 1.0]))) # 2.75

Values out of the encoding range raise ``OverflowError``; nothing wraps around silently.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import numpy as np

from ._native import (
    EncryptedArray,
    EncryptedNumber,
    PrivateKey,
    PublicKey,
    generate_keypair as _generate_keypair,
    load_keys,
    read_encrypted_number,
    read_keys,
    read_public_jwk,
)

__all__ = [
    "EncryptedArray",
    "EncryptedNumber",
    "PrivateKey",
    "PublicKey",
    "generate_paillier_keypair",
    "load_keys",
    "save_keys",
    "read_keys",
    "read_public_jwk",
    "read_encrypted_number",
    "to_phe",
    "from_phe",
]


def generate_paillier_keypair(n_length: int = 2048) -> Tuple[PublicKey, PrivateKey]:
    """A new key pair with an ``n_length``-bit modulus (phe's function of the same name)."""
    return _generate_keypair(n_length)


def save_keys(private_key: PrivateKey, path: "os.PathLike[str] | str", format: str = "keys-json") -> None:
    """Writes ``private_key`` to ``path``, readable by its owner only (mode 0600): the
    ``keys.json`` layout (``format="keys-json"``) or phe's private JWK (``format="jwk"``)."""
    if format == "keys-json":
        text = private_key.to_keys_json()
    elif format == "jwk":
        text = private_key.to_jwk("Paillier private key written by unseen")
    else:
        raise ValueError(f"unknown key format {format!r}: use 'keys-json' or 'jwk'")
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _phe():
    try:
        import phe  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("converting to or from phe needs python-paillier: pip install phe") from e
    return phe


def to_phe(obj: Any) -> Any:
    """The phe object equal to ``obj``: a ``PaillierPublicKey``, ``PaillierPrivateKey``,
    ``EncryptedNumber``, or (for an ``EncryptedArray``) a numpy object array of them."""
    phe = _phe()
    if isinstance(obj, PublicKey):
        return phe.PaillierPublicKey(obj.n)
    if isinstance(obj, PrivateKey):
        return phe.PaillierPrivateKey(phe.PaillierPublicKey(obj.public_key.n), obj.p, obj.q)
    if isinstance(obj, EncryptedNumber):
        return phe.EncryptedNumber(to_phe(obj.public_key), obj.ciphertext, obj.exponent)
    if isinstance(obj, EncryptedArray):
        pk = to_phe(obj.public_key)
        out = np.empty(obj.size, dtype=object)
        for i, x in enumerate(obj.tolist()):
            out[i] = phe.EncryptedNumber(pk, x.ciphertext, x.exponent)
        return out.reshape(obj.shape)
    raise TypeError(f"cannot convert {type(obj).__name__} to phe")


def from_phe(obj: Any) -> Any:
    """The unseen object equal to a phe key, encrypted number, or list/array of encrypted
    numbers (which becomes an ``EncryptedArray`` of the same shape)."""
    phe = _phe()
    if isinstance(obj, phe.PaillierPublicKey):
        return PublicKey(obj.n)
    if isinstance(obj, phe.PaillierPrivateKey):
        return PrivateKey(PublicKey(obj.public_key.n), obj.p, obj.q)
    if isinstance(obj, phe.EncryptedNumber):
        # phe obfuscates at encryption; the raw value is what it would send
        return EncryptedNumber(PublicKey(obj.public_key.n), obj.ciphertext(be_secure=False), obj.exponent)
    arr = np.asarray(obj, dtype=object)
    if arr.ndim > 0 and arr.size > 0 and all(isinstance(x, phe.EncryptedNumber) for x in arr.ravel()):
        keys = {}
        numbers = []
        for x in arr.ravel():
            pk = keys.setdefault(x.public_key.n, PublicKey(x.public_key.n))
            numbers.append(EncryptedNumber(pk, x.ciphertext(be_secure=False), x.exponent))
        return EncryptedArray.from_numbers(numbers, list(arr.shape))
    raise TypeError(f"cannot convert {type(obj).__name__} from phe")


def load(path: "os.PathLike[str] | str") -> Tuple[PublicKey, Optional[PrivateKey]]:
    """Alias of :func:`load_keys`."""
    return load_keys(os.fspath(path))
