"""A fake Entra ID tenant for sign-in checks: its OpenID configuration and signing keys over HTTPS on 127.0.0.1.

It also mints ID tokens as App Service Authentication would pass them on (X-MS-TOKEN-AAD-ID-TOKEN),
signed by the tenant's key, or by another key, with any claim changed.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .tls import TlsMaterial, shared_tls_material, wrap_server

TENANT = "5f2b7c9e-1d3a-4b6c-8e0f-a1b2c3d4e5f6"
CLIENT_ID = "8c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"   # the sign-in app registration


class FakeEntraTenant:
    """Serves /{tenant}/v2.0/.well-known/openid-configuration and the key set it names."""

    def __init__(self, tls: TlsMaterial | None = None) -> None:
        self.tls = tls or shared_tls_material()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "omis-test-key"
        self.requests: Counter[str] = Counter()
        self.down = False   # answer 503 to everything (keys unreachable)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> FakeEntraTenant:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests[self.path] += 1
                status, body = fake._answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        wrap_server(self._server, self.tls)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- what it serves --------------------------------------------------------------

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return f"{self.base}/{TENANT}/v2.0"

    @property
    def config_path(self) -> str:
        return f"/{TENANT}/v2.0/.well-known/openid-configuration"

    @property
    def keys_path(self) -> str:
        return f"/{TENANT}/discovery/v2.0/keys"

    def _answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 503, {"error": "temporarily_unavailable"}
        if path == self.config_path:
            return 200, {"issuer": self.issuer, "jwks_uri": self.base + self.keys_path,
                         "authorization_endpoint": f"{self.base}/{TENANT}/oauth2/v2.0/authorize",
                         "id_token_signing_alg_values_supported": ["RS256"]}
        if path == self.keys_path:
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return 200, {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        return 404, {"error": "not_found"}

    # ---- tokens ----------------------------------------------------------------------

    def id_token(self, *, signed_by: rsa.RSAPrivateKey | None = None, kid: str | None = None,
                 **claims: Any) -> str:
        """Return an ID token for the sign-in app; keyword arguments replace claims (None drops one)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer, "aud": CLIENT_ID, "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "tid": TENANT, "oid": "0f9e8d7c-6b5a-4948-3726-150f4e3d2c1b", "sub": "subject-of-anna",
            "preferred_username": "anna@contoso.example", "name": "Анна Смирнова",
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, signed_by or self.key, algorithm="RS256", headers={"kid": kid or self.kid})
