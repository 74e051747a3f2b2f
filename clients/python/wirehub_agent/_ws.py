"""The WebSocket client underneath, from python3-websockets: the legacy
asyncio client of websockets 10-12 (Debian bookworm ships 10.4) or the
new one of websockets 13 and later, which names the header option
differently and reports a refused handshake differently."""

try:
    from websockets.asyncio.client import connect as _connect
    _HEADERS = "additional_headers"
except ImportError:
    from websockets import connect as _connect
    _HEADERS = "extra_headers"

from websockets.exceptions import (ConnectionClosed, InvalidHandshake,
                                   WebSocketException)

__all__ = ["ConnectionClosed", "HandshakeRefused", "WebSocketException",
           "connect"]

# device_command payloads are at most 256 KiB; leave room
MAX_MESSAGE = 4 * 1024 * 1024


class HandshakeRefused(Exception):
    """The server answered the upgrade with an HTTP status (401, 503...)."""

    def __init__(self, status):
        super().__init__("the server refused the connection: HTTP %d"
                         % status)
        self.status = status


def _status_of(exc):
    status = getattr(exc, "status_code", None)            # websockets < 13
    if status is None:
        response = getattr(exc, "response", None)         # websockets >= 13
        status = getattr(response, "status_code", None)
    return status


async def connect(url, token, open_timeout, ping_interval):
    """An open connection with the token in the Authorization header (not
    in the URL, where proxies log it); HandshakeRefused with the status
    when the server says no."""
    options = {
        _HEADERS: {"Authorization": "Bearer " + token},
        "open_timeout": open_timeout,
        "close_timeout": 5,
        "ping_interval": ping_interval,
        "ping_timeout": ping_interval,
        "max_size": MAX_MESSAGE,
    }
    try:
        return await _connect(url, **options)
    except InvalidHandshake as exc:
        status = _status_of(exc)
        if status is None:
            raise
        raise HandshakeRefused(status) from None
