"""Self-contained HTML reports: embedded PNG figures, tables, no external assets."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem} th,td{border:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top} th{background:#f4f4f4} img{max-width:100%;height:auto;display:block;margin:.5rem 0}
.IssuesFound{color:#b00020;font-weight:600} .NoIssuesFound{color:#1b7f3b} .Error{color:#a15c00;font-weight:600}
.muted{color:#666;font-size:.85rem}
"""


def figure_to_data_uri(fig) -> str:
    """Render a matplotlib figure (from `dogclf.plots.subplots`) as a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def img(data_uri: str, alt: str) -> str:
    """An <img> for an embedded figure."""
    return f'<img src="{data_uri}" alt="{html.escape(alt)}">'


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], classes: Sequence[str | None] = ()) -> str:
    """An escaped HTML table; `classes[i]` styles column i's cells (e.g. rule status)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            text = html.escape("" if value is None else str(value))
            cls = classes[i] if i < len(classes) else None
            cells.append(f'<td class="{html.escape(text)}">{text}</td>' if cls == "status" else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: Sequence[tuple[str, str]], subtitle: str = "") -> str:
    """A complete HTML document from (heading, inner-HTML) sections."""
    parts = [f"<h2>{html.escape(h)}</h2>\n{body}" for h, body in sections]
    sub = f'<p class="muted">{html.escape(subtitle)}</p>' if subtitle else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{sub}\n"
        + "\n".join(parts)
        + "</body></html>"
    )
