"""A form posted from another origin is refused like a bad CSRF token, even with a valid token (SPEC §5)."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from functions.web.signing import origin_allowed, origin_of

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_new(call, number: str, headers: dict[str, str]):
    page = call("GET", "/new").get_body().decode("utf-8")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return call("POST", "/add_request", urlencode({"number": number, "csrf_token": token}), {**FORM, **headers})


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost:7072"},
    {"Origin": "http://127.0.0.1:7071"},
    {"Origin": "null"},
    {"Origin": "http://localhost:7071@evil.example"},
    {"Referer": "https://evil.example/omis.html"},
    {"Referer": "http://localhost.evil.example:7071/new"},
])
def test_a_form_from_another_origin_is_403_and_stores_nothing(call, store, headers: dict[str, str]) -> None:
    resp = post_new(call, "O-1", headers)
    assert resp.status_code == 403
    assert "Форма устарела или отправлена не со страницы OMIS" in resp.get_body().decode("utf-8")
    assert store.get_request("O-1") is None


@pytest.mark.parametrize("headers", [
    {"Origin": "http://localhost:7071"},
    {"Origin": "HTTP://LOCALHOST:7071"},
    {"Referer": "http://localhost:7071/new"},
    {"Origin": "http://localhost:7071", "Referer": "https://evil.example/"},  # Origin decides when there is one
    {},
])
def test_a_form_from_this_site_or_without_origin_headers_goes_through(call, store, headers: dict[str, str]) -> None:
    assert post_new(call, "O-2", headers).status_code == 303
    assert store.get_request("O-2") is not None


def test_the_public_url_and_https_behind_a_proxy_count_as_this_site(call, store, configure) -> None:
    configure(OMIS_PUBLIC_URL="https://omis.contoso.example/")
    assert post_new(call, "O-3", {"Origin": "https://omis.contoso.example"}).status_code == 303
    assert post_new(call, "O-4", {"Origin": "https://localhost:7071", "X-Forwarded-Proto": "https"}).status_code == 303
    assert post_new(call, "O-5", {"Origin": "https://localhost:7071"}).status_code == 403


@pytest.mark.parametrize(("url", "origin"), [
    ("http://localhost:7071/new?x=1", "http://localhost:7071"), ("https://Omis.Example:443/", "https://omis.example"),
    ("http://omis.example:80", "http://omis.example"), ("http://[::1]:7071/", "http://[::1]:7071"),
    ("null", None), ("file:///etc/passwd", None), ("https://", None), ("http://h:99999/", None),
])
def test_origin_of_a_url(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_neither_header_leaves_it_to_the_csrf_token() -> None:
    assert origin_allowed(None, None, {"http://localhost:7071"})
    assert origin_allowed("", " ", {"http://localhost:7071"})
    assert not origin_allowed("null", None, {"http://localhost:7071"})
