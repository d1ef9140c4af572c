"""The admin pages' HTML: Jinja files under gateway/web/templates/admin/, autoescaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "admin"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))

# Pages run only the app's own script and style files (gateway/web/static/), nothing
# inline, and never inside a frame; the browser keeps no copy of them.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
          "base-uri 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}


def html_page(name: str, status: int = 200, *, policy: str = POLICY,
              **values: Any) -> HTMLResponse:
    """Render the page `name` with `values`, with the security headers (`policy`: the
    page's Content-Security-Policy, when it needs more than the admin pages')."""
    body = ENV.get_template(name).render(**values)
    return HTMLResponse(body, status_code=status,
                        headers={**HEADERS, "Content-Security-Policy": policy})
