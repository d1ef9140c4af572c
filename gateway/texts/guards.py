"""Refusing, before it is made, a value one step would make too big: operators, the
methods of texts and the built-in filters that widen, pad, repeat or fill (`'x' * n`,
`s.center(n)`, `s | replace('x', s)`, `range(n) | join(s)`, `l | batch(n, 0)`…).

Example:
    >>> before_binop("**", 99, 10_000)   # 99 has 7 bits: 70 000 bits is too many
    Traceback (most recent call last):
    gateway.texts.budget.TooMuchWork: number over 4096
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from typing import Any

from gateway.texts.budget import (
    MAX_BITS,
    MAX_SIZE,
    TooMuchWork,
    counted,
    length,
    refuse_format,
    refuse_size,
    refuse_spread,
)

Args = tuple[Any, ...]


def before_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `left <operator> right` when its result would be too big to make."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                left.bit_length() * right > MAX_BITS:
            raise TooMuchWork("number", MAX_BITS)
    elif operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                refuse_size(len(seq) * times)
    elif operator == "+":
        refuse_size(length(left) + length(right))
    elif operator == "%" and isinstance(left, str):
        values = (right.values() if isinstance(right, Mapping) else
                  right if isinstance(right, tuple) else (right,))
        refuse_format(left, values)


def _arg(args: Args, kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _replaced(text: str, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(old, str) and isinstance(new, str)):
        return
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    refuse_size(len(text) + times * len(new))


def _joined(separator: str, count: int) -> None:
    refuse_size(max(count - 1, 0) * len(separator))


# --- the methods of a text: (the text, its arguments) -> the arguments to call it with ------


def _padded(text: str, args: Args, kwargs: Mapping[str, Any]) -> Args:
    refuse_size(_int(_arg(args, kwargs, 0, "width", 0)))
    return args


def _tabs(text: str, args: Args, kwargs: Mapping[str, Any]) -> Args:
    refuse_size(len(text) + text.count("\t") * _int(_arg(args, kwargs, 0, "tabsize", 8)))
    return args


def _replace(text: str, args: Args, kwargs: Mapping[str, Any]) -> Args:
    _replaced(text, _arg(args, kwargs, 0, "old", None), _arg(args, kwargs, 1, "new", None),
              _arg(args, kwargs, 2, "count", -1))
    return args


def _join(text: str, args: Args, kwargs: Mapping[str, Any]) -> Args:
    if not args:
        return args
    items = list(counted(args[0]))  # one step per item; then joined from the list
    _joined(text, len(items))
    return (items, *args[1:])


def _translate(text: str, args: Args, kwargs: Mapping[str, Any]) -> Args:
    table = _arg(args, kwargs, 0, "table", None)
    if isinstance(table, Mapping):
        refuse_spread(len(text), table.values())
    return args


METHODS: dict[str, Callable[[str, Args, Mapping[str, Any]], Args]] = {
    "center": _padded, "ljust": _padded, "rjust": _padded, "zfill": _padded,
    "expandtabs": _tabs, "replace": _replace, "join": _join, "translate": _translate,
}


def before_method(method: Any, args: Args, kwargs: Mapping[str, Any]) -> Args:
    """The arguments to call a text's `method` with, unless its result would be too big."""
    check = METHODS.get(getattr(method, "__name__", ""))
    return args if check is None else check(method.__self__, args, kwargs)


# --- the built-in filters: (the value, its arguments) -> the value to filter ----------------


def _center(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    refuse_size(_int(_arg(args, kwargs, 0, "width", 80)))
    return value


def _indent(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    width = _arg(args, kwargs, 0, "width", 4)
    text = str(value)
    refuse_size(len(text) + (text.count("\n") + 1) *
                (len(width) if isinstance(width, str) else _int(width)))
    return value


def _replace_filter(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    _replaced(str(value), _arg(args, kwargs, 0, "old", None), _arg(args, kwargs, 1, "new", None),
              _arg(args, kwargs, 2, "count", None))
    return value


def _join_filter(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    if not isinstance(value, Sized):
        value = list(counted(value))  # lazy (map, select…): one step per item, then joined
    separator = _arg(args, kwargs, 0, "d", "")
    if isinstance(separator, str):
        _joined(separator, len(value))
    return value


def _format(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    refuse_format(str(value), (*args, *kwargs.values()))
    return value


def _batch(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    if _arg(args, kwargs, 1, "fill_with", None) is not None:  # the last batch is filled up
        refuse_size(_int(_arg(args, kwargs, 0, "linecount", 0)))
    return value


def _slice(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    refuse_size(_int(_arg(args, kwargs, 0, "slices", 0)))  # one turn per slice
    return value


def _wordwrap(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    width, wrap = _arg(args, kwargs, 0, "width", 79), _arg(args, kwargs, 2, "wrapstring", None)
    text = str(value)
    if isinstance(wrap, str) and isinstance(width, int):
        refuse_size(len(text) + len(text) // max(width, 1) * len(wrap))
    return value


def _tojson(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    refuse_size(_int(_arg(args, kwargs, 0, "indent", 0)) * (length(value) + 1))
    return value


def _sum(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    if not isinstance(_arg(args, kwargs, 1, "start", 0), int | float):
        raise TooMuchWork("size", MAX_SIZE)  # adding up lists copies them again and again
    return value


def _urlize(value: Any, args: Args, kwargs: Mapping[str, Any]) -> Any:
    refuse_spread(len(str(value)), (kwargs.get("target"), kwargs.get("rel"), *args[2:4]))
    return value


FILTERS: dict[str, Callable[[Any, Args, Mapping[str, Any]], Any]] = {
    "center": _center, "indent": _indent, "replace": _replace_filter, "join": _join_filter,
    "format": _format, "batch": _batch, "slice": _slice, "wordwrap": _wordwrap,
    "tojson": _tojson, "sum": _sum, "urlize": _urlize,
}
