"""Renderers for drift reports: terminal (rich), Markdown, single-file HTML, JSON.

Contract: every renderer is a pure function of a
:class:`tracelens.analysis.DriftReport` (the terminal one draws into a
``rich.console.Console`` the caller passes in); none reads traces or
recomputes statistics. :func:`render` dispatches by format name for the CLI.
"""

from __future__ import annotations

from tracelens.analysis.findings import DriftReport
from tracelens.report.html import render_html, strip_images
from tracelens.report.jsonfmt import render_json
from tracelens.report.markdown import render_markdown
from tracelens.report.terminal import render_terminal

FORMATS = ("terminal", "markdown", "html", "json")


def render(report: DriftReport, fmt: str, *, show_info: bool = False, width: int = 120, timeline=None,
           html_link: str | None = None) -> str:
    """The report as text in ``fmt`` ('terminal' renders without colour at ``width`` columns).

    ``timeline`` (a :class:`tracelens.report.timeline.Timeline`) feeds the HTML time charts; ``html_link`` is
    the path or URL of the HTML report that the Markdown summary points to.
    """
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, show_info=show_info, html_link=html_link)
    if fmt == "html":
        return render_html(report, show_info=show_info, timeline=timeline)
    if fmt == "terminal":
        from rich.console import Console

        console = Console(width=width, record=True, color_system=None, force_terminal=False, file=_Null())
        render_terminal(report, console, show_info=show_info)
        return console.export_text()
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")


class _Null:
    """A write-only sink so that a recording console prints nothing while it records."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


__all__ = ["FORMATS", "render", "render_html", "render_json", "render_markdown", "render_terminal", "strip_images"]
