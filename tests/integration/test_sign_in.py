"""In Azure a request that did not pass App Service Authentication is refused (SPEC §5): sign-in fails closed.

Through the app's own function objects; ID tokens come from a fake Entra tenant over loopback HTTPS
whose keys the real PyJWKClient fetches.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from functions import auth
from tests.fakes.oidc_server import CLIENT_ID, FakeEntraTenant

JSON = {"Content-Type": "application/json"}
PRINCIPAL = {"X-MS-CLIENT-PRINCIPAL-ID": "0f9e8d7c-6b5a-4948-3726-150f4e3d2c1b",
             "X-MS-CLIENT-PRINCIPAL-NAME": "anna@contoso.example"}
FORGED = {"X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-000000000001",
          "X-MS-CLIENT-PRINCIPAL-NAME": "boss@contoso.example"}


def body(resp) -> dict:
    return json.loads(resp.get_body())


def create(call, number: str, headers: dict[str, str]):
    return call("POST", "/api/requests", json.dumps({"number": number}), {**JSON, **headers})


@pytest.fixture
def tenant(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntraTenant]:
    with FakeEntraTenant() as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.tls.ca_bundle))
        auth.forget_verifiers()
        yield fake
    auth.forget_verifiers()


@pytest.fixture
def in_azure(configure) -> None:
    """Run as the Function App in Azure, sign-in headers only (token store off)."""
    configure(WEBSITE_SITE_NAME="func-omis", WEBSITE_INSTANCE_ID="0a1b2c3d")


@pytest.fixture
def token_store(configure, tenant: FakeEntraTenant) -> FakeEntraTenant:
    """Run in Azure with the token store on: the ID token must verify."""
    configure(WEBSITE_SITE_NAME="func-omis", OMIS_AUTH_TOKEN_STORE="on", OMIS_AUTH_ISSUER=tenant.issuer,
              OMIS_AUTH_CLIENT_ID=CLIENT_ID)
    return tenant


# ---- headers only ------------------------------------------------------------------------

@pytest.mark.usefixtures("in_azure")
@pytest.mark.parametrize("path", ["/", "/requests", "/new", "/requests/A-1", "/mail/unmatched", "/static/omis.css"])
def test_a_page_without_sign_in_is_401_in_russian(call, path: str) -> None:
    resp = call("GET", path)
    assert resp.status_code == 401
    page = resp.get_body().decode()
    assert "Нужен вход" in page and 'href="/.auth/login/aad?post_login_redirect_uri=' in page
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.usefixtures("in_azure")
@pytest.mark.parametrize(("method", "path"), [("GET", "/api/requests"), ("GET", "/api/requests/A-1"),
                                              ("GET", "/api/mail/unmatched"), ("POST", "/api/requests")])
def test_the_api_without_sign_in_is_401_json(call, method: str, path: str) -> None:
    resp = call(method, path, json.dumps({"number": "A-1"}) if method == "POST" else b"", JSON)
    assert resp.status_code == 401
    assert body(resp)["error"].startswith("Нужен вход")


@pytest.mark.usefixtures("in_azure")
def test_a_name_without_a_principal_id_is_refused_and_nothing_is_stored(call, store) -> None:
    resp = create(call, "A-2", {"X-MS-CLIENT-PRINCIPAL-NAME": "boss@contoso.example"})
    assert resp.status_code == 401
    assert store.get_request("A-2") is None


@pytest.mark.usefixtures("in_azure")
def test_a_form_post_without_sign_in_is_401(call, store) -> None:
    resp = call("POST", "/add_request", "number=A-3", {"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 401
    assert store.get_request("A-3") is None


@pytest.mark.usefixtures("in_azure")
def test_health_check_needs_no_sign_in(call) -> None:
    resp = call("GET", "/healthz")
    assert resp.status_code == 200 and body(resp) == {"status": "ok"}


@pytest.mark.usefixtures("in_azure")
def test_a_signed_in_request_passes_and_the_header_names_the_author(call) -> None:
    resp = create(call, "A-4", PRINCIPAL)
    assert resp.status_code == 201
    assert body(resp)["author"] == "anna@contoso.example"
    assert call("GET", "/", headers=PRINCIPAL).status_code == 200


def test_locally_nothing_is_required_and_the_author_is_the_dev_user(call) -> None:
    resp = create(call, "A-5", {})
    assert resp.status_code == 201 and body(resp)["author"] == "Инженер"
    assert call("GET", "/").status_code == 200


def test_the_webhook_and_the_health_check_are_the_exempt_paths() -> None:
    assert auth.is_exempt("/healthz") and auth.is_exempt("/telegram/webhook") and auth.is_exempt("/telegram/webhook/")
    assert not auth.is_exempt("/api/requests") and not auth.is_exempt("/healthz/x") and not auth.is_exempt("/")


# ---- token store on: the ID token must verify ----------------------------------------------

@pytest.mark.usefixtures("token_store")
def test_forged_principal_headers_without_a_token_are_401(call, store) -> None:
    assert create(call, "T-1", FORGED).status_code == 401
    assert call("GET", "/", headers=FORGED).status_code == 401
    assert store.get_request("T-1") is None


def test_a_valid_token_passes_and_names_the_author_whatever_the_header_says(call, token_store) -> None:
    headers = {**FORGED, "X-MS-TOKEN-AAD-ID-TOKEN": token_store.id_token()}
    resp = create(call, "T-2", headers)
    assert resp.status_code == 201
    assert body(resp)["author"] == "anna@contoso.example"
    assert call("GET", "/", headers=headers).status_code == 200


def test_the_name_falls_back_to_other_claims(call, token_store) -> None:
    token = token_store.id_token(preferred_username=None, upn="anna.upn@contoso.example")
    resp = create(call, "T-3", {**PRINCIPAL, "X-MS-TOKEN-AAD-ID-TOKEN": token})
    assert body(resp)["author"] == "anna.upn@contoso.example"


@pytest.mark.parametrize("kind", ["wrong signature", "unknown key", "wrong issuer", "wrong audience", "expired",
                                  "not yet valid", "no expiry", "not a token", "HS256 with the public key"])
def test_a_bad_token_is_401(call, store, token_store, kind: str) -> None:
    tenant = token_store
    token = {
        "wrong signature": lambda: tenant.id_token(signed_by=tenant.other_key),
        "unknown key": lambda: tenant.id_token(signed_by=tenant.other_key, kid="another-key"),
        "wrong issuer": lambda: tenant.id_token(iss="https://login.microsoftonline.com/other-tenant/v2.0"),
        "wrong audience": lambda: tenant.id_token(aud="some-other-app"),
        "expired": lambda: tenant.id_token(exp=1_700_000_000),
        "not yet valid": lambda: tenant.id_token(nbf=4_000_000_000),
        "no expiry": lambda: tenant.id_token(exp=None),
        "not a token": lambda: "not.a.token",
        "HS256 with the public key": lambda: _hs256_token(tenant),
    }[kind]()
    resp = create(call, f"B-{len(kind)}", {**PRINCIPAL, "X-MS-TOKEN-AAD-ID-TOKEN": token})
    assert resp.status_code == 401, body(resp)
    assert store.get_request(f"B-{len(kind)}") is None


def _hs256_token(tenant: FakeEntraTenant) -> str:
    """The classic confusion: a token "signed" with HMAC, the issuer's public key as the secret."""
    public = tenant.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": tenant.kid}).encode())
    payload = jwt.utils.base64url_encode(json.dumps({"iss": tenant.issuer, "aud": CLIENT_ID,
                                                     "exp": 4_000_000_000}).encode())
    signature = jwt.utils.base64url_encode(hmac.new(public, header + b"." + payload, hashlib.sha256).digest())
    return (header + b"." + payload + b"." + signature).decode()


def test_the_keys_are_fetched_once_per_process(call, token_store) -> None:
    headers = {**PRINCIPAL, "X-MS-TOKEN-AAD-ID-TOKEN": token_store.id_token()}
    for _ in range(3):
        assert call("GET", "/", headers=headers).status_code == 200
    assert token_store.requests[token_store.config_path] == 1
    assert token_store.requests[token_store.keys_path] == 1


def test_unreachable_keys_are_503_not_a_pass(call, token_store) -> None:
    token_store.down = True
    resp = create(call, "T-4", {**PRINCIPAL, "X-MS-TOKEN-AAD-ID-TOKEN": token_store.id_token()})
    assert resp.status_code == 503
    assert body(resp)["error"].startswith("Не удалось проверить вход")
    page = call("GET", "/", headers={**PRINCIPAL, "X-MS-TOKEN-AAD-ID-TOKEN": token_store.id_token()})
    assert page.status_code == 503 and "Вход не проверен" in page.get_body().decode()
