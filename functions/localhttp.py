"""Connection-level guards of the local host (devhost.py): time limits, listen backlog, allowed Host names.

- A request line and headers must arrive within HEADER_TIMEOUT of their first byte, and a body
  within the handler's `timeout`: a client that trickles bytes is dropped instead of holding a
  thread for ever (the socket timeout alone restarts with every byte).
- The listen backlog is LISTEN_BACKLOG: a burst of connections (a browser opening many at once,
  a benchmark) waits in the kernel's queue instead of timing out.
- Bound to a loopback address, the host answers only to `localhost`, `127.0.0.1` and `[::1]`
  (any port) in `Host`: a web page on another name that resolves to 127.0.0.1 (DNS rebinding)
  would otherwise read OMIS's pages, CSRF tokens included, as same-origin.
"""
from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Callable
from http.server import ThreadingHTTPServer

HEADER_TIMEOUT = 10.0    # seconds from the first byte of a request to the end of its headers
LISTEN_BACKLOG = 128
LOOPBACK_HOST_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


class LocalServer(ThreadingHTTPServer):
    """The threading HTTP server of the local host, with a listen backlog fit for bursts."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def is_loopback_address(address: str) -> bool:
    """Say whether a bound address is a loopback one (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address.lower() == "localhost"


def host_name(host_header: str) -> str:
    """Return the name part of a Host header, lower-case, without the port (`[::1]` keeps its brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def host_allowed(host_header: str, loopback_only: bool) -> bool:
    """Say whether the local host answers a request with this Host header."""
    return not loopback_only or host_name(host_header) in LOOPBACK_HOST_NAMES


class DeadlineReader(io.RawIOBase):
    """Reads a connection's socket under the time limits above (wrap it in io.BufferedReader).

    Idle (between requests) each read waits up to `timeout()`; from the first byte of a
    request its head must be complete by HEADER_TIMEOUT later; the body gets `timeout()` in
    all. Past a deadline a read raises TimeoutError, also when late bytes did arrive.
    """

    def __init__(self, sock: socket.socket, timeout: Callable[[], float], header_timeout: float,
                 clock: Callable[[], float]) -> None:
        super().__init__()
        self._sock = sock
        self._timeout = timeout
        self._header_timeout = header_timeout
        self._clock = clock
        self._deadline: float | None = None
        self._heading = True

    def readable(self) -> bool:
        return True

    def expect_request(self) -> None:
        """Start waiting for the next request line (the head's deadline starts with its first byte)."""
        self._heading, self._deadline = True, None

    def expect_body(self) -> None:
        """The head is complete: the body, if any, has `timeout()` seconds from now."""
        self._heading, self._deadline = False, self._clock() + self._timeout()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        wait = self._timeout()
        if self._deadline is not None:
            left = self._deadline - self._clock()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            wait = min(wait, left)
        self._sock.settimeout(wait)
        try:
            count = self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._timeout())  # what writing the answer may take
        if self._deadline is not None and self._clock() > self._deadline:
            raise TimeoutError("the request did not arrive in time")
        if count and self._heading and self._deadline is None:
            self._deadline = self._clock() + self._header_timeout
        return count
