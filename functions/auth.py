"""Who is asking: in Azure, only a user that App Service Authentication signed in (SPEC §5).

App Service Authentication (Entra ID) signs users in before a request reaches OMIS and then
adds `X-MS-CLIENT-PRINCIPAL-ID` / `-NAME` (and, with the token store on, the user's ID token
in `X-MS-TOKEN-AAD-ID-TOKEN`); it strips such headers from what clients send. If sign-in is
off or misconfigured, nothing strips them and nothing signs anyone in, so OMIS does not take
them on trust:

- Running in Azure (settings.in_azure: WEBSITE_INSTANCE_ID, WEBSITE_SITE_NAME or
  LEGION_SERVICE_HOST is set; App Service sets the first two, Flex Consumption's workers the
  name and the third; Functions Core Tools and `python -m functions serve` set none, and
  CONTAINER_NAME is not used: development containers set it too), a request without
  X-MS-CLIENT-PRINCIPAL-ID is refused with 401, on every route but EXEMPT_PATHS.
- With OMIS_AUTH_TOKEN_STORE=on (Bicep turns the token store on together with it), the ID
  token must also be there and verify: RS256 signature by a key the issuer publishes (its
  OpenID configuration's jwks_uri, keys cached per process), issuer OMIS_AUTH_ISSUER,
  audience OMIS_AUTH_CLIENT_ID, not expired (LEEWAY_SECONDS of clock skew). The author is
  then the token's preferred_username (or upn, email, name), not the header.
- Keys that cannot be fetched refuse the request too, with 503 (nobody could be checked).
- Outside Azure nothing is checked: the header's name, else OMIS_DEV_USER.

Pure decisions on headers and settings; the only I/O is fetching the issuer's keys.
"""
from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import certifi
import jwt
import requests

from .settings import Settings

logger = logging.getLogger(__name__)

EXEMPT_PATHS = frozenset({"/healthz", "/telegram/webhook"})
PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
ID_TOKEN_HEADER = "x-ms-token-aad-id-token"  # noqa: S105 - a header name, not a secret
NAME_CLAIMS = ("preferred_username", "upn", "email", "name")
NAME_MAX = 200
LEEWAY_SECONDS = 60
HTTP_TIMEOUT: tuple[float, float] = (5.0, 10.0)   # (connect, read) for the OpenID configuration
JWKS_TIMEOUT = 10.0                                # PyJWKClient takes one number
JWKS_LIFESPAN = 3600                               # seconds the key set is kept before it is read again

SIGN_IN_MESSAGE = ("Нужен вход: запрос пришёл без входа через Microsoft Entra ID. Войдите в OMIS заново; "
                   "если это повторяется, проверьте настройку входа (App Service Authentication).")
CHECK_FAILED_MESSAGE = ("Не удалось проверить вход: ключи подписи Microsoft Entra ID сейчас недоступны. "
                        "Повторите чуть позже.")


class SignInRequired(Exception):
    """The request did not pass sign-in (401), or sign-in could not be checked (503)."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason   # for the log, in English; the user sees `message`
        self.status = status

    @property
    def message(self) -> str:
        return SIGN_IN_MESSAGE if self.status == 401 else CHECK_FAILED_MESSAGE


@dataclass(frozen=True)
class Identity:
    """Who a request comes from."""

    name: str
    signed_in: bool


def is_exempt(path: str) -> bool:
    """Say whether a path is open without sign-in (the health check and the Telegram webhook)."""
    return "/" + path.strip("/") in EXEMPT_PATHS


def identify(path: str, headers: Mapping[str, str], settings: Settings) -> Identity:
    """Return who sent a request; raise SignInRequired when in Azure it did not pass sign-in."""
    lowered = {name.lower(): value for name, value in headers.items()}
    header_name = _clean_name(lowered.get(PRINCIPAL_NAME_HEADER))
    if not settings.in_azure:
        return Identity(header_name or settings.dev_user, signed_in=bool(header_name))
    if is_exempt(path):
        return Identity(settings.dev_user, signed_in=False)
    principal_id = (lowered.get(PRINCIPAL_ID_HEADER) or "").strip()
    if not principal_id:
        raise SignInRequired("no X-MS-CLIENT-PRINCIPAL-ID: App Service Authentication did not sign the request in")
    if not settings.auth_token_store:
        return Identity(header_name or principal_id[:NAME_MAX], signed_in=True)
    token = (lowered.get(ID_TOKEN_HEADER) or "").strip()
    if not token:
        raise SignInRequired("no X-MS-TOKEN-AAD-ID-TOKEN although OMIS_AUTH_TOKEN_STORE=on")
    # settings.py refuses in_azure + token store without both of these.
    claims = verifier_for(settings.auth_issuer or "", settings.auth_client_id or "").verify(token)
    for claim in NAME_CLAIMS:
        name = _clean_name(claims.get(claim))
        if name:
            return Identity(name, signed_in=True)
    return Identity(header_name or principal_id[:NAME_MAX], signed_in=True)


def _clean_name(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value.strip() if ch.isprintable())[:NAME_MAX]


def _ca_context() -> ssl.SSLContext:
    """Trust what requests trusts (REQUESTS_CA_BUNDLE, else certifi), for PyJWKClient's urllib."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    return ssl.create_default_context(cafile=bundle)


class TokenVerifier:
    """Verifies ID tokens of one issuer for one audience; the issuer's keys are fetched once and cached."""

    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _key_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(self._jwks_uri(), cache_keys=True, lifespan=JWKS_LIFESPAN,
                                             timeout=JWKS_TIMEOUT, ssl_context=_ca_context())
            return self._keys

    def _jwks_uri(self) -> str:
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            config = response.json()
        except (requests.RequestException, ValueError) as exc:
            logger.error("sign-in check: cannot read %s: %s", url, exc)
            raise SignInRequired(f"OpenID configuration unreadable: {exc}", 503) from None
        jwks_uri = config.get("jwks_uri") if isinstance(config, dict) else None
        issuer = str(config.get("issuer", "")).rstrip("/") if isinstance(config, dict) else ""
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://") or issuer != self.issuer:
            logger.error("sign-in check: %s names issuer %r and jwks_uri %r; expected issuer %r",
                         url, issuer, jwks_uri, self.issuer)
            raise SignInRequired("OpenID configuration does not match OMIS_AUTH_ISSUER", 503)
        return jwks_uri

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid ID token; raise SignInRequired (401, or 503 without keys)."""
        try:
            key = self._key_client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            logger.error("sign-in check: keys of %s unreachable: %s", self.issuer, exc)
            raise SignInRequired(f"signing keys unreachable: {exc}", 503) from None
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise self._refused(f"no signing key of the issuer for this token: {exc}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=["RS256"], audience=self.audience, issuer=self.issuer,
                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidTokenError as exc:
            raise self._refused(f"ID token refused: {type(exc).__name__}: {exc}") from None
        return claims

    @staticmethod
    def _refused(reason: str) -> SignInRequired:
        logger.warning("sign-in check: %s", reason)
        return SignInRequired(reason)


_verifiers: dict[tuple[str, str], TokenVerifier] = {}
_verifiers_lock = threading.Lock()


def verifier_for(issuer: str, audience: str) -> TokenVerifier:
    """Return the process's verifier for an issuer and audience (keys cached across requests)."""
    with _verifiers_lock:
        verifier = _verifiers.get((issuer, audience))
        if verifier is None:
            verifier = _verifiers[(issuer, audience)] = TokenVerifier(issuer, audience)
        return verifier


def forget_verifiers() -> None:
    """Drop the cached verifiers and keys (tests point OMIS at another issuer)."""
    with _verifiers_lock:
        _verifiers.clear()
