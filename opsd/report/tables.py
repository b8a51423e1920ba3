"""Tables of the monthly report in Markdown and HTML (the header row first), shared by its sections."""

from __future__ import annotations

import html
from collections.abc import Sequence


def md_table(rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(c: str) -> str:
        return c.replace("|", "\\|").replace("\n", " ")

    head, *body = rows
    return ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(map(cell, r)) + " |" for r in body)]


def html_table(rows: Sequence[Sequence[str]], bad: tuple[str, ...] = ("FAILED", "critical")) -> str:
    """A cell starting with one of ``bad`` is marked (red, bold)."""
    e = html.escape
    head, *body = rows
    out = ["<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead><tbody>"]
    for row in body:
        out.append("<tr>" + "".join(f'<td class="fail">{e(c)}</td>' if c.startswith(bad) else f"<td>{e(c)}</td>"
                                    for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
