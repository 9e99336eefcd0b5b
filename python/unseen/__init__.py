"""unseen: private machine-learning inference from Python.

* :mod:`unseen.paillier`: python-paillier-compatible Paillier on numbers and numpy arrays.
* :class:`unseen.Client`: encrypted inference against an ``unseen serve`` server.
* :func:`unseen.import_onnx`, :func:`unseen.import_torch`, :func:`unseen.eval_encrypted`: the
  model side (the CLI's ``import`` and ``eval --encrypted``).
* ``python -m unseen ...``: the whole command line.
"""

from . import paillier
from ._native import __version__
from .client import Client, Prediction
from .errors import CommandError, ServerError
from .model import eval_encrypted, import_onnx, import_torch

__all__ = [
    "Client",
    "CommandError",
    "Prediction",
    "ServerError",
    "eval_encrypted",
    "import_onnx",
    "import_torch",
    "paillier",
    "__version__",
]
