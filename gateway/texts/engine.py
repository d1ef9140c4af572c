"""Customer and agent message templates: shipped TOML defaults, admin overrides, sandboxed Jinja.

Example:
    >>> engine = TemplateEngine(timezone="America/Santiago")
    >>> out = await engine.render("ack", locale="es", channel="telegram",
    ...                           context=engine.sample_context("ack"))
    >>> out.body.splitlines()[0]
    'Hola María, gracias por escribirnos.'
"""

from __future__ import annotations

import asyncio
import functools
import logging
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from importlib import resources
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from gateway.core.adapter import Capabilities, capabilities_of
from gateway.texts.budget import BUDGET, MAX_OUTPUT, RenderLimits, TooMuchWork, collect
from gateway.texts.checks import TemplateError, explain, scan, too_much
from gateway.texts.filters import FMT, formatter
from gateway.texts.sandbox import (
    ENV,
    clean_body,
    clean_subject,
    compile_text,
    template_globals,
)
from gateway.texts.variables import sample_values, variables_of

__all__ = ["RenderLimits", "Rendered", "TemplateEngine", "TemplateError", "TemplateSource",
           "TemplateStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# Previews and save checks of admins' drafts run here, never on the event loop; two at a
# time, so a burst of keystrokes cannot take every core (or the loop's own executor).
_STUDIO = ThreadPoolExecutor(max_workers=2, thread_name_prefix="texts-studio")
_REMEMBERED = 256  # stored texts known to go over their budget, skipped straight away


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
                 capabilities: Callable[[str], Capabilities] = capabilities_of,
                 limits: RenderLimits | None = None) -> None:
        self._shipped = _shipped()
        if default_locale not in self._shipped:
            raise ValueError(f"no shipped templates for default locale {default_locale!r}")
        try:
            self.tz: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.default_locale, self.store = default_locale, store
        self.capabilities = capabilities  # what each channel shows (its status command)
        self.limits = limits or RenderLimits()  # the work one render may do
        self._locales: dict[str | None, str] = {}
        self._over_budget: dict[TemplateSource, str] = {}  # stored text -> why it was skipped

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
        """Raise TemplateError unless the texts compile, use known variables and render safely
        within the studio's budget (kind="budget", in the text's language, naming the limit).
        Blocking: on the event loop, use `check()`.

        Example: validate("", "{{ ''.__class__ }}", "ack") raises kind="sandbox".
        """
        allowed = (self.variables(key) if key is not None else
                   {k: "" for k in self.sample_context(None)})
        lang = self.locale(locale).split("_")[0]
        for part, text in (("subject", subject), ("body", body)):
            if len(text) > MAX_OUTPUT:  # before parsing: compiling a huge text is work too
                raise too_much(TooMuchWork("source", MAX_OUTPUT), part, lang)
            try:
                ast = ENV.parse(text)
                compile_text(text)
                scan(ast, allowed, part)
            except (jinja2.TemplateSyntaxError, RecursionError) as exc:
                raise explain(exc, part) from None
        source = TemplateSource(key or "", self.locale(locale), channel, subject, body)
        self.render_source(source, self.sample_context(key, locale=locale, channel=channel),
                           studio=True)

    async def check(self, subject: str, body: str, key: str | None = None, *,
                    locale: str | None = None, channel: str = "") -> None:
        """`validate()` in a worker thread, so the event loop never waits on an admin's text.

        Example: await engine.check("", "{% for i in range(10**5) %}…", "ack") raises
        kind="budget".
        """
        await _off_the_loop(functools.partial(self.validate, subject, body, key,
                                              locale=locale, channel=channel))

    async def preview(self, source: TemplateSource, context: Mapping[str, Any], *,
                      now: datetime | None = None) -> tuple[str, str]:
        """An admin's draft validated (with sample values) and rendered with `context`, in a
        worker thread with the studio's budget; raises TemplateError.

        Example: await engine.preview(draft, engine.sample_context("ack")) -> ("", "Hola…")
        """
        def work() -> tuple[str, str]:
            self.validate(source.subject, source.body, source.key or None,
                          locale=source.locale, channel=source.channel)
            return self.render_source(source, context, now=now, studio=True)
        return await _off_the_loop(work)

    def render_source(self, source: TemplateSource, context: Mapping[str, Any], *,
                      now: datetime | None = None, subject: bool = True,
                      studio: bool = False) -> tuple[str, str]:
        """Render (subject, body) in the sandbox, both within one budget (the hot one, or
        with `studio=True` the studio's); raises TemplateError on any failure.
        With `subject=False` (a channel without subjects) the subject is "", unrendered.

        Example: render_source(engine.default("ack", "es"), ctx) -> ("Recibimos…", "Hola María…")
        """
        locale = self.locale(source.locale)
        fmt = formatter(locale, self.tz, now or datetime.now(UTC))
        lang = locale.split("_")[0]
        token = FMT.set(fmt)
        counting = BUDGET.set(self.limits.studio() if studio else self.limits.hot())
        try:
            return (clean_subject(_render(source.subject, context, "subject", lang))
                    if subject else ""), clean_body(_render(source.body, context, "body", lang))
        finally:
            BUDGET.reset(counting)
            FMT.reset(token)

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
        if stored is not None and self._over_budget and stored in self._over_budget:
            error = self._over_budget[stored]  # it went over its budget before: not again
        elif stored is not None:
            try:
                title, body = self.render_source(stored, context, now=now, subject=subject)
                return Rendered(title, body, stored)
            except TemplateError as exc:
                error = str(exc)
                log.warning("stored template %s/%s/%s v%s failed, using the shipped default: %s",
                            key, loc, stored.channel, stored.version, exc)
                if exc.kind == "budget":
                    if len(self._over_budget) >= _REMEMBERED:
                        self._over_budget.clear()
                    self._over_budget[stored] = error
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


def _render(text: str, context: Mapping[str, Any], part: str, lang: str) -> str:
    """One part of a text, rendered within the budget in force (`BUDGET`), its output
    counted as it streams."""
    if "{" not in text:  # plain text (often an empty subject): Jinja would return it
        return text.removesuffix("\n")
    try:
        if len(text) > MAX_OUTPUT:  # a stored text no studio checked: not even compiled
            raise TooMuchWork("source", MAX_OUTPUT)
        template = compile_text(text)
        # Template.render(), minus the work it repeats on every call for the same
        # template (half its cost): merging its globals into the variables, and
        # listing their names (a ChainMap walk) for the context.
        merged, names = template_globals(template)
        run = ENV.context_class(ENV, {**merged, **context}, template.name, template.blocks)
        run.globals_keys = names  # what new_context(globals=…) would have computed
        try:
            return collect(template.root_render_func(run))  # type: ignore[attr-defined]
        except Exception:
            ENV.handle_exception()  # as render() does: the template's line, not ours
    except Exception as exc:
        raise explain(exc, part, lang) from None


async def _off_the_loop(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_STUDIO, work)
