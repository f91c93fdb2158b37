"""A value logged by OMIS cannot start a fake log line or send terminal escapes."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from functions.logsafe import escape_controls, escape_log_args, install_log_escaping

ROOT = Path(__file__).resolve().parents[2]
FORGED = "ТО-1\r\n2026-12-01 10:00:00 ERROR functions.web: всё сломано\x1b[2J\x07"


def test_control_bidi_and_line_separators_are_escaped() -> None:
    assert escape_controls("a\nb\rc\td\x1b[31m\x07\x00\x7f\x85") == "a\\nb\\rc\\td\\x1b[31m\\x07\\x00\\x7f\\x85"
    assert escape_controls("\u202eabc\u2066\u2028\u2029\u200f") == "\\u202eabc\\u2066\\u2028\\u2029\\u200f"


def test_ordinary_text_is_unchanged() -> None:
    text = "Заявка №101, позиция 3 — «выполнена» C:\\Users\\omis 😀"
    assert escape_controls(text) == text


def test_only_strings_among_the_arguments_change() -> None:
    assert escape_log_args(("a\nb", 5, None)) == ("a\\nb", 5, None)
    assert escape_log_args({"p": "x\ry", "n": 1}) == {"p": "x\\ry", "n": 1}
    assert escape_log_args(None) is None


@pytest.fixture
def escaping() -> None:
    saved = logging.getLogRecordFactory()
    install_log_escaping()
    install_log_escaping()  # a second call must not wrap twice
    yield
    logging.setLogRecordFactory(saved)


@pytest.mark.usefixtures("escaping")
def test_a_value_logged_by_omis_stays_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("functions.web").warning("position %s refused", FORGED)
    logging.getLogger("functions").info("mail %(subject)s", {"subject": "a\nb"})
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == ("position ТО-1\\r\\n2026-12-01 10:00:00 ERROR functions.web: всё сломано"
                           "\\x1b[2J\\x07 refused")
    assert messages[1] == "mail a\\nb"
    assert all("\n" not in m and "\x1b" not in m for m in messages)


@pytest.mark.usefixtures("escaping")
def test_records_of_other_libraries_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("functionsx").warning("%s", "a\nb")
    logging.getLogger("azure.core").warning("%s", "a\nb")   # the CLI sets azure.* to WARNING
    assert [record.getMessage() for record in caplog.records] == ["a\nb", "a\nb"]


def test_the_app_installs_the_escaping_for_the_functions_host() -> None:
    # A fresh interpreter: importing the app is all the Functions host does before logging starts.
    script = ("import logging, function_app; logging.basicConfig(format='%(message)s'); "
              "logging.getLogger('functions.mail.sync').warning('subject %s', 'x\\ny')")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert result.stderr == "subject x\\ny\n"
