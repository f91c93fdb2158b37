"""Signed values for the pages: CSRF tokens and flash messages (pure, no I/O).

A CSRF token is `<issued>.<mac>`, the MAC (HMAC-SHA256 with OMIS_SECRET_KEY) covering the
issue time and the author. It needs no cookie: the author comes from the App Service
Authentication header, which another site cannot set, so a token taken from one user's
page is worthless for another, and it expires after CSRF_MAX_AGE.

A flash message travels in one short-lived cookie `<payload>.<mac>`, the payload being
base64url JSON; a cookie that does not verify is ignored.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE = 12 * 3600      # seconds a form stays usable
CLOCK_SKEW = 300              # seconds a token may come from the future (several instances)
FLASH_COOKIE = "omis_flash"
FLASH_MAX_AGE = 120           # seconds: a flash is read on the very next page


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _mac(key: str, purpose: str, payload: str) -> str:
    message = f"omis\x00{purpose}\x00{payload}".encode()
    return _b64encode(hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest())


def _same(given: str, expected: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, and the given value is anyone's.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _csrf_mac(key: str, author: str, issued: int) -> str:
    return _mac(key, "csrf", f"{issued}\x00{author}")


def make_csrf_token(key: str, author: str, now: float | None = None) -> str:
    """Return a CSRF token for forms shown to this author."""
    issued = _now(now)
    return f"{issued}.{_csrf_mac(key, author, issued)}"


def check_csrf_token(key: str, author: str, token: str | None, now: float | None = None,
                     max_age: int = CSRF_MAX_AGE) -> bool:
    """Say whether a CSRF token was made for this author with this key and has not expired."""
    if not token or len(token) > 200 or "." not in token:
        return False
    issued_text, mac = token.split(".", 1)
    if not (issued_text.isascii() and issued_text.isdigit()):  # «²».isdigit() is True, int("²") fails
        return False
    issued, current = int(issued_text), _now(now)
    if issued > current + CLOCK_SKEW or current - issued > max_age:
        return False
    return _same(mac, _csrf_mac(key, author, issued))


@dataclass(frozen=True)
class Flash:
    """A message shown once on the next page, with an optional link (a path on this site)."""

    message: str
    href: str = ""
    link_text: str = ""


def local_path(href: str) -> bool:
    """Say whether a link stays on this site: an absolute path, not `//host` nor `/\\host`."""
    return href.startswith("/") and not href.startswith(("//", "/\\")) and href.isprintable()


def make_flash(key: str, message: str, now: float | None = None, link: tuple[str, str] | None = None) -> str:
    """Return the signed cookie value carrying a flash message (and a link on this site: href, text)."""
    data: dict[str, object] = {"m": message, "t": _now(now)}
    if link is not None:
        if not local_path(link[0]):
            raise ValueError("a flash links only to a path on this site")
        data.update(h=link[0], l=link[1])
    payload = _b64encode(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_mac(key, 'flash', payload)}"


def read_flash(key: str, value: str | None, now: float | None = None) -> Flash | None:
    """Return the flash of a signed cookie value, or None if it is forged, broken or stale."""
    if not value or len(value) > 4000 or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    if not _same(mac, _mac(key, "flash", payload)):
        return None
    try:
        data = json.loads(_b64decode(payload).decode("utf-8"))
        message, issued = str(data["m"]), int(data["t"])
        href, link_text = str(data.get("h") or ""), str(data.get("l") or "")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError, binascii.Error):
        return None
    if _now(now) - issued > FLASH_MAX_AGE:
        return None
    if href and not local_path(href):
        href = link_text = ""
    return Flash(message, href, link_text)


def cookie_value(cookie_header: str | None, name: str) -> str | None:
    """Return one cookie's value from a Cookie request header, or None."""
    for part in (cookie_header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def origin_of(url: str) -> str | None:
    """Return the origin (`scheme://host[:port]`, lower-case, default port left out) of an absolute URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def origin_allowed(origin: str | None, referer: str | None, own: set[str]) -> bool:
    """Say whether a form post came from one of our origins: its Origin, else its Referer; neither: yes.

    Browsers send Origin with every form POST (and "null" from sandboxed or privacy-stripped
    contexts, which is refused); without it the Referer's origin counts. A request with neither
    header (old clients, curl) is left to the CSRF token alone.
    """
    if origin is not None and origin.strip():
        return origin_of(origin) in own
    if referer is not None and referer.strip():
        return origin_of(referer) in own
    return True
