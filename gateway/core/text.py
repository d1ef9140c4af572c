"""Text hygiene for everything that enters the database or a header.

>>> clean_text("hola\\x00\\r\\nmundo")
'hola\\nmundo'
>>> clean_line("Asunto\\r\\nBcc: x@y", 300)
'Asunto Bcc: x@y'
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")


def clean_text(text: str | bytes | None) -> str:
    """Valid UTF-8 (bad bytes become U+FFFD), no NUL characters, '\\n' line endings."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not text.isascii():
        # Lone surrogates cannot be stored anywhere: bytes smuggled in by surrogateescape
        # decoding become one U+FFFD each, like any other invalid byte.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            try:
                data = text.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                data = text.encode("utf-8", "surrogatepass")
            text = data.decode("utf-8", "replace")
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def clean_line(text: str | None, limit: int) -> str:
    """One line (CR/LF and runs of whitespace become one space), at most `limit` chars."""
    if not text:
        return ""
    if text.__class__ is str and len(text) <= limit and text.isprintable() and \
            "  " not in text and text[0] != " " and text[-1] != " ":
        return text  # already one clean line (the only whitespace a printable text has is " ")
    return _SPACES.sub(" ", clean_text(text)).strip()[:limit].rstrip()
