"""Options and output helpers shared by every CLI command group.

stdout carries data (tables, JSON); stderr carries diagnostics and progress.
Nothing from the logs reaches the terminal raw: every printed value goes
through ``tracelens.textsafe`` (``safe`` for plain lines and ``diag``,
``cell`` for Rich tables, ``markup`` where Rich parses a string, and
``emit_json``/``emit_jsonl``, which also remove secrets from values while
keeping the JSON valid). ``LazyGroup`` makes error messages visible too.
``--json`` is offered by every command that emits data, via ``json_option``.
Exit codes: 0 success, 1 a finding/condition the command reports as failure
(e.g. drift alerts, ingest errors, a damaged store), 2 usage errors (click's
default), 3 an optional extra the command needs is not installed (the message
names the ``pip install`` command).

Every numeric option has a declared range (``click.IntRange``,
``FiniteFloatRange``) and every zone or time option is parsed when the
command line is read, so a bad value is a usage error (exit 2) naming the
option, never a value the core trips over later.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from tracelens.secrets import scrub_value
from tracelens.storenames import DEFAULT_STORE, STORE_ENV
from tracelens.textsafe import json_text, visible

if TYPE_CHECKING:
    from tracelens.store import Store


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan and infinity (a range check alone lets nan through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number in range, or a usage error for nan and infinity."""
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


# Seeds reach numpy and scikit-learn, which take 0 .. 2**32-1.
SEED = click.IntRange(0, 2**32 - 1)
# Row limits where 0 means "no limit".
LIMIT = click.IntRange(min=0)


def zone_callback(allow_reject: bool = False) -> Callable:
    """A click callback that refuses unknown time zones (and 'reject' unless allowed)."""

    def convert(ctx, param, value):
        if value is None:
            return None
        from tracelens.ingest.normalize import check_zone

        try:
            return check_zone(value, allow_reject=allow_reject)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return convert


def window_callback(ctx, param, value):
    """Read a window (``--week``, ``--baseline``, ``--current``) with ``tracelens.timeexpr``; a bad one is a usage error.

    Returns the ``TimeWindow`` (None when the option is not given). A bare
    instant is refused: a report needs a span.
    """
    if value is None:
        return None
    from tracelens.timeexpr import TimeExprError, parse_window

    try:
        return parse_window(value, point_width=None)
    except TimeExprError as e:
        raise click.BadParameter(str(e)) from None


def store_option(f: Callable) -> Callable:
    """``--store DIRECTORY`` (or ``$TRACELENS_STORE``), passed to the command as ``store_path``."""
    return click.option(
        "--store",
        "store_path",
        envvar=STORE_ENV,
        default=DEFAULT_STORE,
        show_default=True,
        type=click.Path(file_okay=False),
        help=f"Store directory, or the URL of a Delta Lake store (s3://, gs://, az://, file://) (or set {STORE_ENV}).",
    )(f)


def json_option(f: Callable) -> Callable:
    """``--json``: print machine-readable JSON on stdout (passed as ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(f)


def engine_options(f: Callable) -> Callable:
    """``--engine local|ray`` and ``--ray-address ADDR``, passed as ``engine`` (a ``tracelens.engines`` engine).

    The engine is made when the command line is read: ``--engine ray`` without ray installed is the one-line
    missing-extra error (exit 3) before anything runs; ``--ray-address`` without ``--engine ray`` is a usage error.
    """

    def make(ctx, param, value):
        name = value or "local"
        address = ctx.params.pop("ray_address", None)
        if address and name != "ray":
            raise click.BadParameter("--ray-address needs --engine ray", param_hint="'--ray-address'")
        from tracelens.engines import get_engine
        from tracelens.extras import MissingExtra

        try:
            return get_engine(name, ray_address=address)
        except MissingExtra as e:
            from tracelens.cli.main import MissingExtraError

            raise MissingExtraError(str(e)) from None

    f = click.option(
        "--ray-address", "ray_address", metavar="ADDR", is_eager=True,
        help="With --engine ray: 'auto' or ray://HOST:PORT joins that cluster (default: a local Ray on this "
             "machine's CPUs).",
    )(f)
    return click.option(
        "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, callback=make,
        help="Where the heavy work runs: in this process (local) or on Ray (needs the 'ray' extra; docs/ray.md).",
    )(f)


def open_store(path: str, create: bool = False, *, url_ok: bool = False, write: bool = False,
               needs: str = "") -> Store:
    """The store at ``path`` (``tracelens.storeopen.open_store``); one line, not a traceback, when it cannot be
    opened. A store in the older file layout is opened with a one-line hint on stderr.

    ``path`` may be the URL of a store on object storage: commands that work on one pass ``url_ok`` (``write``
    when they commit); the others stop with one line saying what it lacks (``needs``), files kept in a local
    store directory. A local store, in either layout, has that directory.
    """
    from tracelens.objstore import is_url

    if is_url(path) and not url_ok and not path.lower().startswith("file:"):
        ctx = click.get_current_context(silent=True)
        name = ctx.command_path if ctx is not None else "this command"
        what = needs or "files kept in a local store directory"
        raise click.ClickException(f"`{name}` does not work on an object-storage store ({path}) yet: it needs "
                                   f"{what}. Use a store directory instead")
    # the store (pyarrow, polars, deltalake) loads when a command opens one, not when a command line is parsed
    from tracelens.storefiles import StoreError
    from tracelens.storeopen import open_store as open_any_layout

    try:
        return open_any_layout(path, create=create, write=write or create, note=diag)
    except StoreError as e:
        raise click.ClickException(str(e)) from None
    except ImportError as e:
        from tracelens.objstore import CLOUD_EXTRA_HINT

        click.echo(f"error: {CLOUD_EXTRA_HINT} ({e})", err=True)
        sys.exit(3)


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    if hasattr(o, "to_dict"):
        return scrub_value(o.to_dict())
    if hasattr(o, "tolist"):
        return scrub_value(o.tolist())
    return scrub_value(str(o))


def json_dumps(obj: Any, **kw: Any) -> str:
    """JSON text for stdout: secrets removed from values, terminal-active characters escaped (still valid JSON)."""
    return json_text(json.dumps(scrub_value(obj), ensure_ascii=False, default=_default, **kw))


def emit_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout (secrets removed, terminal-active characters escaped)."""
    click.echo(json_dumps(obj, indent=2))


def emit_jsonl(rows: list[dict]) -> None:
    """One compact JSON document per row on stdout (``--jsonl``)."""
    for r in rows:
        click.echo(json_dumps(r))


def safe(value: Any) -> str:
    """A value from the logs (or a path, an id, an error) as text that is safe to print."""
    return visible(value if isinstance(value, str) else str(value))


def cell(value: Any):
    """A Rich table cell that shows ``value`` literally (no markup, no escape sequences)."""
    from rich.text import Text

    return Text("" if value is None else safe(value))


def err_console():
    """A Rich console on stderr, for progress and diagnostics."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def out_console():
    """A Rich console on stdout that neither highlights nor wraps soft lines (data stays greppable)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def echo(msg: str, err: bool = False) -> None:
    """A line on stdout (or stderr) that quotes values from the logs, shown safely."""
    click.echo(safe(msg), err=err)


def diag(msg: str) -> None:
    """A diagnostic line on stderr; whatever it quotes from the logs is shown safely."""
    click.echo(safe(msg), err=True)


WHEN_HELP = ("a date, an ISO datetime, 'yesterday', 'yesterday 3pm', '2026-11-18 15:00 ±2h', an ISO week "
             "(2026-W47), or e.g. 7d")


def bound_callback(end: bool = False) -> Callable:
    """A click callback reading one time bound with ``tracelens.timeexpr.parse_bound`` (None stays None); a bad
    one is a usage error naming the option."""

    def convert(ctx, param, value):
        from tracelens.timeexpr import TimeExprError, parse_bound

        try:
            return parse_bound(value, end=end)
        except TimeExprError as e:
            raise click.BadParameter(str(e)) from None

    return convert


def when_option(name: str, end: bool = False) -> Callable:
    """``--since`` / ``--until``: one bound read by ``tracelens.timeexpr.parse_bound`` (UTC unless zoned).

    A day, a week or a point with a width gives its start for ``--since`` and
    its end for ``--until``; an instant is itself; ``7d`` is 7 days before now.
    """

    return click.option(
        f"--{name}",
        name,
        callback=bound_callback(end),
        help=f"{'End' if end else 'Start'} of the time window: {WHEN_HELP}.",
    )


def is_interactive() -> bool:
    """Whether a person can answer a question: stdin and stderr are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()
