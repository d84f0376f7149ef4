"""Read commands: `stats`, `show`, `search`, `quarantine`.

`show --context` prints what the TUI's trace screen shows beside the
conversation (``tracelens.context.context_report``: prompt and snapshot
history, refusal evidence, the same prompt in other weeks); `show --json`
is ``tracelens.query.trace_jsonable``, the JSON form the TUI copies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from tracelens.cli.common import (
    LIMIT,
    cell,
    diag,
    echo,
    emit_json,
    emit_jsonl,
    json_option,
    open_store,
    out_console,
    store_option,
    when_option,
)
from tracelens.textsafe import one_line, visible

if TYPE_CHECKING:  # the store and polars load when a command runs, not when its options are parsed
    from tracelens.context import ContextReport
    from tracelens.query import SearchFilters


@click.command(name="stats")
@store_option
@json_option
def stats_cmd(store_path, as_json):
    """Traces per day, per model (requested vs returned) and per source format; quarantine count."""
    from tracelens.query import stats
    s = stats(open_store(store_path, url_ok=True))
    if as_json:
        emit_json(s.to_dict())
        return
    from rich.table import Table

    con = out_console()
    span = f"{s.first:%Y-%m-%d %H:%M} .. {s.last:%Y-%m-%d %H:%M} UTC" if s.first else "empty"
    con.print(f"{s.traces:,} traces ({span}), {s.quarantined:,} quarantined")
    t = Table("date", "traces", "refusals", box=None, title="per day")
    for d, n, r in s.per_day:
        t.add_row(cell(d), f"{n:,}", f"{r:,}")
    con.print(t)
    t = Table("model requested", "model returned", "traces", box=None, title="per model")
    for a, b, n in s.per_model:
        t.add_row(cell(a or "-"), cell(b or "-"), f"{n:,}")
    con.print(t)
    t = Table("source format", "traces", box=None, title="per source format")
    for a, n in s.per_format:
        t.add_row(cell(a), f"{n:,}")
    con.print(t)
    if s.quarantine_reasons:
        t = Table("quarantine reason", "records", box=None, title="quarantine")
        for a, n in s.quarantine_reasons[:15]:
            t.add_row(cell(a), f"{n:,}")
        con.print(t)


@click.command()
@click.argument("trace_id")
@click.option("--context", "with_context", is_flag=True,
              help="Also show what had changed around the trace (system-prompt and snapshot history, prompt "
                   "diff), why it is a refusal, and the same prompt in other weeks.")
@click.option("--related", default=20, show_default=True, type=LIMIT,
              help="With --context: most traces with the same prompt listed (0 = no limit).")
@store_option
@json_option
def show(trace_id, with_context, related, store_path, as_json):
    """Show one whole trace (an unambiguous id prefix is enough).

    \b
    Examples:
      tracelens show 3f2a91
      tracelens show 3f2a91 --context --json
    """
    from tracelens.context import context_report
    from tracelens.query import trace_jsonable
    store = open_store(store_path, url_ok=True)
    raw = store.get(trace_id)
    if raw is None:
        raise click.ClickException(store.not_found(trace_id))  # (made visible by the group)
    report = context_report(store, raw, same_prompt_limit=related or 1_000_000) if with_context else None
    if as_json:
        row = trace_jsonable(raw)
        emit_json(row if report is None else {"trace": row, **report.to_dict()})
        return
    row = raw  # the text view prints stored values as they are (timestamps as datetimes)
    if as_json:
        emit_json(row)
        return
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    con = out_console()
    meta = Table.grid(padding=(0, 2))
    for k in (
        "trace_id", "timestamp", "provider", "model_requested", "model_returned", "model_is_alias", "user_id",
        "session_id", "app", "stop_reason", "stop_reason_raw", "stop_details", "refusal", "refusal_evidence",
        "temperature", "max_tokens", "input_tokens", "output_tokens", "latency_ms", "status", "error_type",
        "request_id", "source_format", "source_file", "source_locator",
    ):
        if row.get(k) is not None:
            meta.add_row(Text(k, style="bold"), Text(visible(str(row[k]))))
    con.print(meta)
    if row.get("system_prompt"):
        con.print(Panel(Text(visible(row["system_prompt"])), title="system"))
    for m in row.get("messages") or []:
        body = visible(m.get("text") or "")
        for c in m.get("tool_calls") or []:
            body += f"\n[tool call] {visible(c.get('name') or '')}({visible(c.get('arguments') or '')})"
        con.print(Panel(Text(body), title=Text(visible(m.get("role")) or "?")))
    resp = visible(row.get("response_text") or "")
    for c in row.get("tool_calls") or []:
        resp += f"\n[tool call] {visible(c.get('name') or '')}({visible(c.get('arguments') or '')})"
    con.print(Panel(Text(resp), title="response"))
    if report is not None:
        _render_context(con, report)


def _render_context(con, report: ContextReport) -> None:
    """The context as the TUI's trace screen words it: notes, versions, diff, snapshots, refusal, same prompt."""
    from rich.table import Table
    from rich.text import Text

    ctx = report.context
    for note in ctx.notes:
        con.print(Text(f"· {visible(note)}"))
    t = Table("", "system prompt", "first seen (UTC)", "last seen (UTC)", "traces", box=None,
              title=f"system prompts of {visible(ctx.segment)}")
    for i, v in enumerate(ctx.prompt_versions):
        t.add_row("▶" if i == ctx.prompt_current else "", f"v{v.number}", f"{v.first_seen:%Y-%m-%d %H:%M}",
                  f"{v.last_seen:%Y-%m-%d %H:%M}", f"{v.traces:,}")
    con.print(t)
    prev, cur = ctx.previous_version, ctx.prompt_version
    if prev is not None and cur is not None:
        con.print(Text(f"diff v{prev.number} -> v{cur.number}", style="bold"))
        con.print(Text(visible(ctx.prompt_diff) or "same text (whitespace only)"))
    t = Table("", "model returned", "first seen (UTC)", "last seen (UTC)", "traces", box=None,
              title="served snapshots")
    for i, v in enumerate(ctx.models):
        t.add_row("▶" if i == ctx.model_current else "", cell(v.key or "-"), f"{v.first_seen:%Y-%m-%d %H:%M}",
                  f"{v.last_seen:%Y-%m-%d %H:%M}", f"{v.traces:,}")
    con.print(t)
    if report.refusal is not None:
        con.print(Text(visible(report.refusal.explanation)))
        if report.refusal.evidence:
            con.print(Text(f"evidence: {visible(report.refusal.evidence)}"))
    if not report.same_prompt_weeks:
        con.print(Text("same prompt in other weeks: none (no other trace has this exact prompt)"))
        return
    t = Table("week", "traces", "refused", box=None, title="same prompt in other weeks")
    for w in report.same_prompt_weeks:
        t.add_row(w.week, f"{w.traces:,}", f"{w.refusals:,}")
    con.print(t)
    t = Table("time (UTC)", "trace", "model returned", "refusal", "response", box=None)
    for r in report.same_prompt.iter_rows(named=True):
        t.add_row(f"{r['timestamp']:%Y-%m-%d %H:%M}", cell(r["trace_id"][:20]), cell(r["model_returned"] or "-"),
                  cell(r["refusal"] or "-"), Text(one_line(r["response_text"], 50)))
    con.print(t)
    if report.same_prompt_total > report.same_prompt.height:
        diag(f"{report.same_prompt_total - report.same_prompt.height:,} more trace(s) with the same prompt "
             "(raise --related)")


def search_options(f):
    """The filter options of `tracelens search` (one place, so other commands can share them)."""
    for opt in reversed(
        [
            click.option("--user", help="Exact user id."),
            click.option("--session", help="Exact session or conversation id."),
            click.option("--model", help="Substring of the requested or returned model."),
            click.option("--app", help="Exact app name."),
            when_option("since"),
            when_option("until", end=True),
            click.option("--text", help="Case-insensitive substring of the prompt or response (see --in)."),
            click.option("--regex", help="Regular expression over the prompt or response (see --in)."),
            click.option("--in", "text_in", default="prompt,response", show_default=True, metavar="FIELDS",
                         callback=_text_fields,
                         help="Where --text and --regex look: a comma list of prompt, response, system, or all "
                              "(the system prompt is left out by default: a word in it matches every trace of an app)."),
            click.option("--stop-reason", help="Normalised or raw stop reason, e.g. max_tokens, refusal."),
            click.option("--refusals", "refusal_only", is_flag=True, help="Only traces labelled as refusals."),
            click.option("--limit", default=50, show_default=True, type=LIMIT, help="Maximum rows (0 = no limit)."),
        ]
    ):
        f = opt(f)
    return f


def _text_fields(ctx, param, value: str) -> tuple[str, ...]:
    """``--in``: the comma list of text fields, or ``all``; an unknown name is a usage error."""
    names = ("prompt", "response", "system")
    fields = names if value.strip() == "all" else tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [f for f in fields if f not in names]
    if bad or not fields:
        raise click.BadParameter(f"{', '.join(bad) or 'nothing'} is not one of: {', '.join(names)}, all")
    return fields


def filters_from(user, session, model, app, since, until, text, regex, stop_reason, refusal_only, limit,
                 text_in=("prompt", "response")) -> SearchFilters:
    """``SearchFilters`` from the parsed search options (``limit`` 0 = no limit)."""
    from tracelens.query import SearchFilters
    return SearchFilters(
        user=user, session=session, model=model, app=app, since=since, until=until, text=text, regex=regex,
        stop_reason=stop_reason, refusal_only=refusal_only, limit=limit or None, text_in=tuple(text_in),
    )


@click.command(name="search")
@search_options
@click.option("--jsonl", "as_jsonl", is_flag=True, help="One JSON object per line.")
@store_option
@json_option
def search_cmd(user, session, model, app, since, until, text, regex, text_in, stop_reason, refusal_only, limit,
               as_jsonl, store_path, as_json):
    """Find traces. Only partitions in the time window are read.

    \b
    Examples:
      tracelens search --user 4411 --since "2026-11-18 13:00" --until "2026-11-18 17:00"
      tracelens search --text refund --refusals --json       # refund in a prompt or a response
      tracelens search --text refund --in all                # ... or in the system prompt
    """
    from tracelens.query import search
    f = filters_from(user, session, model, app, since, until, text, regex, stop_reason, refusal_only, limit, text_in)
    try:
        df = search(open_store(store_path, url_ok=True), f)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    rows = df.to_dicts()
    if as_json:
        emit_json(rows)
        return
    if as_jsonl:
        emit_jsonl(rows)
        return
    if not rows:
        # said, not shown as an empty table: with a window, which one (relative times move with the clock)
        window = ""
        if since or until:
            window = f" from {since:%Y-%m-%d %H:%M}" if since else ""
            window += f" to {until:%Y-%m-%d %H:%M} (end excluded)" if until else " on"
            window += " UTC"
        diag(f"no traces match{window}")
        return
    from rich.table import Table
    from rich.text import Text

    t = Table("time (UTC)", box=None)
    # an id is never cut to look whole: its column is as wide as the longest id; text columns give way first
    t.add_column("trace", no_wrap=True, min_width=max((len(r["trace_id"]) for r in rows), default=5))
    for name in ("user", "model returned", "refusal", "prompt", "response"):
        t.add_column(name)
    for r in rows:
        model_ret = (r["model_returned"] or r["model_requested"] or "-") + (" (alias)" if r["model_is_alias"] else "")
        t.add_row(
            f"{r['timestamp']:%Y-%m-%d %H:%M:%S}", cell(r["trace_id"]), cell(r["user_id"] or "-"),
            cell(model_ret), cell(r["refusal"] or "-"), Text(one_line(r["prompt_text"], 40)),
            Text(one_line(r["response_text"], 40)),
        )
    out_console().print(t)
    click.echo(f"{len(rows)} trace(s)", err=True)


@click.command()
@click.option("--limit", default=50, show_default=True, type=LIMIT, help="Maximum rows (0 = no limit).")
@store_option
@json_option
def quarantine(limit, store_path, as_json):
    """List quarantined records with their reasons."""
    df = open_store(store_path, url_ok=True).scan("quarantine").sort("quarantined_at", descending=True).head(limit or None).collect()
    rows = df.drop("date").to_dicts()
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        echo(f"{r['source_file']}:{r['source_locator']}: {r['reason']}")
    if not rows:
        click.echo("quarantine is empty", err=True)


commands = [stats_cmd, show, search_cmd, quarantine]
