"""Log lines that values cannot forge: control characters in logged values are escaped.

A position typed as "x\\r\\n2026-12-01 ERROR …" or a mail subject with ESC sequences must not
start a fake log line or repaint a terminal. OMIS logs values as %-style arguments (the house
style), so the escaping is applied to the arguments of every record of OMIS's own loggers
(`functions` and below), not to the format strings, which are ours.

It is done by a log record factory, not a handler or formatter: under the Functions host the
worker owns the handlers (it ships each record to the host), and a filter on the `functions`
logger would not see the records of its children. `install_log_escaping()` is called where
OMIS starts: `function_app.py` (the host, tests through the app) and the CLI's logging set-up.
Records of other libraries are left as they are.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

OMIS_LOGGER = "functions"
# Bidi controls reorder what a log viewer shows; the line and paragraph separators end lines.
_BIDI_AND_SEPARATORS = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape(cp: int) -> str:
    return _NAMED.get(cp) or (f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}")


_ESCAPES = {cp: _escape(cp) for cp in (*range(0x20), *range(0x7F, 0xA0), *_BIDI_AND_SEPARATORS)}


def escape_controls(text: str) -> str:
    """Return text with control, bidi and line-separator characters escaped (\\n, \\x1b, \\u202e)."""
    return text.translate(_ESCAPES)


def escape_log_args(args: Any) -> Any:
    """Return %-style log arguments with every str escaped (a tuple, a mapping, or None)."""
    if isinstance(args, tuple):
        return tuple(escape_controls(a) if isinstance(a, str) else a for a in args)
    if isinstance(args, Mapping):
        return {k: escape_controls(v) if isinstance(v, str) else v for k, v in args.items()}
    return args


_install_lock = threading.Lock()


def install_log_escaping() -> None:
    """Escape the arguments of OMIS's log records from now on (calling it again changes nothing)."""
    with _install_lock:
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
        if getattr(previous, "omis_escaping", False):
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if record.name == OMIS_LOGGER or record.name.startswith(OMIS_LOGGER + "."):
                record.args = escape_log_args(record.args)
            return record

        factory.omis_escaping = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
