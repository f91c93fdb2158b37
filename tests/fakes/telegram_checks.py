"""What the Bot API refuses in a text or a keyboard, checked as Telegram does (for the fake Bot API)."""
from __future__ import annotations

import re

MESSAGE_LIMIT = 4096
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "span", "tg-spoiler", "tg-emoji", "blockquote"}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class HtmlError(ValueError):
    """Text that Telegram's HTML parse mode would reject."""


def html_visible_text(text: str) -> str:
    """Check Telegram HTML the way the Bot API does and return the text a user would see."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            m = _TAG_RE.match(text, i)
            if not m or m.group(2).lower() not in _ALLOWED_TAGS:
                raise HtmlError(f"can't parse entities: Unsupported start tag at byte offset {i}")
            name = m.group(2).lower()
            if m.group(1):
                if not stack or stack[-1] != name:
                    raise HtmlError(f"can't parse entities: Unexpected end tag at byte offset {i}")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif char == ">":
            raise HtmlError(f"can't parse entities: Character '>' is reserved at byte offset {i}")
        elif char == "&":
            m = _ENTITY_RE.match(text, i)
            if not m:
                raise HtmlError(f"can't parse entities: Character '&' is reserved at byte offset {i}")
            ref = m.group(1)
            out.append({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(ref) or chr(
                int(ref[2:], 16) if ref.startswith("#x") else int(ref[1:])))
            i = m.end()
        else:
            out.append(char)
            i += 1
    if stack:
        raise HtmlError(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def markup_error(markup: object) -> str | None:
    """Check an inline keyboard as the Bot API does; return its refusal, or None."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return "can't parse reply keyboard markup JSON object"
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text") or "").strip():
                return "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                return "BUTTON_DATA_INVALID"
    return None
