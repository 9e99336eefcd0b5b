"""Exceptions raised by unseen."""


class ServerError(Exception):
    """The server refused a request: ``code`` is its machine-readable error code (for example
    ``unknown_model``, ``unauthorized``, ``rate_limited``), ``message`` its readable line."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CommandError(Exception):
    """An unseen command (import, eval) failed; the message is the command's one error line."""
