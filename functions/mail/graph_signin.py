"""Sign in to Microsoft Entra as the app: one msal ConfidentialClientApplication per process.

The application keeps the token cache; `acquire_token_for_client` alone reads it. A secret or a
PEM certificate (OMIS_OUTLOOK_CERTIFICATE_PATH) is the credential; failures name the setting
to check, never the secret.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ..settings import Settings
from .graph_errors import GraphError

logger = logging.getLogger(__name__)

SIGN_IN_HINTS = {
    "7000215": "проверьте OMIS_OUTLOOK_CLIENT_SECRET: нужно значение секрета, а не его идентификатор",
    "7000222": "срок действия секрета истёк: создайте новый и обновите OMIS_OUTLOOK_CLIENT_SECRET",
    "700016": "проверьте OMIS_OUTLOOK_CLIENT_ID и OMIS_OUTLOOK_TENANT_ID",
    "90002": "проверьте OMIS_OUTLOOK_TENANT_ID",
    "700027": "сертификат не зарегистрирован у приложения или ключ не подходит (OMIS_OUTLOOK_CERTIFICATE_PATH)",
}

_apps: dict[tuple[str, str, str], msal.ConfidentialClientApplication] = {}
_apps_lock = threading.Lock()


def forget_sign_in_apps() -> None:
    """Drop the process's msal applications and their cached tokens."""
    with _apps_lock:
        for app in _apps.values():
            app.http_client.close()
        _apps.clear()


def _certificate_credential(path: str) -> tuple[dict[str, str], str]:
    """Load a PEM with a private key and its certificate; return msal's credential and the thumbprint."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GraphError(f"Не удалось прочитать OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): {exc.strerror}") from None
    key_block = re.search(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----", data, re.S)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if key_block is None or not certificates:
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): нужен файл PEM с закрытым ключом "
                         "и сертификатом (BEGIN PRIVATE KEY и BEGIN CERTIFICATE)")
    try:
        key = serialization.load_pem_private_key(key_block.group(0), password=None)
    except (TypeError, ValueError):
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): закрытый ключ не читается "
                         "или защищён паролем; сохраните его без пароля") from None
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf = next((c for c in certificates if c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public), None)
    if leaf is None:
        raise GraphError(f"OMIS_OUTLOOK_CERTIFICATE_PATH ({path}): ни один сертификат в файле "
                         "не соответствует закрытому ключу")
    # An identifier, not a signature: Entra ID names certificates by their SHA-1 thumbprint.
    thumbprint = leaf.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - what the Azure portal shows
    # With the certificate (and no SHA-1 thumbprint) msal signs with PS256 and x5t#S256.
    credential = {"private_key": key_block.group(0).decode(),
                  "public_certificate": leaf.public_bytes(serialization.Encoding.PEM).decode()}
    return credential, thumbprint


def sign_in_app(settings: Settings, timeout: tuple[float, float]) -> msal.ConfidentialClientApplication:
    """Return the process's msal application for these settings, creating it on first use."""
    authority = f"{settings.authority_host}/{settings.outlook_tenant_id}"
    path = settings.outlook_certificate_path
    if path:
        try:  # a certificate replaced at the same path gets a new application
            fingerprint = f"cert:{path}:{Path(path).stat().st_mtime_ns}"
        except OSError:
            fingerprint = f"cert:{path}"
    else:
        fingerprint = "secret:" + hashlib.sha256((settings.outlook_client_secret or "").encode()).hexdigest()
    key = (authority.lower(), settings.outlook_client_id or "", fingerprint)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            credential: str | dict[str, str] = settings.outlook_client_secret or ""
            if path:
                credential, thumbprint = _certificate_credential(path)
                logger.info("Signing in to %s with certificate %s", authority, thumbprint)
            try:
                # instance_discovery=False: well-known hosts skip it anyway, and any other
                # configured host would make msal ask login.microsoftonline.com about it.
                app = msal.ConfidentialClientApplication(
                    settings.outlook_client_id, client_credential=credential, authority=authority,
                    instance_discovery=False, timeout=timeout)
            except requests.RequestException as exc:
                raise GraphError(f"Нет связи со службой входа {settings.authority_host}: "
                                 f"{type(exc).__name__}") from None
            except (ValueError, RuntimeError, msal.exceptions.MsalError) as exc:
                raise GraphError(f"Не удалось настроить вход через {authority}: {exc}. Проверьте "
                                 "OMIS_OUTLOOK_TENANT_ID и OMIS_AUTHORITY_HOST.") from None
            _apps[key] = app
    return app


def sign_in_failure(result: dict[str, Any], settings: Settings) -> GraphError:
    """Turn msal's error answer into a GraphError naming the code, the correlation id and the setting to check."""
    error = result.get("error") or "unknown_error"
    description = str(result.get("error_description") or "").split(" Trace ID:")[0].splitlines()
    summary = description[0].strip() if description else ""
    codes = [str(c) for c in result.get("error_codes") or []]
    hint = next((SIGN_IN_HINTS[c] for c in codes if c in SIGN_IN_HINTS), None)
    message = (f"Microsoft Entra отказал во входе приложению {settings.outlook_client_id}: {error}"
               f"{' — ' + summary if summary else ''}"
               f" (correlation_id {result.get('correlation_id') or 'нет'})"
               f"{'; ' + hint if hint else ''}")
    if settings.outlook_client_secret:
        message = message.replace(settings.outlook_client_secret, "***")
    return GraphError(message, code=error)
