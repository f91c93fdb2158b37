"""The local host's route matching and timer schedule, on a small app of its own."""
from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
import requests

from functions import devhost, localhttp
from tests.support import running


def _make_app(calls: list):
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="{empty:maxlength(0)?}", methods=["GET"])
    def root(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("root")

    @app.route(route="", methods=["GET"])
    def named(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("named")

    @app.route(route="n/{id:int}", methods=["GET"])
    def numeric(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("n " + req.route_params["id"])

    @app.route(route="items", methods=["GET", "POST"])
    def items(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"items {req.method} {req.params.get('q', '')}")

    @app.route(route="items/{*rest}", methods=["GET"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("item " + req.route_params["rest"])

    @app.route(route="users/{name}/card", methods=["GET"])
    def card(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("card " + req.route_params["name"])

    @app.timer_trigger(schedule="%TEST_SCHEDULE%", arg_name="timer", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        calls.append(timer.past_due)

    return app


@pytest.fixture(scope="module")
def app_and_calls():
    calls: list = []
    mp = pytest.MonkeyPatch()
    mp.setenv("TEST_SCHEDULE", "0 */10 * * * *")
    app = _make_app(calls)
    devhost.collect(app)
    mp.undo()
    return app, calls


def _get(app, method, path, body=b""):
    routes, _ = devhost.collect(app)
    return devhost.dispatch(routes, method, "http://h" + path, {}, body)


@pytest.mark.parametrize("path, expected", [
    ("/", "root"),
    ("/items", "items GET "),
    ("/items?q=%D0%B0", "items GET а"),
    ("/items/abc", "item abc"),
    ("/items/%D0%A2%D0%9E-2026%2F77", "item ТО-2026/77"),
    ("/items/ТО-2026/77", "item ТО-2026/77"),
    ("/users/anna/card", "card anna"),
    ("/named", "named"),  # an empty route is the function's name, as under the real host
    ("/n/42", "n 42"),
])
def test_routes_match_their_templates(app_and_calls, path, expected):
    resp = _get(app_and_calls[0], "GET", path)
    assert resp.status_code == 200 and resp.get_body().decode() == expected


def test_unknown_path_is_404(app_and_calls):
    assert _get(app_and_calls[0], "GET", "/nothing").status_code == 404
    assert _get(app_and_calls[0], "GET", "/users/anna").status_code == 404
    assert _get(app_and_calls[0], "GET", "/anything").status_code == 404  # maxlength(0) holds
    assert _get(app_and_calls[0], "GET", "/n/abc").status_code == 404


def test_wrong_method_is_405_with_allow(app_and_calls):
    resp = _get(app_and_calls[0], "DELETE", "/items")
    assert resp.status_code == 405 and resp.headers["Allow"] == "GET, POST"


def test_collect_can_be_called_again(app_and_calls):
    routes, timers = devhost.collect(app_and_calls[0])
    assert len(routes) == 6 and [t.name for t in timers] == ["tick"]


def test_timer_runs_on_its_ncrontab_schedule(app_and_calls):
    app, calls = app_and_calls
    _, timers = devhost.collect(app)
    start = datetime(2026, 11, 26, 10, 1, 30, tzinfo=timezone.utc)
    runner = devhost.TimerRunner(timers, clock=lambda: start)
    assert runner.next_run["tick"] == datetime(2026, 11, 26, 10, 10, tzinfo=timezone.utc)
    calls.clear()
    assert runner.run_due(start + timedelta(minutes=5)) == []
    assert runner.run_due(datetime(2026, 11, 26, 10, 10, 0, tzinfo=timezone.utc)) == ["tick"]
    assert runner.next_run["tick"] == datetime(2026, 11, 26, 10, 20, tzinfo=timezone.utc)
    assert runner.run_due(datetime(2026, 11, 26, 10, 25, tzinfo=timezone.utc)) == ["tick"]
    assert calls == [False, True]  # the second run was five minutes late


def test_setting_reference_must_exist():
    with pytest.raises(KeyError, match="NOPE"):
        devhost.resolve_setting_refs("%NOPE%", {})


def test_real_http_server_serves_and_logs_one_line(app_and_calls, caplog):
    server = devhost.make_server(app_and_calls[0], "127.0.0.1", 0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level("INFO", logger="functions.devhost"):
            resp = requests.get(f"http://127.0.0.1:{port}/items/a%2Fb", timeout=5)
        assert resp.status_code == 200 and resp.text == "item a/b"
        assert any("GET /items/a%2Fb 200" in r.getMessage() for r in caplog.records)
        assert requests.post(f"http://127.0.0.1:{port}/users/x/card", timeout=5).status_code == 405
    finally:
        server.shutdown()
        server.server_close()


# ---- connection guards (functions/localhttp.py) ------------------------------------------------

class FakeClock:
    """A monotonic clock the test moves by hand; `read` is set once the server has looked at it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.read = threading.Event()

    def __call__(self) -> float:
        self.read.set()
        return self.now

    def advance_once_read(self, seconds: float) -> None:
        """Move on once the server has seen the first bytes (it reads the clock to start the deadline)."""
        assert self.read.wait(5)
        self.now += seconds




def exchange(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """Read one response with a Content-Length from a connection that stays open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


@pytest.mark.parametrize("host", ["localhost", "localhost:7071", "LOCALHOST:1", "127.0.0.1", "127.0.0.1:8080",
                                  "[::1]", "[::1]:7071"])
def test_a_loopback_host_answers_to_its_own_names(app_and_calls, host: str) -> None:
    with running(devhost.make_server(app_and_calls[0], "127.0.0.1", 0)) as address:
        reply = exchange(address, f"GET /items HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7071", "localhost.evil.example", "127.0.0.2:7071",
                                  "omis.local", "localhost."])
def test_a_loopback_host_refuses_other_names_against_dns_rebinding(app_and_calls, host: str) -> None:
    with running(devhost.make_server(app_and_calls[0], "127.0.0.1", 0)) as address:
        reply = exchange(address, f"GET /items HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert "DNS rebinding" in reply.decode("utf-8") and "localhost, 127.0.0.1 и [::1]" in reply.decode("utf-8")


def test_host_names_are_checked_only_on_a_loopback_address() -> None:
    assert not localhttp.host_allowed("omis.example:7071", loopback_only=True)
    assert localhttp.host_allowed("omis.example:7071", loopback_only=False)
    assert localhttp.is_loopback_address("127.0.0.1") and localhttp.is_loopback_address("::1")
    assert not localhttp.is_loopback_address("0.0.0.0") and not localhttp.is_loopback_address("192.0.2.1")


def test_64_connections_at_once_wait_in_the_backlog_instead_of_timing_out(app_and_calls) -> None:
    server = devhost.make_server(app_and_calls[0], "127.0.0.1", 0)
    sockets: list[socket.socket] = []
    try:
        # Nothing accepts yet: every connection must find room in the listen queue.
        for _ in range(64):
            sockets.append(socket.create_connection(server.server_address[:2], timeout=2))
        with running(server):
            for sock in sockets[:3]:
                sock.sendall(b"GET /items HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert read_until_closed(sock).startswith(b"HTTP/1.1 200")
    finally:
        for sock in sockets:
            sock.close()
        server.server_close()


def test_a_client_that_trickles_its_headers_is_dropped_after_the_deadline(app_and_calls) -> None:
    clock = FakeClock()
    with running(devhost.make_server(app_and_calls[0], "127.0.0.1", 0, clock=clock)) as address, \
            socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"GET /items HTTP/1.1\r\nHost: loc")
        clock.advance_once_read(localhttp.HEADER_TIMEOUT + 1)   # the head has been trickling for too long
        sock.sendall(b"alhost\r\n\r\n")
        assert read_until_closed(sock) == b""       # dropped, nothing answered


def test_a_client_in_time_is_answered_and_can_send_another_request(app_and_calls) -> None:
    clock = FakeClock()
    with running(devhost.make_server(app_and_calls[0], "127.0.0.1", 0, clock=clock)) as address, \
            socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"GET /items HTTP/1.1\r\nHost: loc")
        clock.advance_once_read(localhttp.HEADER_TIMEOUT - 1)
        sock.sendall(b"alhost\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        clock.now += 3 * localhttp.HEADER_TIMEOUT    # idle time between requests does not count
        sock.sendall(b"GET /items HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200")
