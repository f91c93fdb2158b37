"""Numbers that look alike across scripts: «AB-17» (Latin) and «АВ-17» (Cyrillic) (pure).

`skeleton` folds a number to what it looks like: NFKC (full-width forms, ligatures), case, and
the letters of Cyrillic and Greek that are drawn like Latin ones. Two numbers with the same
skeleton would be confused by a person reading a list or a mail, so a new number that shares a
skeleton with an existing one needs a confirmation (mail matching stays exact, SPEC §1).
"""
from __future__ import annotations

import unicodedata

# Lower-case forms (the skeleton is case-folded first); a Cyrillic or Greek letter maps to the Latin
# letter its capital or small form is drawn like.
_LOOKALIKES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "з": "3", "ь": "b",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "n", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "y", "χ": "x", "ϲ": "c", "ϳ": "j",
})


def skeleton(number: str) -> str:
    """Return what a request number looks like, for finding numbers a person would confuse."""
    text = unicodedata.normalize("NFKC", number.strip()).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", text.translate(_LOOKALIKES))
