"""Charts for the dashboard, as inline SVG (no JavaScript, no external files)."""

from __future__ import annotations

import html


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
