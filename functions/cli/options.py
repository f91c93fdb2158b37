"""Option values shared by several commands, checked the same way wherever they appear."""
from __future__ import annotations

import argparse

MINUTES_MAX = 525_600  # a year
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def minutes(value: str) -> int:
    """Read `--minutes N`: a whole number of minutes from 0 to a year."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"ожидается целое число минут от 0 до {MINUTES_MAX}, получено «{value}»")
    number = int(text)
    if number > MINUTES_MAX:
        raise argparse.ArgumentTypeError(f"от 0 до {MINUTES_MAX} минут, получено {number}")
    return number


def log_level(value: str) -> str:
    """Read `--log-level L`: one of DEBUG, INFO, WARNING, ERROR, in any case."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"ожидается один из уровней {', '.join(LOG_LEVELS)}, получено «{value}»")
    return level


def port(value: str) -> int:
    """Read `--port P`: a TCP port from 1 to 65535."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"ожидается номер порта от 1 до 65535, получено «{value}»")
    return int(text)
