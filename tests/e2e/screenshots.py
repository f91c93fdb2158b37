"""Regenerate the screenshots of the pages in docs/screenshots/: `python -m tests.e2e.screenshots`.

Starts its own in-memory Azurite and local host, fills them with sample requests and mail
(tests/e2e/seed.py), and photographs each page with Debian's Chromium at 1366 px (laptop) and
390 px (phone).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite

from .seed import seed, store_for
from .server import CHROMIUM, CHROMIUM_ARGS, ROOT, browser_missing, server_env, start_server

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

OUT = ROOT / "docs" / "screenshots"
LAPTOP: ViewportSize = {"width": 1366, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _card(number: str) -> str:
    return "/requests/" + quote(number, safe="")


def _new_errors(page: Any) -> None:
    page.get_by_label("Номер", exact=True).fill("10231")
    page.get_by_label("Позиция", exact=True).fill("Котельная №3")
    page.get_by_role("button", name="Сохранить").click()
    page.get_by_text("уже есть").first.wait_for()


def _new_lookalike(page: Any) -> None:
    page.get_by_label("Номер", exact=True).fill("TO-2026/77")      # Latin T and O: looks like «ТО-2026/77»
    page.get_by_label("Позиция", exact=True).fill("ЦТП-12")
    page.get_by_role("button", name="Сохранить").click()
    page.locator(".confirm").wait_for()


def _edit_open(page: Any) -> None:
    page.locator("details.edit > summary").click()
    page.locator("#edit-position").fill("ЦТП-12, насос подкачки №2")


def _unmatched_create_open(page: Any) -> None:
    page.locator("details.create > summary").first.click()


# name, path, what to do before the shot, whole page?
SHOTS: list[tuple[str, str, Callable[[Any], None] | None, bool]] = [
    ("list", "/", None, False),
    ("new-errors", "/new", _new_errors, False),
    ("new-lookalike", "/new", _new_lookalike, False),
    ("card", _card("10231"), None, True),
    ("card-edit", _card("ТО-2026/77"), _edit_open, True),
    ("archive", "/?archived=1", None, False),
    ("unmatched", "/mail/unmatched", _unmatched_create_open, True),
    ("mail", "/mail/unmatched/{mail}", None, True),
]


def shoot(base_url: str, out: Path, mail_id: str) -> list[Path]:
    """Photograph each page on a laptop and a phone; return the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for suffix, viewport, phone in (("", LAPTOP, False), ("-phone", PHONE, True)):
                context = browser.new_context(base_url=base_url, viewport=viewport, locale="ru-RU",
                                              is_mobile=phone, has_touch=phone, device_scale_factor=1)
                page = context.new_page()
                for name, path, prepare, full_page in SHOTS:
                    page.goto(path.format(mail=mail_id))
                    if prepare is not None:
                        prepare(page)
                    written.append(_save(page, out / f"{name}{suffix}.png", full_page=full_page))
                context.close()
        finally:
            browser.close()
    return written


def _save(page: Any, path: Path, full_page: bool = False) -> Path:
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path


def main(argv: list[str] | None = None) -> int:
    """Start Azurite and the local host, seed them, take the screenshots."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.screenshots", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    args = parser.parse_args(argv)
    reason = browser_missing()
    if reason:
        print(f"Ошибка: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="omis-shots-") as tmp:
        port = free_port()
        azurite = start_azurite(port, log=Path(tmp) / "azurite.log")
        try:
            env = server_env(connection_string(port), "shots")
            store = store_for(env)
            seed(store)
            mail_id = store.mail.list_unmatched(limit=1)[0][0].id
            server = start_server(env, Path(tmp) / "serve.log")
            try:
                for path in shoot(server.base_url, args.out, mail_id):
                    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                          f"{path.stat().st_size // 1024} КиБ")
            finally:
                server.stop()
        finally:
            stop_azurite(azurite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
