"""The encrypted-inference client: images or feature vectors in, classes out; the server never
sees either."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _native


class Prediction(NamedTuple):
    """What the server's encrypted answer decrypts to, one row per input."""

    classes: np.ndarray
    """Index of the most likely class of each input (int64, shape ``(n,)``)."""
    probabilities: np.ndarray
    """Softmax of the logits (float64, shape ``(n, classes)``)."""
    logits: np.ndarray
    """The decrypted logits (float64, shape ``(n, classes)``)."""
    names: List[str]
    """The class name of each input."""


def default_keys_dir(url: str, model: str) -> Path:
    """``~/.unseen/keys/<host_port>/<model>``: where a client keeps its keys unless told."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[-1]).strip("_")
    return Path(os.path.expanduser("~")) / ".unseen" / "keys" / host / model


class Client:
    """A client of one model on one unseen server.

    The first use fetches the model's client spec (``GET /v1/models/{name}``), makes a CKKS key
    folder (the secret key stays in it, mode 0600, never sent) and registers the evaluation keys
    with the server once; later uses, in this process or another, reuse the folder::

        import unseen
        client = unseen.Client("http://127.0.0.1:8080", model="ciphernet-mnist")
        client.predict(image).classes        # image: uint8 pixels, e.g. shape (28, 28)

    Many inputs at once (shape ``(n, ...)``) go as batches, one input per slot. An API token is
    read from the ``UNSEEN_TOKEN`` environment variable, a private CA from ``UNSEEN_CA``. Server
    refusals raise :class:`unseen.ServerError` with the server's error code.
    """

    def __init__(self, url: str, model: str, keys: Union[str, os.PathLike, None] = None):
        self._keys = Path(keys) if keys is not None else default_keys_dir(url, model)
        self._native = _native.Client(url, model, str(self._keys))

    @property
    def url(self) -> str:
        return self._native.url

    @property
    def model(self) -> str:
        return self._native.model

    @property
    def keys(self) -> Path:
        """The key folder."""
        return self._keys

    def key_id(self) -> str:
        """Makes or loads the key folder; the key id the server knows the keys by."""
        return self._native.ensure_keys()

    def input_shape(self) -> tuple:
        """``(channels, rows, columns)`` for an image model, ``(features,)`` otherwise."""
        return tuple(self._native.input_shape())

    def predict(self, inputs: Union[np.ndarray, Sequence]) -> Prediction:
        """Classifies one input or many.

        Images are uint8 pixels (0-255), normalised as the model was trained: one image of the
        model's shape (``(28, 28)`` or ``(1, 28, 28)`` for MNIST) or ``n`` of them
        (``(n, 28, 28)``). Feature vectors are floats, raw (the model's normalisation is applied
        here): ``(features,)`` or ``(n, features)``.
        """
        x = np.asarray(inputs)
        shape = self.input_shape()
        per = int(np.prod(shape))
        if x.size == 0 or x.size % per != 0:
            raise ValueError(f"inputs of shape {x.shape} do not hold whole inputs of shape {shape}")
        count = x.size // per
        if len(shape) == 3:
            if x.dtype != np.uint8:
                raise TypeError(
                    f"images are uint8 pixels (0-255), not {x.dtype}: use np.asarray(image, dtype=np.uint8)"
                )
            classes, probs, logits = self._native.predict_images(np.ascontiguousarray(x).ravel(), count)
        else:
            if x.dtype.kind not in "fiu":
                raise TypeError(f"feature vectors are numbers, not {x.dtype}")
            values = x.astype(np.float64).ravel()
            if not np.all(np.isfinite(values)):
                raise ValueError("feature vectors must be finite (no NaN or infinity)")
            classes, probs, logits = self._native.predict_features(values, count)
        names = self._native.class_names()
        return Prediction(
            classes=np.asarray(classes, dtype=np.int64),
            probabilities=np.asarray(probs, dtype=np.float64),
            logits=np.asarray(logits, dtype=np.float64),
            names=[names[c] if c < len(names) else str(c) for c in classes],
        )

    def predict_linear(self, features: Sequence[float]) -> float:
        """An encrypted prediction of a linear (Paillier) model: the features are encrypted with
        the key file ``paillier.json`` of the key folder (made the first time), the server
        computes on the ciphertexts, and the result is decrypted here."""
        values = [float(v) for v in features]
        if not all(np.isfinite(values)):
            raise ValueError("features must be finite (no NaN or infinity)")
        return self._native.predict_linear(values)

    def __repr__(self) -> str:
        return f"unseen.Client({self.url!r}, model={self.model!r}, keys={str(self._keys)!r})"
