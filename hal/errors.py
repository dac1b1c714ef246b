"""Exceptions of the hardware layer.

`hal` never imports `appliance`, so it has its own root, `HalError`; each exception also
inherits from the builtin it resembles so callers can catch either. The appliance turns these
into component failures with the same message.
"""


class HalError(Exception):
    """Root of every exception raised on purpose by `hal`."""


class BackendUnavailable(HalError, RuntimeError):
    """The configured hardware backend cannot start; the message names the fix."""


class DisplayError(HalError, ValueError):
    """A display was configured or driven in a way it does not support."""


class SerialLinkError(HalError, OSError):
    """The serial link is not usable (adapter missing, unplugged, bad URL)."""
