"""The bytes of a text part as str: the declared charset read as mail clients mean it
(WHATWG-style supersets: "iso-8859-1" is cp1252, "gb2312" is gb18030…), else UTF-8, else
cp1252. Never raises; bad bytes become U+FFFD.

Example:
    >>> decode_text("Me cobraron 20 \\x80\\r\\n".encode("latin-1"), "iso-8859-1")
    'Me cobraron 20 €\\n'
    >>> decode_text("Señores".encode(), "utf\\x00-8")
    'Señores'
"""

from __future__ import annotations

import codecs

__all__ = ["CHARSETS", "decode_text"]

# Charset names as mail clients mean them (WHATWG-style supersets).
CHARSETS = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "iso-8859-9": "cp1254", "tis-620": "cp874",
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
}


def _mostly_utf8(data: bytes) -> str | None:
    """`data` as UTF-8 when it is UTF-8 (a few bad bytes, e.g. a truncated tail, allowed)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
    high = len(data) - len(data.decode("ascii", "ignore"))
    return text if text.count("\ufffd") * 10 < high else None


def decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a text part as str, '\\n' line endings: the declared charset (as clients
    mean it), else UTF-8, else cp1252; never raises, bad bytes become U+FFFD."""
    name = (charset or "").strip().strip("\"'").lower()
    alias = CHARSETS.get(name, name)
    try:
        codec = codecs.lookup(alias).name if alias else ""
    except Exception:  # unknown, or not even a name ("utf\x00-8")
        codec = ""
    text: str | None = None
    if codec and not (alias == "cp1252" and name != alias):
        try:
            text = data.decode(codec)
        except Exception:
            text = _mostly_utf8(data) if codec != "utf-8" else None
            if text is None:
                text = data.decode(codec, "replace")
    if text is None:   # no charset, an unknown one, or "latin-1"/"us-ascii" (often UTF-8)
        text = _mostly_utf8(data)
    if text is None:
        text = data.decode("cp1252", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")
