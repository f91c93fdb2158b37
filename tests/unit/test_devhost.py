"""The local host's route matching and timer schedule, on a small app of its own."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import azure.functions as func
import pytest
import requests

from functions import devhost


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
