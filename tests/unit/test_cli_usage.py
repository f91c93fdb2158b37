"""The command line speaks Russian, argparse's own texts included, and checks an option the same way everywhere."""
from __future__ import annotations

import argparse
import ast
import inspect

import pytest

from functions.cli.main import build_parser, main
from functions.cli.russian import ARGPARSE_RU, ARGPARSE_RU_PLURAL, russian_plural_form

# argparse's English texts that must not reach a user of OMIS.
ENGLISH = ("usage:", "error:", "invalid choice", "the following arguments are required", "unrecognized arguments",
           "show this help message", "expected one argument", "invalid int value", "positional arguments",
           "options:", "one of the arguments", "not allowed with")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _assert_russian(text: str) -> None:
    found = [phrase for phrase in ENGLISH if phrase in text]
    assert not found, f"English argparse text {found} in:\n{text}"


def _argparse_messages() -> tuple[set[str], set[tuple[str, str]]]:
    """Every text the running Python's argparse passes through gettext."""
    tree = ast.parse(inspect.getsource(argparse))
    single: set[str] = set()
    plural: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if node.func.id == "_" and texts:
            single.add(texts[0])
        elif node.func.id == "ngettext" and len(texts) >= 2:
            plural.add((texts[0], texts[1]))
    return single, plural


def test_every_text_of_argparse_has_a_russian_translation() -> None:
    single, plural = _argparse_messages()
    assert len(single) > 20
    assert single - set(ARGPARSE_RU) == set()
    assert plural - set(ARGPARSE_RU_PLURAL) == set()


@pytest.mark.parametrize(("n", "form"), [(1, 0), (2, 1), (4, 1), (5, 2), (11, 2), (12, 2), (21, 0), (22, 1), (25, 2)])
def test_russian_plural_forms(n: int, form: int) -> None:
    assert russian_plural_form(n) == form


@pytest.mark.parametrize("argv", [["--help"], ["notify", "--help"], ["serve", "--help"], ["mail", "--help"],
                                  ["scenario", "--help"], ["run", "--help"]])
def test_help_is_in_russian(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert out.startswith("использование: python -m functions")
    assert "показать эту справку и выйти" in out
    _assert_russian(out)


@pytest.mark.parametrize(("argv", "expected"), [
    (["bogus"], "неверный выбор: 'bogus'"),
    ([], "не указаны обязательные аргументы: COMMAND"),
    (["init", "--foo"], "неизвестные аргументы: --foo"),
    (["serve", "--port"], "аргумент --port: ожидается одно значение"),
    (["serve", "--port", "abc"], "ожидается номер порта от 1 до 65535, получено «abc»"),
    (["scenario"], "нужен один из аргументов: --list --scenario --all"),
    (["scenario", "--list", "--all"], "нельзя указывать вместе с --list"),
    (["--log-level", "bogus", "init"], "ожидается один из уровней DEBUG, INFO, WARNING, ERROR, получено «bogus»"),
    (["mail", "--log-level", "bogus"], "ожидается один из уровней DEBUG, INFO, WARNING, ERROR, получено «bogus»"),
])
def test_bad_usage_exits_2_with_a_russian_message_on_stderr(argv: list[str], expected: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert "использование: python -m functions" in err and "ошибка:" in err
    assert expected in err
    _assert_russian(err)


@pytest.mark.parametrize("command", ["notify", "run"])
@pytest.mark.parametrize("value", ["-5", "abc", "1.5", "525601", "٥"])
def test_minutes_are_checked_the_same_by_every_command(command: str, value: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([command, "--minutes", value], capsys)
    assert code == 2
    assert "аргумент --minutes:" in err and "минут" in err


@pytest.mark.parametrize("argv", [["--log-level", "debug", "mail", "--help"], ["mail", "--log-level", "Warning", "--help"]])
def test_log_level_is_case_insensitive(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(argv, capsys)[0] == 0


def test_log_level_of_mail_overrides_the_top_level_one() -> None:
    parser = build_parser()
    assert parser.parse_args(["--log-level", "error", "mail", "--log-level", "debug"]).log_level == "DEBUG"
    assert parser.parse_args(["--log-level", "error", "mail"]).log_level == "ERROR"


def test_argparse_speaks_english_again_outside_omis_parsers() -> None:
    build_parser().format_help()
    assert "usage:" in argparse.ArgumentParser(prog="other").format_usage()
