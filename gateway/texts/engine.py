"""Customer and agent message templates: shipped TOML defaults, admin overrides, sandboxed Jinja.

Example:
    >>> engine = TemplateEngine(timezone="America/Santiago")
    >>> out = await engine.render("ack", locale="es", channel="telegram",
    ...                           context=engine.sample_context("ack"))
    >>> out.body.splitlines()[0]
    'Hola María, gracias por escribirnos.'
"""

from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from importlib import resources
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from gateway.core.adapter import Capabilities, capabilities_of
from gateway.texts.checks import TemplateError, explain, scan
from gateway.texts.filters import FMT, formatter
from gateway.texts.sandbox import (
    ENV,
    MAX_OUTPUT,
    clean_body,
    clean_subject,
    compile_text,
    template_globals,
)
from gateway.texts.variables import sample_values, variables_of

__all__ = ["Rendered", "TemplateEngine", "TemplateError", "TemplateSource", "TemplateStore"]

log = logging.getLogger(__name__)


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


class TemplateStore(Protocol):
    """Admin-edited templates (the DB)."""

    async def current(self, key: str, locale: str, channel: str) -> TemplateSource | None:
        """Newest stored version for exactly (key, locale, channel), or None."""
        ...



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
                 store: TemplateStore | None = None,
                 capabilities: Callable[[str], Capabilities] = capabilities_of) -> None:
        self._shipped = _shipped()
        if default_locale not in self._shipped:
            raise ValueError(f"no shipped templates for default locale {default_locale!r}")
        try:
            self.tz: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.default_locale, self.store = default_locale, store
        self.capabilities = capabilities  # what each channel shows (its status command)
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
        return variables_of(key)

    def sample_context(self, key: str | None, *, locale: str | None = None, channel: str = "",
                       now: datetime | None = None) -> dict[str, Any]:
        """A realistic context for previews. Example: sample_context("ack")["ticket"]["number"]."""
        loc = self.locale(locale)
        now = (now or datetime.now(UTC)).astimezone(self.tz)
        opening = datetime.combine(now.date(), time(9), self.tz)
        while opening <= now or opening.weekday() >= 5:
            opening += timedelta(days=1)
        channel = channel or "telegram"
        command = self.capabilities(channel).status_commands.get(loc.split("_")[0], "")
        full = sample_values(key, loc.split("_")[0], channel=channel, now=now, opening=opening,
                             status_command=command)
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
                ast = ENV.parse(text)
                compile_text(text)
            except jinja2.TemplateSyntaxError as exc:
                raise explain(exc, part) from None
            scan(ast, allowed, part)
        source = TemplateSource(key or "", self.locale(locale), channel, subject, body)
        self.render_source(source, self.sample_context(key, locale=locale, channel=channel))

    def render_source(self, source: TemplateSource, context: Mapping[str, Any], *,
                      now: datetime | None = None, subject: bool = True) -> tuple[str, str]:
        """Render (subject, body) in the sandbox; raises TemplateError on any failure.
        With `subject=False` (a channel without subjects) the subject is "", unrendered.

        Example: render_source(engine.default("ack", "es"), ctx) -> ("Recibimos…", "Hola María…")
        """
        fmt = formatter(self.locale(source.locale), self.tz, now or datetime.now(UTC))
        token = FMT.set(fmt)
        try:
            return (clean_subject(self._render(source.subject, context, "subject"))
                    if subject else ""), clean_body(self._render(source.body, context, "body"))
        finally:
            FMT.reset(token)

    @staticmethod
    def _render(text: str, context: Mapping[str, Any], part: str) -> str:
        if "{" not in text:  # plain text (often an empty subject): Jinja would return it
            return text.removesuffix("\n")
        try:
            template = compile_text(text)
            # Template.render(), minus the work it repeats on every call for the same
            # template (half its cost): merging its globals into the variables, and
            # listing their names (a ChainMap walk) for the context.
            merged, names = template_globals(template)
            run = ENV.context_class(ENV, {**merged, **context}, template.name,
                                     template.blocks)
            run.globals_keys = names  # what new_context(globals=…) would have computed
            try:
                out = ENV.concat(template.root_render_func(run))  # type: ignore[attr-defined]
            except Exception:
                ENV.handle_exception()  # as render() does: the template's line, not ours
        except Exception as exc:
            raise explain(exc, part) from None
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
