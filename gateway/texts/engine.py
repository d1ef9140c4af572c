"""Customer and agent message templates: shipped TOML defaults, admin overrides, sandboxed Jinja.

Example:
    >>> engine = TemplateEngine(timezone="America/Santiago")
    >>> out = await engine.render("ack", locale="es", channel="telegram",
    ...                           context=engine.sample_context("ack"))
    >>> out.body.splitlines()[0]
    'Hola María, gracias por escribirnos.'
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import jinja2.sandbox as sandbox
from babel.dates import format_date, format_time
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SecurityError

from gateway.core.adapter import status_commands

log = logging.getLogger(__name__)

MAX_OUTPUT = 20_000  # characters per rendered part; messages are short
_UNSAFE_NAMES = frozenset({"mro"}).union(  # names the sandbox refuses at runtime anyway
    *(getattr(sandbox, n) for n in dir(sandbox) if n.startswith("UNSAFE_")))


@dataclass(frozen=True)
class TemplateSource:
    """One template text. Example: TemplateSource("ack", "es", "telegram", "", "Hola {{ ... }}")."""

    key: str
    locale: str
    channel: str  # "" = any channel
    subject: str
    body: str
    version: int = 0  # 0 = shipped default; >0 = admin-edited version stored in the DB


@dataclass(frozen=True)
class Rendered:
    """A rendered message. Example: Rendered("Recibimos tu solicitud [#1042]", "Hola…", src)."""

    subject: str
    body: str
    source: TemplateSource
    fell_back: bool = False  # a stored template failed and the shipped default was used
    error: str | None = None  # why it fell back


class TemplateError(ValueError):
    """An admin-facing template problem.

    kind is "syntax", "undefined", "sandbox", "runtime" or "unknown_key"; line is the template
    line when known. Example: TemplateError("syntax error on line 3 of the body: …", kind="syntax",
    line=3).
    """

    def __init__(self, message: str, *, kind: str, line: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.line = line


class TemplateStore(Protocol):
    """Admin-edited templates (the DB)."""

    async def current(self, key: str, locale: str, channel: str) -> TemplateSource | None:
        """Newest stored version for exactly (key, locale, channel), or None."""
        ...


# --- variables -------------------------------------------------------------------------------

FIELDS: dict[str, tuple[str, ...]] = {
    "customer": ("name", "first_name"),
    "ticket": ("number", "subject", "channel", "status", "priority", "url"),
    "agent": ("name",),
}
_COMMON = {
    "company": "Company name shown to customers.",
    "customer": "The customer: customer.name (full name), customer.first_name (may be empty).",
    "channel": "Channel of this conversation: email, telegram or slack.",
    "open_now": "True while we are inside opening hours.",
    "hours": "Readable opening hours, e.g. 'lunes a viernes, de 9:00 a 19:00 hrs'.",
    "next_opening": "When we open next (date and time), or none. Write {{ next_opening | when }}.",
    "status_command": "How to ask for the status on this channel ('/estado' on Telegram); "
    "empty when the channel has no commands.",
}
_TICKET = {
    "ticket": "The ticket: ticket.number, ticket.subject, ticket.channel, ticket.status "
    "(use {{ ticket.status | status_label }}), ticket.priority, ticket.url.",
    "due_at": "When the customer can expect a first answer. Write {{ due_at | when }}.",
    "sla_minutes": "Promised first-answer time in minutes. Write {{ sla_minutes | duration }}.",
}
_EXTRA: dict[str, dict[str, str]] = {
    "agent_reply": {"agent": "The answering agent: agent.name.", "text": "The agent's message."},
    "new_ticket": {"text": "The customer's message."},
    "delivery_failed": {"text": "The message that could not be delivered.",
                        "reason": "Why it could not be delivered."},
    "survey": {"score": "The rating, 1 to 5, or none (not answered yet)."},
    "survey_thanks": {"score": "The customer's rating, 1 to 5."},
    "status": {"tickets": "The customer's open tickets: a list of number, status, subject "
               "(may be empty)."},
    "sla_warning": {"reason": "What is at risk, e.g. 'first response: 80% of the time used'.",
                    "agent": "Who has the ticket: agent.name (may be empty)."},
    "digest": {"tickets": "Tickets that arrived while closed, oldest first: number, subject, "
               "status."},
}
_NO_TICKET = frozenset({"start", "status", "digest"})  # keys sent without a ticket

_SAMPLE_TEXT = {
    "es": {"hours": "lunes a viernes, de 9:00 a 19:00 hrs", "status_command": "/estado",
           "subject": "No me llegó el pedido", "reason": "el cliente bloqueó al bot",
           "text": "Hola María, ya ubicamos tu pedido: sale hoy y te llega mañana.",
           "customer_text": "Hola, hice un pedido hace una semana y todavía no me llega."},
    "en": {"hours": "Monday to Friday, 9:00 AM to 7:00 PM", "status_command": "/status",
           "subject": "My order has not arrived", "reason": "the customer blocked the bot",
           "text": "Hi María, we found your order: it ships today and arrives tomorrow.",
           "customer_text": "Hi, I ordered a week ago and it still has not arrived."},
}
_STATUS_LABELS = {
    "es": {"new": "recibida", "open": "en curso", "pending": "esperando tu respuesta",
           "waiting": "esperando tu respuesta", "on_hold": "en pausa", "resolved": "resuelta",
           "closed": "cerrada"},
    "en": {"new": "received", "open": "in progress", "pending": "waiting for your reply",
           "waiting": "waiting for your reply", "on_hold": "on hold", "resolved": "resolved",
           "closed": "closed"},
}


# --- locale-aware filters ---------------------------------------------------------------------


# Babel is slow (~50 µs a call) and a gateway formats the same few days and times all day.
@functools.lru_cache(maxsize=4096)
def _babel_date(value: date, pattern: str, locale: str) -> str:
    return format_date(value, pattern, locale=locale)


@functools.lru_cache(maxsize=4096)
def _babel_time(value: time, locale: str) -> str:
    return format_time(value, "short", locale=locale).replace("\u202f", " ")


@dataclass(frozen=True, eq=False)  # one per (locale, tz, now): see `_formatter`
class _Formatter:
    locale: str
    tz: tzinfo
    now: datetime

    @property
    def lang(self) -> str:
        return self.locale.split("_")[0]

    def local(self, value: datetime) -> datetime:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(self.tz)

    def date(self, value: date | datetime) -> str:
        d = self.local(value).date() if isinstance(value, datetime) else value
        other_year = d.year != self.local(self.now).year
        pattern = {"es": "EEEE d 'de' MMMM" + (" 'de' y" if other_year else ""),
                   "en": "EEEE, MMMM d" + (", y" if other_year else "")}.get(self.lang)
        return _babel_date(d, pattern or "full", self.locale)

    def time(self, value: datetime | time) -> str:
        t = self.local(value).time() if isinstance(value, datetime) else value
        return _babel_time(t.replace(tzinfo=None), self.locale)

    def at(self, value: datetime) -> str:
        if self.lang == "es":
            return ("a la " if self.local(value).hour == 1 else "a las ") + self.time(value)
        return "at " + self.time(value)

    def datetime(self, value: datetime) -> str:
        return f"{self.date(value)} {self.at(value)}"

    def when(self, value: datetime) -> str:
        days = (self.local(value).date() - self.local(self.now).date()).days
        words = {"es": {0: "hoy", 1: "mañana", -1: "ayer"},
                 "en": {0: "today", 1: "tomorrow", -1: "yesterday"}}.get(self.lang, {})
        if days in words:
            return f"{words[days]} {self.at(value)}"
        return {"es": "el ", "en": "on "}.get(self.lang, "") + self.datetime(value)

    def duration(self, minutes: float | timedelta) -> str:
        if isinstance(minutes, timedelta):
            minutes = minutes.total_seconds() / 60
        total = max(0, round(minutes))
        units = {"es": (("día", "días"), ("hora", "horas"), ("minuto", "minutos"), " y "),
                 "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"), " and ")}
        *names, joiner = units.get(self.lang, units["en"])
        parts = [f"{n} {name[n != 1]}" for n, name in
                 zip((total // 1440, total % 1440 // 60, total % 60), names, strict=True) if n]
        return joiner.join(parts[:2]) or f"0 {names[2][1]}"

    def status_label(self, code: str) -> str:
        return _STATUS_LABELS.get(self.lang, {}).get(str(code), str(code).replace("_", " "))


_FMT: ContextVar[_Formatter] = ContextVar("centralita_template_formatter")


@functools.lru_cache(maxsize=64)
def _formatter(locale: str, tz: tzinfo, now: datetime) -> _Formatter:
    """The formatter for a locale at `now`, shared by the texts of a batch (they share
    their instant), so the filters' cache below finds it by identity."""
    return _Formatter(locale, tz, now)


@functools.lru_cache(maxsize=4096)
def _formatted(fmt: _Formatter, name: str, value: Any) -> str:
    """A filter's text, once per formatter and value: the messages of a batch share their
    `now`, so their due times and next opening are formatted once for all of them."""
    return getattr(fmt, name)(value)


def _filter(name: str) -> Any:
    def apply(value: Any) -> str:
        if value is None or value == "":  # e.g. next_opening while open: print nothing
            return ""
        fmt = _FMT.get(None)
        if fmt is None:  # outside render_source: a one-off formatter, not worth caching
            return getattr(_Formatter("en", UTC, datetime.now(UTC)), name)(value)
        try:
            hash(value)
        except TypeError:  # a list, a dict…: formatted (or refused) without the cache
            return getattr(fmt, name)(value)
        return _formatted(fmt, name, value)

    apply.__name__ = name
    return apply


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _printable(value: Any, depth: int = 0) -> Any:
    """What a template may turn into text: data, never a function, class or module, nor a
    list or dict holding one (their text shows the gateway's internals, e.g.
    "<function safe_range at 0x7f…>"). Every way to text goes through here: printing,
    `~`, and the value and arguments of every filter (`| string`, `| join`, `| upper`…)."""
    if value.__class__ in _PLAIN:  # nearly every value: text and numbers
        return value
    if isinstance(value, jinja2.Undefined):
        return value  # Jinja reports it (unknown name, or an attribute the sandbox refused)
    if callable(value) or isinstance(value, type | types.ModuleType):
        raise SecurityError("the template tried to print a function or an object, which is "
                            "not allowed")
    if depth < 8 and isinstance(value, list | tuple | set | frozenset | dict):
        for item in (value.items() if isinstance(value, dict) else value):
            _printable(item, depth + 1)
    return value


class _Code(CodeGenerator):
    """Jinja's code generator, with `a ~ b` joined by the sandbox's `join_printable`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.join_printable((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _guarded(apply: Any) -> Any:
    """A built-in filter that refuses functions, classes and modules as its input or its
    arguments (e.g. `{{ namespace | string }}`), as printing them is refused."""
    skip = 1 if getattr(apply, "jinja_pass_arg", None) else 0  # context/env comes first

    @functools.wraps(apply)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            _printable(value)
        return apply(*args, **kwargs)
    return guarded


class _Env(sandbox.ImmutableSandboxedEnvironment):
    """The sandbox, plus a guard against giant strings ('x' * 10**9) and huge powers, and
    against internals turned into text (see `_printable`)."""

    intercepted_binops = frozenset({"*", "**"})
    code_generator_class = _Code

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("the template tried to compute a huge power, which is not allowed")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and \
                        len(seq) * n > MAX_OUTPUT:
                    raise SecurityError("the template tried to build a huge text, "
                                        "which is not allowed")
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def join_printable(parts: tuple[Any, ...]) -> str:
        return "".join(str(_printable(part)) for part in parts)


_ENV = _Env(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
            trim_blocks=True, lstrip_blocks=True, finalize=_printable)
for _unused in ("lipsum", "cycler", "joiner", "dict"):  # nothing a message text needs
    _ENV.globals.pop(_unused, None)
# (attr is attribute access, which the sandbox itself checks, naming the attribute)
_ENV.filters = {name: apply if name == "attr" else _guarded(apply)
                for name, apply in _ENV.filters.items()}
_ENV.filters.update({n: _filter(n) for n in
                     ("when", "date", "time", "datetime", "duration", "status_label")})


@functools.lru_cache(maxsize=1024)
def _compile(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


@functools.lru_cache(maxsize=1024)
def _globals(template: jinja2.Template) -> tuple[dict[str, Any], frozenset[str]]:
    return dict(template.globals), frozenset(template.globals)


def _subject(text: str) -> str:
    return " ".join(text.split())  # str.split() also splits on \r, \n, \x0b, \u2028 …


def _body(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


# --- errors -----------------------------------------------------------------------------------

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


def _explain(exc: Exception, part: str) -> TemplateError:
    if isinstance(exc, TemplateError):
        return exc
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


def _scan(ast: nodes.Template, allowed: Mapping[str, str], part: str) -> None:
    """Static checks: private/internal attributes, unknown variables, unknown fields."""
    for node in _post_order(ast):  # innermost first: ''.__class__.__mro__ names '__class__'
        name = (node.attr if isinstance(node, nodes.Getattr) else
                getattr(node.arg, "value", None) if isinstance(node, nodes.Getitem) else None)
        if isinstance(name, str) and (name.startswith("_") or name in _UNSAFE_NAMES):
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


@functools.cache
def _shipped() -> dict[str, dict[str, dict[str, TemplateSource]]]:
    """locale -> key -> channel -> TemplateSource, from gateway/texts/defaults/*.toml."""
    out: dict[str, dict[str, dict[str, TemplateSource]]] = {}
    for file in resources.files("gateway.texts").joinpath("defaults").iterdir():
        if not file.name.endswith(".toml"):
            continue
        locale = file.name.removesuffix(".toml")
        for key, table in tomllib.loads(file.read_text(encoding="utf-8")).items():
            generic = TemplateSource(key, locale, "", table.get("subject", ""), table["body"])
            variants = {"": generic}
            for channel, sub in table.items():
                if isinstance(sub, dict):
                    variants[channel] = TemplateSource(key, locale, channel,
                                                       sub.get("subject", generic.subject),
                                                       sub.get("body", generic.body))
            out.setdefault(locale, {})[key] = variants
    return out


class TemplateEngine:
    """Finds, validates and renders templates.

    Example:
        >>> engine = TemplateEngine(default_locale="es", timezone="America/Santiago", store=db)
        >>> engine.default("ack", "es", "telegram").channel
        'telegram'
    """

    def __init__(self, *, default_locale: str = "es", timezone: str = "UTC",
                 store: TemplateStore | None = None) -> None:
        self._shipped = _shipped()
        if default_locale not in self._shipped:
            raise ValueError(f"no shipped templates for default locale {default_locale!r}")
        try:
            self.tz: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.default_locale, self.store = default_locale, store
        self._locales: dict[str | None, str] = {}

    def locale(self, locale: str | None) -> str:
        """The shipped locale used for `locale`. Example: locale("es-CL") -> "es"; "fr" -> "es"."""
        if (known := self._locales.get(locale)) is not None:
            return known
        norm = (locale or "").replace("-", "_").lower()
        found = next((candidate for candidate in (norm, norm.split("_")[0])
                      if candidate in self._shipped), self.default_locale)
        if len(self._locales) < 1024:  # locales come from customers' clients: bounded
            self._locales[locale] = found
        return found

    def keys(self) -> list[str]:
        """Shipped keys, in file order. Example: keys()[0] -> "ack"."""
        return list(self._shipped[self.default_locale])

    def defaults(self) -> list[TemplateSource]:
        """Every shipped (key, locale, channel) template."""
        return [src for keys in self._shipped.values() for variants in keys.values()
                for src in variants.values()]

    def default(self, key: str, locale: str | None, channel: str = "") -> TemplateSource:
        """Shipped template: the channel override if any, else the generic one.

        Example: default("ack", "fr", "slack") -> the Spanish generic "ack".
        """
        variants = self._shipped[self.locale(locale)].get(key)
        if variants is None:
            raise TemplateError(f"unknown template '{key}'. Known: {', '.join(self.keys())}.",
                                kind="unknown_key")
        return variants.get(channel, variants[""])

    def variables(self, key: str) -> dict[str, str]:
        """Variable name -> description for `key`. Example: "score" in variables("survey")."""
        self.default(key, self.default_locale)
        ticket = {} if key in _NO_TICKET else _TICKET
        return dict(sorted({**_COMMON, **ticket, **_EXTRA.get(key, {})}.items()))

    def sample_context(self, key: str | None, *, locale: str | None = None, channel: str = "",
                       now: datetime | None = None) -> dict[str, Any]:
        """A realistic context for previews. Example: sample_context("ack")["ticket"]["number"]."""
        loc = self.locale(locale)
        txt = _SAMPLE_TEXT.get(loc.split("_")[0], _SAMPLE_TEXT["en"])
        now = (now or datetime.now(UTC)).astimezone(self.tz)
        opening = datetime.combine(now.date(), time(9), self.tz)
        while opening <= now or opening.weekday() >= 5:
            opening += timedelta(days=1)
        open_now = key != "ack_closed"
        channel = channel or "telegram"
        full: dict[str, Any] = {
            "company": "Tienda Aurora", "channel": channel, "open_now": open_now,
            "customer": {"name": "María González", "first_name": "María"},
            "ticket": {"number": 1042, "subject": txt["subject"], "channel": channel,
                       "status": "open", "priority": "normal",
                       "url": "https://soporte.example.com/t/1042"},
            "hours": txt["hours"], "next_opening": opening, "sla_minutes": 120,
            "due_at": (now if open_now else opening) + timedelta(minutes=120),
            "status_command": status_commands(channel).get(loc.split("_")[0], ""),
            "agent": {"name": "Ana"}, "score": None if key == "survey" else 5,
            "text": txt["customer_text" if key == "new_ticket" else "text"],
            "reason": txt["reason"],
            "tickets": [{"number": 1042, "status": "open", "subject": txt["subject"]},
                        {"number": 987, "status": "pending", "subject": ""}],
        }
        return full if key is None else {k: full[k] for k in self.variables(key)}

    def validate(self, subject: str, body: str, key: str | None = None, *,
                 locale: str | None = None, channel: str = "") -> None:
        """Raise TemplateError unless the texts compile, use known variables and render safely.

        Example: validate("", "{{ ''.__class__ }}", "ack") raises kind="sandbox".
        """
        allowed = (self.variables(key) if key is not None else
                   {k: "" for k in self.sample_context(None)})
        for part, text in (("subject", subject), ("body", body)):
            try:
                ast = _ENV.parse(text)
                _compile(text)
            except jinja2.TemplateSyntaxError as exc:
                raise _explain(exc, part) from None
            _scan(ast, allowed, part)
        source = TemplateSource(key or "", self.locale(locale), channel, subject, body)
        self.render_source(source, self.sample_context(key, locale=locale, channel=channel))

    def render_source(self, source: TemplateSource, context: Mapping[str, Any], *,
                      now: datetime | None = None, subject: bool = True) -> tuple[str, str]:
        """Render (subject, body) in the sandbox; raises TemplateError on any failure.
        With `subject=False` (a channel without subjects) the subject is "", unrendered.

        Example: render_source(engine.default("ack", "es"), ctx) -> ("Recibimos…", "Hola María…")
        """
        fmt = _formatter(self.locale(source.locale), self.tz, now or datetime.now(UTC))
        token = _FMT.set(fmt)
        try:
            return (_subject(self._render(source.subject, context, "subject"))
                    if subject else ""), _body(self._render(source.body, context, "body"))
        finally:
            _FMT.reset(token)

    @staticmethod
    def _render(text: str, context: Mapping[str, Any], part: str) -> str:
        if "{" not in text:  # plain text (often an empty subject): Jinja would return it
            return text.removesuffix("\n")
        try:
            template = _compile(text)
            # Template.render(), minus the work it repeats on every call for the same
            # template (half its cost): merging its globals into the variables, and
            # listing their names (a ChainMap walk) for the context.
            merged, names = _globals(template)
            run = _ENV.context_class(_ENV, {**merged, **context}, template.name,
                                     template.blocks)
            run.globals_keys = names  # what new_context(globals=…) would have computed
            try:
                out = _ENV.concat(template.root_render_func(run))  # type: ignore[attr-defined]
            except Exception:
                _ENV.handle_exception()  # as render() does: the template's line, not ours
        except Exception as exc:
            raise _explain(exc, part) from None
        if len(out) > MAX_OUTPUT:
            raise TemplateError(f"the {part} is too long ({len(out)} characters)", kind="sandbox")
        return out

    async def render(self, key: str, *, locale: str | None, channel: str,
                     context: Mapping[str, Any], now: datetime | None = None,
                     subject: bool = True) -> Rendered:
        """Render the admin's stored template, falling back to the shipped default
        (`subject=False`: see `render_source`).

        Example: (await engine.render("ack", locale="es", channel="email", context=ctx)).subject
        """
        loc = self.locale(locale)
        default = self.default(key, loc, channel)
        error: str | None = None
        try:
            stored = await self._lookup(key, loc, channel)
        except Exception as exc:  # a DB hiccup must not stop acknowledgements
            log.warning("template store failed for %s/%s/%s: %s", key, loc, channel, exc)
            stored, error = None, f"template store unavailable: {exc}"
        if stored is not None:
            try:
                title, body = self.render_source(stored, context, now=now, subject=subject)
                return Rendered(title, body, stored)
            except TemplateError as exc:
                error = str(exc)
                log.warning("stored template %s/%s/%s v%s failed, using the shipped default: %s",
                            key, loc, stored.channel, stored.version, exc)
        title, body = self.render_source(default, context, now=now, subject=subject)
        return Rendered(title, body, default, fell_back=error is not None, error=error)

    async def _lookup(self, key: str, locale: str, channel: str) -> TemplateSource | None:
        if self.store is None:
            return None
        for ch in dict.fromkeys((channel, "")):
            found = await self.store.current(key, locale, ch)
            if found is not None:
                return found
        return None
