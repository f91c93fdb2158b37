"""argparse in Russian: a translation of argparse's own strings and a parser class that uses it.

argparse reads every text it shows (usage, group titles, the help of -h, each error) through
its module-level `_` and `ngettext`, which are gettext's. No system catalogue translates them
to Russian, and gettext would pick the language from the user's locale anyway; so the parser
swaps those two names for this module's catalogue while it builds itself, formats help and
parses, and puts the originals back. Messages are the templates argparse formats afterwards,
so placeholders such as %(value)r stay as they are. A text missing here stays in English; the
tests check that every text of the running Python's argparse is here.
"""
from __future__ import annotations

import argparse
import contextlib
import gettext
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

ARGPARSE_RU: dict[str, str] = {
    "usage: ": "использование: ",
    "positional arguments": "аргументы",
    "options": "параметры",
    "optional arguments": "параметры",
    "subcommands": "команды",
    "show this help message and exit": "показать эту справку и выйти",
    "show program's version number and exit": "показать версию программы и выйти",
    " (default: %(default)s)": " (по умолчанию: %(default)s)",
    "%(prog)s: error: %(message)s\n": "%(prog)s: ошибка: %(message)s\n",
    "argument %(argument_name)s: %(message)s": "аргумент %(argument_name)s: %(message)s",
    "unrecognized arguments: %s": "неизвестные аргументы: %s",
    "the following arguments are required: %s": "не указаны обязательные аргументы: %s",
    "one of the arguments %s is required": "нужен один из аргументов: %s",
    "not allowed with argument %s": "нельзя указывать вместе с %s",
    "ignored explicit argument %r": "лишнее значение %r",
    "expected one argument": "ожидается одно значение",
    "expected at most one argument": "ожидается не больше одного значения",
    "expected at least one argument": "ожидается хотя бы одно значение",
    "ambiguous option: %(option)s could match %(matches)s": "неоднозначный параметр %(option)s: подходят %(matches)s",
    "unexpected option string: %s": "неожиданный параметр: %s",
    "invalid %(type)s value: %(value)r": "неверное значение %(value)r (ожидается %(type)s)",
    "invalid choice: %(value)r (choose from %(choices)s)": "неверный выбор: %(value)r (возможно: %(choices)s)",
    "invalid choice: %(value)r, maybe you meant %(closest)r? (choose from %(choices)s)":
        "неверный выбор: %(value)r, может быть, %(closest)r? (возможно: %(choices)s)",
    "unknown parser %(parser_name)r (choices: %(choices)s)": "неизвестная команда %(parser_name)r (есть: %(choices)s)",
    "can't open '%(filename)s': %(error)s": "не удалось открыть «%(filename)s»: %(error)s",
    'argument "-" with mode %r': "аргумент «-» в режиме %r",
    "%r is not callable": "%r нельзя вызвать",
    "option '%(option)s' is deprecated": "параметр «%(option)s» устарел",
    "argument '%(argument_name)s' is deprecated": "аргумент «%(argument_name)s» устарел",
    "command '%(parser_name)s' is deprecated": "команда «%(parser_name)s» устарела",
    # Mistakes in building a parser (OMIS's own, never the user's), translated all the same.
    ".__call__() not defined": ".__call__() не определён",
    "conflicting subparser: %s": "команда %s объявлена дважды",
    "conflicting subparser alias: %s": "псевдоним команды %s объявлен дважды",
    "cannot merge actions - two groups are named %r": "нельзя объединить параметры: две группы называются %r",
    "'required' is an invalid argument for positionals": "«required» нельзя указывать для позиционных аргументов",
    "invalid option string %(option)r: must start with a character %(prefix_chars)r":
        "неверный параметр %(option)r: должен начинаться с символа %(prefix_chars)r",
    "dest= is required for options like %r": "для параметров вида %r нужен dest=",
    "invalid conflict_resolution value: %r": "неверное значение conflict_resolution: %r",
    "mutually exclusive arguments must be optional": "взаимоисключающие аргументы должны быть необязательными",
    "cannot have multiple subparser arguments": "у парсера может быть только один набор команд",
}
# (singular msgid, plural msgid) -> Russian forms for 1, 2-4, 5+ ("1 значение", "2 значения", "5 значений").
ARGPARSE_RU_PLURAL: dict[tuple[str, str], tuple[str, str, str]] = {
    ("expected %s argument", "expected %s arguments"):
        ("ожидается %s значение", "ожидается %s значения", "ожидается %s значений"),
    ("conflicting option string: %s", "conflicting option strings: %s"):
        ("параметр объявлен дважды: %s", "параметры объявлены дважды: %s", "параметры объявлены дважды: %s"),
}


def russian_plural_form(n: int) -> int:
    """Return the Russian plural form of a count: 0 for 1 (21…), 1 for 2-4 (22…), 2 for the rest."""
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


class RussianArgparse(gettext.NullTranslations):
    """The catalogue above as a gettext translation."""

    def gettext(self, message: str) -> str:
        # argparse passes None through `_` for a group without a description.
        return ARGPARSE_RU.get(message, message) if message is not None else message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        forms = ARGPARSE_RU_PLURAL.get((msgid1, msgid2))
        if forms is None:
            return msgid1 if n == 1 else msgid2
        return forms[russian_plural_form(n)]


_CATALOGUE = RussianArgparse()


@contextlib.contextmanager
def russian_argparse() -> Iterator[None]:
    """Make argparse speak Russian inside the block (re-entrant; the originals come back after)."""
    saved = (vars(argparse)["_"], vars(argparse)["ngettext"])
    setattr(argparse, "_", _CATALOGUE.gettext)  # noqa: B010 - the name is argparse's private gettext alias
    setattr(argparse, "ngettext", _CATALOGUE.ngettext)  # noqa: B010
    try:
        yield
    finally:
        setattr(argparse, "_", saved[0])  # noqa: B010
        setattr(argparse, "ngettext", saved[1])  # noqa: B010


class RussianArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage, help and errors are in Russian (its sub-parsers too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with russian_argparse():
            super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        with russian_argparse():
            return super().add_subparsers(**kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        with russian_argparse():
            return super().parse_known_args(args, namespace)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        with russian_argparse():
            return super().parse_args(args, namespace)

    def format_usage(self) -> str:
        with russian_argparse():
            return super().format_usage()

    def format_help(self) -> str:
        with russian_argparse():
            return super().format_help()

    def error(self, message: str) -> NoReturn:
        with russian_argparse():
            super().error(message)
