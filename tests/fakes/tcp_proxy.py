"""A TCP proxy on 127.0.0.1 in front of a local service (Azurite), that a test can cut and restore.

`cut()` does to the clients what a stopped Azurite does: every open connection is reset and
new ones are refused, while the data behind the proxy survives. `restore()` listens again on
the same port. The proxy reads the HTTP/1.1 framing of what the client sends (request line,
Content-Length), so a test can cut the line at an exact request: before the (n+1)-th
matching request reaches the service, or just after the service answered it (the answer is
lost: the change is stored, the client never hears of it).
"""
from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER = 256 * 1024


@dataclass
class _Link:
    """One client connection and its upstream connection."""

    client: socket.socket
    upstream: socket.socket
    lose_next_answer: bool = False
    closed: bool = False


@dataclass
class _CutPlan:
    """Cut when the request matching `match` number `after + 1` arrives."""

    match: bytes
    after: int
    lose_answer: bool
    seen: int = 0
    fired: threading.Event = field(default_factory=threading.Event)


class TcpProxy:
    """Forward 127.0.0.1:port to target_host:target_port; cut and restore on demand."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.requests: list[str] = []          # request lines seen, oldest first
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._plan: _CutPlan | None = None
        self._meeting: tuple[bytes, threading.Barrier] | None = None
        self._meeting_left = 0
        self._threads: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> TcpProxy:
        """Listen on a free loopback port."""
        self._listen()
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def is_up(self) -> bool:
        return self._accepting.is_set()

    def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a stopped service does."""
        with self._lock:
            listener, self._listener = self._listener, None
            links, self._links = self._links, []
            self._accepting.clear()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept loop at once
            listener.close()
        for link in links:
            self._close(link)

    def restore(self) -> None:
        """Listen again on the same port."""
        if not self.is_up:
            self._listen()

    def cut_at(self, match: str, *, after: int = 0, lose_answer: bool = False) -> threading.Event:
        """Cut at the (after+1)-th request whose request line contains `match`; return an event set then.

        lose_answer=False: that request never reaches the service. lose_answer=True: it reaches
        the service, and the line is cut as soon as the answer comes back (the answer is dropped).
        """
        plan = _CutPlan(match.encode("latin-1"), after, lose_answer)
        with self._lock:
            self._plan = plan
        return plan.fired

    def meet_at(self, match: str, parties: int = 2, timeout: float = 20.0) -> None:
        """Hold the next `parties` requests whose request line contains `match` until all have arrived.

        Two passes that would write at once then really do reach the service together.
        """
        with self._lock:
            self._meeting = (match.encode("latin-1"), threading.Barrier(parties, timeout=timeout))
            self._meeting_left = parties

    def count(self, match: str) -> int:
        """Return how many requests seen so far have `match` in their request line."""
        with self._lock:
            return sum(match in line for line in self.requests)

    # -- plumbing ------------------------------------------------------------------------------

    def _listen(self) -> None:
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)  # the old listening socket is gone only once it returns
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(100):  # bounded: the kernel may need a moment to release the port
            try:
                listener.bind(("127.0.0.1", self.port))
                break
            except OSError:
                threading.Event().wait(0.02)
        else:
            listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
            self._accepting.set()
        self._acceptor = self._spawn(self._accept_loop, listener)

    def _spawn(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name="tcp-proxy")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return thread

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._reset(client)
                continue
            for sock in (client, upstream):  # no Nagle: no 40 ms stall per request behind the proxy
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    self._close(link)
                    return
                self._links.append(link)
            self._spawn(self._client_to_upstream, link)
            self._spawn(self._upstream_to_client, link)

    def _client_to_upstream(self, link: _Link) -> None:
        buffer = b""
        body_left = 0
        while True:
            try:
                data = link.client.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._close(link)
                return
            buffer += data
            out = b""
            while buffer:
                if body_left:
                    chunk, buffer = buffer[:body_left], buffer[body_left:]
                    body_left -= len(chunk)
                    out += chunk
                    continue
                end = buffer.find(_HEADER_END)
                if end < 0:
                    if len(buffer) > _MAX_HEADER:  # not HTTP as we know it: just forward
                        out, buffer = out + buffer, b""
                    break
                head, buffer = buffer[:end + 4], buffer[end + 4:]
                body_left = _content_length(head)
                if not self._request_may_pass(link, head.split(b"\r\n", 1)[0]):
                    self.cut()
                    return
                out += head
            if out:
                try:
                    link.upstream.sendall(out)
                except OSError:
                    self._close(link)
                    return

    def _request_may_pass(self, link: _Link, request_line: bytes) -> bool:
        """Record a request; say whether it is forwarded (False: cut now, before it)."""
        barrier = None
        with self._lock:
            self.requests.append(request_line.decode("latin-1"))
            if self._meeting is not None and self._meeting[0] in request_line:
                barrier = self._meeting[1]
                self._meeting_left -= 1
                if self._meeting_left == 0:  # the last party: later requests pass freely
                    self._meeting = None
        if barrier is not None:
            # Bounded: a party that never came does not hold the others for ever.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        with self._lock:
            plan = self._plan
            if plan is None or plan.match not in request_line:
                return True
            plan.seen += 1
            if plan.seen <= plan.after:
                return True
            self._plan = None
        plan.fired.set()
        if plan.lose_answer:
            link.lose_next_answer = True
            return True
        return False

    def _upstream_to_client(self, link: _Link) -> None:
        while True:
            try:
                data = link.upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                self._close(link)
                return
            if link.lose_next_answer:
                self.cut()
                return
            try:
                link.client.sendall(data)
            except OSError:
                self._close(link)
                return

    def _close(self, link: _Link) -> None:
        if link.closed:
            return
        link.closed = True
        self._reset(link.client)
        for sock in (link.upstream,):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        """Close with RST (SO_LINGER 0), as a dying server's kernel does."""
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0
