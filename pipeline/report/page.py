"""The report's page: the HTML around the sections, with its stylesheet (``assets/report.css``,
package data) and, for an interactive page, its script (``assets/report.js``) inlined so that
the page stays one self-contained file; sections and tables."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Iterable, Sequence

from pipeline.report.format import esc


@functools.cache
def asset(name: str) -> str:
    return (resources.files("pipeline.report") / "assets" / name).read_text(encoding="utf-8")


def stylesheet() -> str:
    return asset("report.css")


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], sections: Sequence[str],
         interactive: bool = False) -> str:
    """The page; ``interactive`` inlines the charts' script (hover, zoom, legend toggles), which
    the policy lets run only inline: the page still fetches nothing."""
    links = "".join(f'<a href="#{a}">{esc(b)}</a>' for a, b in nav)
    script = f"<script>\n{asset('report.js')}</script>" if interactive else ""
    policy = "script-src 'unsafe-inline'; " if interactive else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            f"{policy}style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{esc(title)}</title><style>\n{stylesheet()}</style>{script}</head><body>"
            f"<header><h1>{esc(title)}</h1><div class=\"sub\">{subtitle}</div></header>"
            f"<nav>{links}</nav><main>{''.join(sections)}</main></body></html>\n")


def section(anchor: str, title: str, body: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<section id="{anchor}"{klass}><h2>{esc(title)}</h2>{body}</section>'


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1, cls: str = "") -> str:
    head = "".join(f'<th class="l">{esc(h)}</th>' if i < left else f"<th>{esc(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    klass = f' class="{cls}"' if cls else ""
    return f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

