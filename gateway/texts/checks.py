"""Checking an admin's text before it is saved, and explaining what is wrong with it in
words an admin understands (the line, the variable, what is allowed).

Example:
    >>> explain(jinja2.TemplateSyntaxError("unexpected '}'", 3), "body").kind
    'syntax'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SecurityError

from gateway.texts.budget import TooMuchWork
from gateway.texts.sandbox import UNSAFE_NAMES
from gateway.texts.variables import FIELDS


class TemplateError(ValueError):
    """An admin-facing template problem.

    kind is "syntax", "undefined", "sandbox", "budget" (too much work: see `too_much`),
    "runtime" or "unknown_key"; line is the template line when known.
    Example: TemplateError("syntax error on line 3 of the body: …", kind="syntax", line=3).
    """

    def __init__(self, message: str, *, kind: str, line: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.line = line

_UNSAFE_RE = re.compile(r"attribute '([^']+)'")


def _sandbox_message(name: str) -> str:
    return f"the template tried to use '{name}', which is not allowed"


def _template_line(exc: BaseException) -> int | None:
    tb, line = exc.__traceback__, None
    while tb is not None:  # Jinja rewrites tracebacks so template frames carry template lines
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# What each limit of gateway.texts.budget means to an admin, in Spanish and in English.
_TOO_MUCH = {
    "es": ("este texto hace demasiado trabajo: {}", {
        "steps": "más de {n} pasos (vueltas de {{% for %}}, llamadas y filtros)",
        "time": "tarda más de {n} ms en escribirse",
        "size": "arma un texto o una lista de más de {n} caracteres o elementos",
        "number": "calcula un número de más de {n} bits (unas {digits} cifras)",
        "output": "el resultado tendría más de {n} caracteres",
        "source": "es demasiado largo: tiene más de {n} caracteres"}),
    "en": ("this text does too much work: {}", {
        "steps": "more than {n} steps (turns of {{% for %}} loops, calls and filters)",
        "time": "takes longer than {n} ms to render",
        "size": "builds a text or list of more than {n} characters or items",
        "number": "computes a number of more than {n} bits (about {digits} digits)",
        "output": "the result would be longer than {n} characters",
        "source": "is too long: more than {n} characters"}),
}
_PARTS = {"es": {"subject": "asunto", "body": "texto"}, "en": {}}


def too_much(exc: TooMuchWork, part: str, lang: str, line: int | None = None) -> TemplateError:
    """The admin's message for a render over its budget, naming the limit, e.g. "este texto
    hace demasiado trabajo: más de 100000 pasos (…) (línea 3 del texto)"."""
    lang = lang if lang in _TOO_MUCH else "en"
    sentence, limits = _TOO_MUCH[lang]
    what = limits[exc.limit].format(n=exc.bound, digits=round(exc.bound * 0.30103))
    if exc.limit == "source":  # not work: the text itself
        sentence = ("este texto {}" if lang == "es" else "this text {}")
    name = _PARTS[lang].get(part, part)
    where = (f"línea {line} del {name}" if line else f"en el {name}") if lang == "es" else \
        (f"line {line} of the {name}" if line else f"in the {name}")
    return TemplateError(f"{sentence.format(what)} ({where})", kind="budget", line=line)


def explain(exc: Exception, part: str, lang: str = "en") -> TemplateError:
    """The admin's message for `exc`, raised by the `part` ("subject" or "body") of a text;
    a render over its budget is told in `lang` ("es" or "en")."""
    if isinstance(exc, TemplateError):
        return exc
    if isinstance(exc, TooMuchWork):
        return too_much(exc, part, lang, _template_line(exc))
    if isinstance(exc, RecursionError):  # the parser's or the compiler's, on deep nesting
        return TemplateError(f"the {part} nests too deeply (brackets, ifs or loops inside "
                             "one another)", kind="syntax")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(f"syntax error on line {exc.lineno} of the {part}: {exc.message}",
                             kind="syntax", line=exc.lineno)
    line = _template_line(exc)
    where = f" (line {line} of the {part})" if line else f" (in the {part})"
    if isinstance(exc, SecurityError):
        found = _UNSAFE_RE.search(str(exc))
        msg = _sandbox_message(found.group(1)) if found else str(exc)
        return TemplateError(msg + where, kind="sandbox", line=line)
    if isinstance(exc, jinja2.UndefinedError):
        found = re.match(r"'([^']+)' is undefined", str(exc))
        field = re.search(r"has no attribute '([^']+)'", str(exc))
        msg = (f"unknown variable '{found.group(1)}'" if found else
               f"unknown field '{field.group(1)}'" if field else f"unknown value: {exc}")
        return TemplateError(msg + where, kind="undefined", line=line)
    return TemplateError(f"the template failed{where}: {type(exc).__name__}: {exc}",
                         kind="runtime", line=line)


def _post_order(node: nodes.Node) -> Iterator[nodes.Node]:
    for child in node.iter_child_nodes():
        yield from _post_order(child)
    yield node


def scan(ast: nodes.Template, allowed: Mapping[str, str], part: str) -> None:
    """Static checks: private/internal attributes, unknown variables, unknown fields."""
    for node in _post_order(ast):  # innermost first: ''.__class__.__mro__ names '__class__'
        name = (node.attr if isinstance(node, nodes.Getattr) else
                getattr(node.arg, "value", None) if isinstance(node, nodes.Getitem) else None)
        if isinstance(name, str) and (name.startswith("_") or name in UNSAFE_NAMES):
            raise TemplateError(f"{_sandbox_message(name)} (line {node.lineno} of the {part})",
                                kind="sandbox", line=node.lineno)
    for name in sorted(meta.find_undeclared_variables(ast) - set(allowed)):
        close = difflib.get_close_matches(name, list(allowed), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise TemplateError(f"unknown variable '{name}' in the {part}.{hint} "
                            f"Available: {', '.join(sorted(allowed))}.", kind="undefined")
    for node in ast.find_all(nodes.Getattr):
        parent = node.node.name if isinstance(node.node, nodes.Name) else None
        if parent in FIELDS and parent in allowed and node.attr not in FIELDS[parent]:
            raise TemplateError(
                f"unknown variable '{parent}.{node.attr}' (line {node.lineno} of the {part}). "
                f"{parent} has: {', '.join(FIELDS[parent])}.", kind="undefined", line=node.lineno)


# --- shipped defaults -------------------------------------------------------------------------
