"""Admin pages and the JSON API: templates (edit, live preview, history, diff, revert),
business hours ("what would a customer receive now?"), and a dashboard with charts.

Served by the gateway's HTTP app (same process as `centralita run`). Admins sign in with
a password set by `centralita admin create`; sessions are signed cookies (HttpOnly,
SameSite=Strict, Secure behind https); every form carries a CSRF token. The JSON API
(`/api/…`, OpenAPI at `/api/docs`) takes the same admins with HTTP Basic.

Example:
    >>> app = admin_app(services)           # a FastAPI app; mounted by gateway.web.http
"""

from __future__ import annotations

import difflib
import html
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from jinja2 import DictLoader, Environment, select_autoescape
from pydantic import BaseModel
from tortoise.functions import Max

from gateway.services import Services
from gateway.store.models import AdminUser, Ticket
from gateway.store.models import Template as StoredTemplate
from gateway.store.state import load_state, save_state
from gateway.texts import versions as template_versions
from gateway.texts.engine import TemplateError, TemplateSource
from gateway.web import auth

COOKIE = "centralita_admin"
LOCALES = ("es", "en")
CHANNELS = ("", "email", "telegram", "slack")

PAGES = {
    "base.html": """<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>{{ title }} · Centralita</title>
<style>body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}
header a{color:#fff}main{padding:1em 1.5em;max-width:1100px}
textarea{width:100%;font-family:monospace}.error{background:#fde2e1;padding:.6em;border-left:4px solid #c0392b}
.ok{background:#e3f6e5;padding:.6em;border-left:4px solid #27ae60}
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}table{border-collapse:collapse}
td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}</style></head><body>
<header><strong>Centralita</strong>{% if user %}<a href="/admin/">Panel</a>
<a href="/admin/templates">Textos</a><a href="/admin/hours">Horario</a>
<form method="post" action="/admin/logout" style="margin-left:auto">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>Salir ({{ user }})</button></form>{% endif %}
</header><main>{% block main %}{% endblock %}</main></body></html>""",
    "login.html": """{% extends "base.html" %}{% block main %}<h1>Entrar</h1>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<form method="post" action="/admin/login"><input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>Usuario <input name="username" autofocus></label></p>
<p><label>Contraseña <input name="password" type="password"></label></p>
<p><button>Entrar</button></p></form>{% endblock %}""",
    "dashboard.html": """{% extends "base.html" %}{% block main %}<h1>Panel</h1>
<div class="grid">{% for chart in charts %}<section>{{ chart | safe }}</section>{% endfor %}</div>
<h2>Sin responder</h2>{% if unanswered %}<table><tr><th>#</th><th>canal</th><th>asunto</th>
<th>desde</th></tr>{% for t in unanswered %}<tr><td>{{ t.number }}</td><td>{{ t.channel }}</td>
<td>{{ t.subject }}</td><td>{{ t.created }}</td></tr>{% endfor %}</table>
{% else %}<p>Nada pendiente.</p>{% endif %}{% endblock %}""",
    "templates.html": """{% extends "base.html" %}{% block main %}<h1>Textos automáticos</h1>
<table><tr><th>clave</th>{% for l in locales %}<th>{{ l }}</th>{% endfor %}</tr>
{% for key in keys %}<tr><td>{{ key }}</td>{% for l in locales %}<td>
<a href="/admin/templates/{{ key }}/{{ l }}">editar</a>
{% if versions.get((key, l)) %} (v{{ versions[(key, l)] }}){% endif %}</td>{% endfor %}</tr>
{% endfor %}</table>{% endblock %}""",
    "edit.html": """{% extends "base.html" %}{% block main %}
<h1>{{ key }} · {{ locale }}{% if channel %} · {{ channel }}{% endif %}</h1>
<p>Canal: {% for c in channels %}<a href="?channel={{ c }}">{{ c or "todos" }}</a> {% endfor %}</p>
{% if error %}<p class="error" id="error">{{ error }}</p>{% endif %}
{% if saved %}<p class="ok" id="saved">Guardado como versión {{ saved }}.</p>{% endif %}
<div class="grid"><form method="post" id="editor">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="channel" value="{{ channel }}">
<p><label>Asunto<br><textarea name="subject" rows="2" id="subject">{{ subject }}</textarea></label></p>
<p><label>Texto<br><textarea name="body" rows="16" id="body">{{ body }}</textarea></label></p>
<p><label>Vista previa con el ticket n.º <input name="ticket" id="ticket" size="6"></label>
<button type="button" id="preview-button">Vista previa</button> <button id="save">Guardar</button></p>
</form><section><h2>Vista previa</h2><pre id="preview">{{ preview }}</pre>
<h2>Variables</h2><table>{% for name, text in variables %}<tr><td><code>{{ name }}</code></td>
<td>{{ text }}</td></tr>{% endfor %}</table></section></div>
<h2>Historial</h2><table><tr><th>versión</th><th>quién</th><th>cuándo</th><th></th></tr>
{% for v in history %}<tr><td>{{ v.version }}</td><td>{{ v.created_by }}</td><td>{{ v.when }}</td>
<td><form method="post" action="/admin/templates/{{ key }}/{{ locale }}/revert/{{ v.version }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="channel" value="{{ channel }}">
<button>Volver a esta versión</button></form></td></tr>{% endfor %}</table>
{% if diff %}<h2>Cambios de la última versión</h2><pre>{{ diff }}</pre>{% endif %}
<script>
async function preview(){const f=new FormData(document.getElementById('editor'));
const r=await fetch('/admin/templates/{{ key }}/{{ locale }}/preview',{method:'POST',body:f,
headers:{'X-CSRF-Token':'{{ csrf }}'}});const j=await r.json();
document.getElementById('preview').textContent=j.error?('⚠ '+j.error):(j.subject?j.subject+'\\n\\n':'')+j.body;}
document.getElementById('preview-button').onclick=preview;
document.getElementById('body').addEventListener('input',()=>{clearTimeout(window.t);window.t=setTimeout(preview,300)});
</script>{% endblock %}""",
    "hours.html": """{% extends "base.html" %}{% block main %}<h1>Horario y plazos</h1>
<p>{{ summary }}</p><table><tr><th>día</th><th>horario</th></tr>
{% for day, spans in week %}<tr><td>{{ day }}</td><td>{{ spans }}</td></tr>{% endfor %}</table>
<h2>Días cerrados (próximos 90 días)</h2>{% if closed %}<table>{% for day, why in closed %}
<tr><td>{{ day }}</td><td>{{ why }}</td></tr>{% endfor %}</table>{% else %}<p>Ninguno.</p>{% endif %}
<h2>¿Qué recibiría un cliente?</h2><form method="get"><label>Momento
<input name="at" value="{{ at }}" type="datetime-local"></label> <button>Ver</button></form>
<p>{{ at_text }} — {{ "abierto" if open_now else "cerrado" }}</p>
{% for channel, text in answers %}<h3>{{ channel }}</h3><pre>{{ text }}</pre>{% endfor %}
{% endblock %}""",
}
ENV = Environment(loader=DictLoader(PAGES), autoescape=select_autoescape(default=True))


def bars(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG (no JavaScript, no external files)."""
    top = max((v for _, v in items), default=0) or 1
    height = 24 * len(items) + 30
    rows = []
    for i, (label, value) in enumerate(items):
        y = 28 + i * 24
        width = 300 * value / top
        rows.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>'
                    f'<rect x="120" y="{y}" width="{width:.0f}" height="18" fill="#457b9d"/>'
                    f'<text x="{125 + width:.0f}" y="{y + 14}" font-size="12">'
                    f'{value:g}{html.escape(unit)}</text>')
    if not items:
        rows.append('<text x="0" y="44" font-size="12">sin datos</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="480" height="{max(height, 60)}" '
            f'role="img" aria-label="{html.escape(title)}"><text x="0" y="16" font-size="14" '
            f'font-weight="bold">{html.escape(title)}</text>{"".join(rows)}</svg>')


BASIC = HTTPBasic()


async def api_user(credentials: Annotated[HTTPBasicCredentials, Depends(BASIC)]) -> str:
    """The admin calling the JSON API (HTTP Basic, the same passwords as the pages)."""
    admin = await AdminUser.get_or_none(username=credentials.username)
    if admin is None or not auth.check_password(credentials.password, admin.password_hash):
        raise HTTPException(401, "wrong username or password",
                            headers={"WWW-Authenticate": "Basic"})
    return admin.username


class TemplateBody(BaseModel):
    subject: str = ""
    body: str
    channel: str = ""


def admin_app(services: Services) -> FastAPI:
    """The admin pages and API for `services` (see the module docstring)."""
    app = FastAPI(title="Centralita admin API", docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    engine = services.templates
    secret_box: dict[str, bytes] = {}

    async def secret() -> bytes:
        if "key" not in secret_box:
            state = await load_state("admin", "secret")
            if not state.get("key"):
                state = {"key": secrets.token_hex(32)}
                await save_state("admin", "secret", state, services.clock.now())
            secret_box["key"] = bytes.fromhex(state["key"])
        return secret_box["key"]

    async def current_user(request: Request) -> str | None:
        return auth.session_user(await secret(), request.cookies.get(COOKIE))

    async def page(request: Request, name: str, status: int = 200, *,
                   csrf_cookie: str | None = None, **values: Any) -> Response:
        """Render `name`; its forms carry the CSRF token of the session (or of the
        pre-login cookie `csrf_cookie`)."""
        key = await secret()
        cookie = csrf_cookie or request.cookies.get(COOKIE) or \
            request.cookies.get(COOKIE + "_pre") or ""
        body = ENV.get_template(name).render(user=await current_user(request),
                                             csrf=auth.csrf_token(key, cookie), **values)
        return HTMLResponse(body, status_code=status, headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src 'self' data:",
            "X-Frame-Options": "DENY"})

    async def require(request: Request, csrf: str | None = None) -> str:
        user = await current_user(request)
        if user is None:
            raise HTTPException(303, headers={"Location": "/admin/login"})
        if request.method == "POST":
            token = csrf or request.headers.get("x-csrf-token")
            if not auth.csrf_ok(await secret(), request.cookies.get(COOKIE), token):
                raise HTTPException(403, "missing or wrong CSRF token")
        return user

    def cookie_flags(request: Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict",
                "secure": request.url.scheme == "https"}

    # -- sign in ---------------------------------------------------------------------

    @app.get("/admin/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        # The login form's CSRF token is tied to a cookie set here, before any session.
        pre = request.cookies.get(COOKIE + "_pre") or secrets.token_urlsafe(24)
        response = await page(request, "login.html", title="Entrar", csrf_cookie=pre)
        response.set_cookie(COOKIE + "_pre", pre, **cookie_flags(request))
        return response

    @app.post("/admin/login", include_in_schema=False)
    async def login(request: Request, username: Annotated[str, Form()] = "",
                    password: Annotated[str, Form()] = "",
                    csrf: Annotated[str, Form()] = "") -> Response:
        key = await secret()
        if not auth.csrf_ok(key, request.cookies.get(COOKIE + "_pre"), csrf):
            return await page(request, "login.html", 403, title="Entrar",
                              error="El formulario caducó; vuelve a intentarlo.")
        admin = await AdminUser.get_or_none(username=username)
        if admin is None or not auth.check_password(password, admin.password_hash):
            return await page(request, "login.html", 401, title="Entrar",
                              error="Usuario o contraseña incorrectos.")
        response = RedirectResponse("/admin/", status_code=303)
        response.set_cookie(COOKIE, auth.session_cookie(key, username),
                            max_age=auth.SESSION_SECONDS, **cookie_flags(request))
        response.delete_cookie(COOKIE + "_pre")
        return response

    @app.post("/admin/logout", include_in_schema=False)
    async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        await require(request, csrf)
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # -- dashboard -------------------------------------------------------------------

    @app.get("/admin/", include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        await require(request)
        from gateway.desk.report import service_report

        now = services.clock.now()
        tickets = await Ticket.all().values("status", "channel", "created_at",
                                            "first_response_at", "satisfaction", "number",
                                            "subject", "resolved_at")
        by_status: dict[str, float] = {}
        for t in tickets:
            if t["status"] in ("open", "pending"):
                label = f"{t['channel']} · {t['status']}"
                by_status[label] = by_status.get(label, 0) + 1
        buckets = {"< 15 min": 0.0, "15–60 min": 0.0, "1–4 h": 0.0, "4–24 h": 0.0, "> 1 día": 0.0}
        for t in tickets:
            if t["first_response_at"]:
                minutes = (t["first_response_at"] - t["created_at"]).total_seconds() / 60
                label = ("< 15 min" if minutes < 15 else "15–60 min" if minutes < 60 else
                         "1–4 h" if minutes < 240 else "4–24 h" if minutes < 1440 else
                         "> 1 día")
                buckets[label] += 1
        rows = await service_report(now - timedelta(days=30), now, hours=services.hours,
                                    sla=services.sla)
        sla = [(r.channel, round(r.sla_met_pct, 1)) for r in rows if r.sla_met_pct is not None]
        days: dict[str, list[int]] = {}
        for t in tickets:
            if t["satisfaction"] and t["resolved_at"]:
                day = t["resolved_at"].astimezone(services.hours.tz).strftime("%d/%m")
                days.setdefault(day, []).append(t["satisfaction"])
        csat = [(d, round(sum(v) / len(v), 1)) for d, v in sorted(days.items())][-14:]
        unanswered = [{"number": t["number"], "channel": t["channel"],
                       "subject": t["subject"],
                       "created": t["created_at"].astimezone(services.hours.tz)
                       .strftime("%d/%m %H:%M")}
                      for t in tickets if t["status"] in ("open", "pending")
                      and not t["first_response_at"]]
        charts = [bars("Tickets abiertos por canal y estado", sorted(by_status.items())),
                  bars("Tiempo de primera respuesta", list(buckets.items())),
                  bars("SLA cumplido (30 días)", sla, " %"),
                  bars("Satisfacción por día (1–5)", csat)]
        return await page(request, "dashboard.html", title="Panel", charts=charts,
                          unanswered=unanswered)

    # -- templates -------------------------------------------------------------------

    async def stored(key: str, locale: str, channel: str) -> list[StoredTemplate]:
        return await StoredTemplate.filter(key=key, locale=locale, channel=channel
                                           ).order_by("-version")

    def check_key(key: str, locale: str, channel: str) -> None:
        known = engine.keys()
        if key not in known or locale not in LOCALES or channel not in CHANNELS:
            raise HTTPException(404, "no such template")

    async def save_version(key: str, locale: str, channel: str, subject: str, body: str,
                           user: str) -> int:
        return await template_versions.save_version(
            engine, key, locale, channel, subject, body, author=user,
            now=services.clock.now())

    async def preview_text(key: str, locale: str, channel: str, subject: str, body: str,
                           ticket_number: str = "") -> dict[str, str]:
        source = TemplateSource(key=key, locale=locale, channel=channel, subject=subject,
                                body=body, version=-1)
        context = engine.sample_context(key, locale=locale, channel=channel)
        if ticket_number.strip().isdigit():
            ticket = await Ticket.get_or_none(number=int(ticket_number))
            if ticket is not None:
                from gateway.store.models import Contact

                contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
                context = {**context, **services.template_context(
                    ticket, customer_name=contact.name, now=services.clock.now(),
                    channel=channel or ticket.channel)}
        try:
            engine.validate(subject, body, key, locale=locale, channel=channel)
            subject_out, body_out = engine.render_source(source, context,
                                                         now=services.clock.now())
        except TemplateError as exc:
            return {"error": str(exc)}
        return {"subject": subject_out, "body": body_out}

    @app.get("/admin/templates", include_in_schema=False)
    async def template_list(request: Request) -> Response:
        await require(request)
        versions = {(r["key"], r["locale"]): r["v"] for r in
                    await StoredTemplate.filter(channel="").annotate(v=Max("version"))
                    .group_by("key", "locale").values("key", "locale", "v")}
        return await page(request, "templates.html", title="Textos", keys=engine.keys(),
                          locales=LOCALES, versions=versions)

    async def edit_page(request: Request, key: str, locale: str, channel: str, *,
                        status: int = 200, error: str = "", saved: int | None = None,
                        subject: str | None = None, body: str | None = None) -> Response:
        history = await stored(key, locale, channel)
        shipped = engine.default(key, locale, channel)
        current = history[0] if history else None
        if subject is None:
            subject = current.subject if current else shipped.subject
        if body is None:
            body = current.body if current else shipped.body
        diff = ""
        if len(history) > 1:
            diff = "\n".join(difflib.unified_diff(
                history[1].body.splitlines(), history[0].body.splitlines(),
                f"v{history[1].version}", f"v{history[0].version}", lineterm=""))
        shown = await preview_text(key, locale, channel, subject, body)
        return await page(
            request, "edit.html", status, title=f"{key} {locale}", key=key, locale=locale,
            channel=channel, channels=CHANNELS, subject=subject, body=body, error=error,
            saved=saved, variables=list(engine.variables(key).items()), diff=diff,
            preview=shown.get("error") or (shown.get("subject", "") + "\n\n" +
                                           shown.get("body", "")).strip(),
            history=[{"version": v.version, "created_by": v.created_by or "—",
                      "when": v.created_at.astimezone(services.hours.tz)
                      .strftime("%d/%m/%Y %H:%M")} for v in history])

    @app.get("/admin/templates/{key}/{locale}", include_in_schema=False)
    async def edit(request: Request, key: str, locale: str, channel: str = "") -> Response:
        await require(request)
        check_key(key, locale, channel)
        return await edit_page(request, key, locale, channel)

    @app.post("/admin/templates/{key}/{locale}", include_in_schema=False)
    async def save(request: Request, key: str, locale: str,
                   subject: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
                   channel: Annotated[str, Form()] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
        user = await require(request, csrf)
        check_key(key, locale, channel)
        try:
            version = await save_version(key, locale, channel, subject, body, user)
        except TemplateError as exc:
            return await edit_page(request, key, locale, channel, status=400, error=str(exc),
                                   subject=subject, body=body)
        await services.store.refresh()
        return await edit_page(request, key, locale, channel, saved=version)

    @app.post("/admin/templates/{key}/{locale}/preview", include_in_schema=False)
    async def preview(request: Request, key: str, locale: str,
                      subject: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
                      channel: Annotated[str, Form()] = "",
                      ticket: Annotated[str, Form()] = "") -> JSONResponse:
        await require(request)
        check_key(key, locale, channel)
        return JSONResponse(await preview_text(key, locale, channel, subject, body, ticket))

    @app.post("/admin/templates/{key}/{locale}/revert/{version}", include_in_schema=False)
    async def revert(request: Request, key: str, locale: str, version: int,
                     channel: Annotated[str, Form()] = "",
                     csrf: Annotated[str, Form()] = "") -> Response:
        user = await require(request, csrf)
        check_key(key, locale, channel)
        old = await StoredTemplate.get_or_none(key=key, locale=locale, channel=channel,
                                               version=version)
        if old is None:
            raise HTTPException(404, "no such version")
        saved = await save_version(key, locale, channel, old.subject, old.body,
                                   f"{user} (vuelta a v{version})")
        await services.store.refresh()
        return await edit_page(request, key, locale, channel, saved=saved)

    # -- hours -----------------------------------------------------------------------

    @app.get("/admin/hours", include_in_schema=False)
    async def hours_page(request: Request, at: str = "") -> Response:
        await require(request)
        hours = services.hours
        try:
            moment = datetime.fromisoformat(at).replace(tzinfo=hours.tz) if at else \
                services.clock.now().astimezone(hours.tz)
        except ValueError:
            moment = services.clock.now().astimezone(hours.tz)
        open_now, _ = services.opening(moment)
        answers = []
        for channel in ("telegram", "email", "slack"):
            sample = Ticket(number=1042, subject="Mi pedido no llegó", channel=channel,
                            status="open", priority="normal", locale="es")
            sample.first_response_due = services.sla.first_response_due(channel, "normal",
                                                                         moment)
            key = "ack" if open_now else "ack_closed"
            context = services.template_context(sample, customer_name="María González",
                                                now=moment)
            rendered = await engine.render(key, locale="es", channel=channel,
                                           context=context, now=moment)
            answers.append((channel, (rendered.subject + "\n\n" if rendered.subject else "")
                            + rendered.body))
        today = services.clock.now().astimezone(hours.tz).date()
        closed = []
        for offset in range(90):
            day = today + timedelta(days=offset)
            if hours.is_closed_day(day):
                closed.append((day.strftime("%d/%m/%Y"),
                               hours.holiday_name(day) or "cerrado (fecha configurada)"))
        return await page(request, "hours.html", title="Horario", summary=hours.summary("es"),
                          week=hours.week_table("es"), closed=closed, at=moment.strftime("%Y-%m-%dT%H:%M"),
                          at_text=moment.strftime("%A %d/%m/%Y %H:%M"), open_now=open_now,
                          answers=answers)

    # -- JSON API --------------------------------------------------------------------

    @app.get("/api/templates", tags=["templates"])
    async def api_list(user: Annotated[str, Depends(api_user)]) -> list[dict[str, Any]]:
        """Every template: shipped text or the admin's newest version."""
        result = []
        for source in engine.defaults():
            versions = await stored(source.key, source.locale, source.channel)
            current = versions[0] if versions else None
            result.append({"key": source.key, "locale": source.locale,
                           "channel": source.channel, "version": current.version if current
                           else 0, "subject": current.subject if current else source.subject,
                           "body": current.body if current else source.body})
        return result

    @app.get("/api/templates/{key}/{locale}", tags=["templates"])
    async def api_get(key: str, locale: str, user: Annotated[str, Depends(api_user)],
                      channel: str = "") -> dict[str, Any]:
        check_key(key, locale, channel)
        versions = await stored(key, locale, channel)
        shipped = engine.default(key, locale, channel)
        return {"key": key, "locale": locale, "channel": channel,
                "variables": engine.variables(key),
                "versions": [{"version": v.version, "subject": v.subject, "body": v.body,
                              "created_by": v.created_by,
                              "created_at": v.created_at.isoformat()} for v in versions],
                "shipped": {"subject": shipped.subject, "body": shipped.body}}

    @app.put("/api/templates/{key}/{locale}", tags=["templates"])
    async def api_put(key: str, locale: str, text: TemplateBody,
                      user: Annotated[str, Depends(api_user)]) -> dict[str, Any]:
        """Save a new version; 422 with the reason when it does not validate."""
        check_key(key, locale, text.channel)
        try:
            version = await save_version(key, locale, text.channel, text.subject, text.body,
                                         user)
        except TemplateError as exc:
            raise HTTPException(422, {"error": str(exc), "kind": exc.kind,
                                      "line": exc.line}) from None
        await services.store.refresh()
        return {"version": version}

    return app
