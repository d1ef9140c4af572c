"""Admin pages and the JSON API: templates (edit, live preview, history, diff, revert),
business hours ("what would a customer receive now?"), and a dashboard with charts.

Served by the gateway's HTTP app (same process as `centralita run`). Admins sign in with
a password set by `centralita admin create`; sessions are signed cookies (HttpOnly,
SameSite=Strict, Secure behind https) carrying the admin's session version, so signing
out, a new password or `centralita admin remove` ends them all; every form carries a CSRF
token. The JSON API (`/api/…`) takes the same admins with HTTP Basic; its documentation
(`/api/docs`, `/api/openapi.json`) is for signed-in admins. Wrong passwords are throttled
per address and per user name (gateway.web.signin), on the form and the API alike.

Where things are:
    app.py        admin_app(services): the FastAPI app, assembled from the routers below
    session.py    the signing secret, who is signed in, CSRF checks, cookies, page rendering
    render.py     the Jinja environment (gateway/web/templates/admin/) and security headers
                  (scripts and styles are files in gateway/web/static/, never inline)
    login.py      /admin/login, /admin/logout
    dashboard.py  /admin/ (charts and unanswered tickets)
    texts.py      what the editor and the API share: known keys, versions, previews
    editor.py     /admin/templates… (list, edit, save, preview, revert)
    hours.py      /admin/hours
    api.py        /api/templates… (HTTP Basic)
    docs.py       /api/docs and /api/openapi.json, for signed-in admins
    charts.py     bars(): an inline SVG bar chart

Example:
    >>> app = admin_app(services)           # a FastAPI app; mounted by gateway.web.http
"""

from gateway.web.admin.app import admin_app

__all__ = ["admin_app"]
