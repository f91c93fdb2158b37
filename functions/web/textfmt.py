"""How user text goes into a page: numbers that break only at their separators, text isolated for direction (pure).

A request number is one word to a reader: «ТО-2026/77» must not wrap as «ТО-202 / 6/77». So a
number is drawn as `<bdi class="num">` with `<wbr>` after each `/`, `-` and `.` (the only places a
line may break when it has to; the stylesheet forbids breaks elsewhere). Any text a person or a
contractor wrote is isolated for direction (`<bdi>`, or FSI…PDI where markup cannot go, as in
<title>), so a right-to-left word cannot reorder the sentence around it.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape

SEPARATORS = re.compile(r"(?<=[/\-.])(?=.)")
QUOTED = re.compile(r"«([^«»]*)»")
FSI, PDI = "\u2068", "\u2069"
WBR = Markup("<wbr>")


def number_html(number: object) -> Markup:
    """Return a request number as isolated markup that may break only after `/`, `-` or `.`."""
    pieces = SEPARATORS.split(str(number if number is not None else ""))
    return Markup('<bdi class="num">{}</bdi>').format(WBR.join(escape(piece) for piece in pieces))


def isolate_quoted(message: object) -> Markup:
    """Return a message with each «…» part isolated for direction (messages quote what users typed)."""
    if isinstance(message, Markup):      # already markup (e.g. a link of the sign-in page): left as it is
        return message
    parts = QUOTED.split(str(message if message is not None else ""))
    # re.split with one group: even items are the text between quotes, odd items what was quoted.
    return Markup("").join(Markup("«<bdi>{}</bdi>»").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def isolate_plain(text: object) -> str:
    """Return text wrapped in FSI…PDI, for places that take no markup (the page title)."""
    return f"{FSI}{text if text is not None else ''}{PDI}"
