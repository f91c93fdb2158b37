"""Regenerate the screenshots of the pages in docs/screenshots/: `python -m tests.e2e.screenshots`.

Starts its own in-memory Azurite and local host, fills them with sample requests and mail,
and photographs each page with Debian's Chromium.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from scripts.azurite import connection_string, free_port, start_azurite, stop_azurite

from .server import CHROMIUM, CHROMIUM_ARGS, ROOT, browser_missing, server_env, start_server

OUT = ROOT / "docs" / "screenshots"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def seed(env: dict[str, str]) -> None:
    """Fill the tables with a believable week of requests, mail replies and one unmatched mail."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("OMIS_")})
    from functions import mailstore, store
    from functions.model import utcnow
    from functions.settings import reset_settings

    reset_settings()
    store.init_db()
    now = utcnow()
    ago = lambda **kw: now - timedelta(**kw)  # noqa: E731 - a local shorthand
    samples = [
        ("10231", "Котельная №3, узел учёта", "Не передаются показания теплосчётчика.", ago(days=2, hours=3)),
        ("ТО-2026/77", "ЦТП-12, насос подкачки", "Повышенная вибрация насоса, просим осмотреть.", ago(hours=6)),
        ("10240", "Школа №8, ИТП", "Течь на обратном трубопроводе.", ago(hours=26)),
        ("10244", "Поликлиника, вентиляция", "Проверить работу приточной установки П1.", ago(hours=3)),
        ("10247", "ЖК «Северный», корпус 2", "Нет связи с контроллером.", ago(minutes=40)),
        ("10250", "Бассейн, водоподготовка", "Заменить датчик хлора.", ago(minutes=12)),
    ]
    for number, position, description, at in samples:
        store.add_request(number, position, description, author="Мария Козлова", now=at)
    store.apply_mail("10231", message="s1", status="принята в работу", comment="Заявку приняли, выезд завтра.",
                     received=ago(days=2), author="Робот", message_id="<a1@contractor.example>",
                     subject="RE: Заявка 10231", position="3")
    store.apply_mail("10231", message="s2", status="выполнена",
                     comment="Работы завершены, теплосчётчик передаёт показания.", received=ago(hours=20),
                     author="Робот", message_id="<a2@contractor.example>", subject="RE: Заявка 10231 — выполнено")
    store.apply_mail("10240", message="s3", status="требует уточнения",
                     comment="Просим уточнить номер помещения.", received=ago(hours=25), author="Робот",
                     message_id="<a3@contractor.example>", subject="RE: Заявка 10240", position="2")
    store.update_status("10244", "принята в работу", "Звонили: приедут после обеда.", author="Мария Козлова",
                        now=ago(hours=2, minutes=30))
    mailstore.save_unmatched_mail(mailstore.UnmatchedMail(
        message_key="u1", subject="Заявка 10299 — выполнена", sender="dispatch@contractor.example",
        received=ago(hours=1), numbers=("10299",), message_id="<u1@contractor.example>",
        reason="номер 10299 не найден среди заявок", text="Добрый день! Работы по заявке 10299 выполнены."))
    mailstore.save_unmatched_mail(mailstore.UnmatchedMail(
        message_key="u2", subject="Вопрос по договору", sender="office@contractor.example",
        received=ago(hours=30), numbers=(), message_id="<u2@contractor.example>",
        reason="в письме нет номера заявки", text="Просим прислать график на декабрь."))


def shoot(base_url: str, out: Path) -> list[Path]:
    """Photograph each page; return the files written."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            laptop = browser.new_context(base_url=base_url, viewport=LAPTOP, locale="ru-RU")
            page = laptop.new_page()

            page.goto("/")
            written.append(_save(page, out / "list.png"))

            page.goto("/new")
            page.get_by_label("Номер").fill("10231")
            page.get_by_label("Позиция").fill("Котельная №3")
            page.get_by_role("button", name="Сохранить").click()
            page.get_by_text("уже есть").wait_for()
            written.append(_save(page, out / "new-errors.png"))

            page.goto("/requests/" + quote("10231", safe=""))
            written.append(_save(page, out / "card.png", full_page=True))

            page.goto("/mail/unmatched")
            written.append(_save(page, out / "unmatched.png"))
            laptop.close()

            phone = browser.new_context(base_url=base_url, viewport=PHONE, locale="ru-RU", is_mobile=True,
                                        device_scale_factor=1)
            page = phone.new_page()
            page.goto("/")
            written.append(_save(page, out / "list-phone.png"))
            phone.close()
        finally:
            browser.close()
    return written


def _save(page, path: Path, full_page: bool = False) -> Path:
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path


def main(argv: list[str] | None = None) -> int:
    """Start Azurite and the local host, seed them, take the screenshots."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.screenshots", description=__doc__.splitlines()[0])
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
            seed(env)
            server = start_server(env, Path(tmp) / "serve.log")
            try:
                for path in shoot(server.base_url, args.out):
                    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                          f"{path.stat().st_size // 1024} КиБ")
            finally:
                server.stop()
        finally:
            stop_azurite(azurite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
