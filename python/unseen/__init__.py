"""unseen: private machine-learning inference from Python.

* :mod:`unseen.paillier`: python-paillier-compatible Paillier on numbers and numpy arrays.
* :class:`unseen.Client`: encrypted inference against an ``unseen serve`` server.
"""

from . import paillier
from ._native import __version__
from .client import Client, Prediction
from .errors import ServerError

__all__ = ["Client", "Prediction", "ServerError", "paillier", "__version__"]
