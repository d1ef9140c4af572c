"""The admin pages' HTML: Jinja files under gateway/web/templates/admin/, autoescaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "admin"
ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))

# Pages run only their own inline script and styles, and never inside a frame.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src 'self' data:",
    "X-Frame-Options": "DENY",
}


def html_page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render the page `name` with `values`, with the security headers."""
    body = ENV.get_template(name).render(**values)
    return HTMLResponse(body, status_code=status, headers=dict(HEADERS))
