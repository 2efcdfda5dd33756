"""Errors the twin's control API raises, mirroring a cloud's API errors.

The twin does not import the adapter seam; ``adapters.sim`` maps these onto
``adapters.base`` errors one to one.
"""


class TwinError(Exception):
    """Base of the twin's API errors."""


class QuotaExceeded(TwinError):
    pass


class NoValidHost(TwinError):
    pass


class Conflict(TwinError):
    pass


class NotFound(TwinError):
    pass


class TransientAPIError(TwinError):
    pass
