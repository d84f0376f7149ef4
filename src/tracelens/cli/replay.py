"""`tracelens replay` and `tracelens canary`: thin CLI over ``tracelens.replay``.

Parse options, fetch traces from the store, plan a ``ReplaySession``
(``tracelens.replay.session``, the same one the TUI and canary runs use),
show what will be sent (model, parameters, token and cost estimate) on
stderr, ask before spending money (interactive terminals only; otherwise
``--yes`` is required), run, store the results, and render verdicts as a
table or ``--json`` on stdout.
``--dry-run`` prints the exact request bodies (one compact JSON document per
line, or the plans with ``--json``) and sends nothing.
Exit codes: 0 done, 1 nothing replayable / refused / all replays failed,
2 usage, 130 interrupted (partial results are still printed and stored).
"""

from __future__ import annotations

import json
from typing import Any

import click

from tracelens.cli.common import (
    LIMIT,
    FiniteFloatRange,
    cell,
    diag,
    echo,
    emit_json,
    is_interactive,
    json_option,
    open_store,
    store_option,
    when_option,
)
from tracelens.modelcatalog import load_catalog
from tracelens.replay.canary import (
    CanaryError,
    add_to_canary,
    canary_runs,
    compare_runs,
    list_canaries,
    plan_canary,
    run_canary,
)
from tracelens.replay.client import DEFAULT_BASE_URL, DEFAULT_KEY_ENV, ReplayClient, ReplayResult, destination
from tracelens.replay.pricing import PriceError, load_prices
from tracelens.replay.request import ReplayError, ReplayPlan
from tracelens.replay.session import ReplaySession, plan_session, run_session
from tracelens.replay.verdict import Verdict
from tracelens.secrets import scrub_text
from tracelens.textsafe import json_text, one_line, visible

_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tool_choice", "thinking", "metadata")


def send_options(f):
    """Options shared by `replay` and `canary run`."""
    for opt in reversed(
        [
            click.option("--model", help="Replay on this dated snapshot instead of the recorded one."),
            click.option("--dry-run", is_flag=True, help="Print the exact request bodies; send nothing."),
            click.option("--yes", "-y", is_flag=True, help="Send without asking (required when not interactive)."),
            click.option("--base-url", help="API base URL (default: $ANTHROPIC_BASE_URL, else the public API)."),
            click.option(
                "--api-key-env",
                default=DEFAULT_KEY_ENV,
                show_default=True,
                help="Name of the environment variable holding the API key (the key itself is never printed).",
            ),
            click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64)),
            click.option(
                "--timeout",
                default=120.0,
                show_default=True,
                type=FiniteFloatRange(min=0.1),
                help="Total seconds per attempt: the request and the whole response (not retried when exceeded).",
            ),
            click.option(
                "--prices", type=click.Path(dir_okay=False), help="Extra price table JSON (also $TRACELENS_PRICES)."
            ),
            click.option("--no-save", is_flag=True, help="Do not store the replay results."),
        ]
    ):
        f = opt(f)
    return f


def _prices(path: str | None):
    try:
        return load_prices(path)
    except PriceError as e:
        raise click.ClickException(str(e)) from None


def _describe_plans(plans: list[ReplayPlan], base_url: str | None) -> None:
    """What will be sent, on stderr (bodies themselves only with --dry-run)."""
    dest = destination(base_url)
    if dest == DEFAULT_BASE_URL:
        dest += " (default)"
    total_n = sum(p.n for p in plans)
    diag(f"replay plan: {len(plans)} trace(s), {total_n} request(s) to {dest}")
    known = 0.0
    unknown = 0
    for p in plans:
        body = p.body_json
        params = ", ".join(f"{k}={json.dumps(body[k], ensure_ascii=False)}" for k in _PARAMS if k in body)
        extras = []
        if body.get("system"):
            extras.append("system prompt")
        if body.get("tools"):
            extras.append(f"{len(body['tools'])} tool(s)")
        extras.append(f"{len(body.get('messages') or [])} message(s)")
        diag(f"  {p.trace_id}  model={p.model}  n={p.n}{'  [reconstructed]' if p.reconstructed else ''}")
        diag(f"    {visible(params)}; {', '.join(extras)}; body {len(p.body):,} bytes")
        if p.estimate is not None:
            diag(f"    cost: {p.estimate.describe()}")
            if p.estimate.usd is None:
                unknown += 1
            else:
                known += p.estimate.usd
        for w in p.warnings:
            diag(f"    note: {visible(w)}")
    total = f"≈ ${known:,.4f}" + (f" + {unknown} trace(s) at unknown price" if unknown else "")
    diag(f"  estimated total: {total}")


def _confirm(plans: list[ReplayPlan], yes: bool) -> None:
    n = sum(p.n for p in plans)
    if yes:
        return
    if not is_interactive():
        raise click.ClickException(
            f"refusing to send {n} paid request(s) without confirmation: not an interactive terminal. "
            "Pass --yes to send, or --dry-run to see exactly what would be sent."
        )
    if not click.confirm(f"Send {n} request(s)?", default=False, err=True):
        raise click.ClickException("cancelled; nothing was sent")


def _dry_run(plans: list[ReplayPlan], as_json: bool) -> None:
    if as_json:
        emit_json({"dry_run": True, "plans": [p.to_dict() for p in plans]})
        return
    for p in plans:
        # The exact bytes that would be POSTed, one body per line (a secret in a store written before
        # the scrubber, and characters a terminal acts on, are escaped: still the same JSON document).
        click.echo(json_text(scrub_text(p.body.decode("utf-8"))))


def _client(base_url, api_key_env, concurrency, timeout) -> ReplayClient:
    return ReplayClient(api_key_env=api_key_env, base_url=base_url, concurrency=concurrency, timeout=timeout)


def _progress(total: int):
    done = {"n": 0}

    def on_result(r: ReplayResult) -> None:
        done["n"] += 1
        status = "ok" if r.ok else f"error: {one_line(r.error, 100)}"
        diag(f"  [{done['n']}/{total}] {r.trace_id} {status}")

    return on_result


def _render_verdicts(verdicts: list[Verdict]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    con = Console(highlight=False, soft_wrap=False)
    t = Table("trace", "verdict", "ok/err", "exact", "refusal orig→replays", "len×", "sim orig/replays", "p", box=None)
    for v in verdicts:
        refusals = ",".join(f"{k}:{n}" for k, n in sorted(v.replay_refusals.items())) or "-"
        sim = "-" if v.original_similarity is None else f"{v.original_similarity:.2f}"
        sim += "/" + ("-" if v.replay_similarity is None else f"{v.replay_similarity:.2f}")
        t.add_row(
            Text(visible(v.trace_id)),
            cell(v.verdict + ("*" if v.descriptive and v.verdict != "inconclusive" else "")),
            f"{v.n_replays}/{v.n_errors}",
            "-" if v.exact_match_rate is None else f"{v.exact_match_rate:.0%}",
            cell(f"{v.original_refusal}→{refusals}"),
            "-" if v.length_ratio is None else f"{v.length_ratio:.2f}",
            sim,
            "-" if v.p_value is None else f"{v.p_value:.3f}",
        )
    con.print(t)
    if any(v.descriptive and v.verdict != "inconclusive" for v in verdicts):
        con.print(Text("* descriptive: fewer than 19 replays, so no rank p-value ≤ 0.05 is possible (use --n 19+)"))
    for v in verdicts:
        for reason in v.reasons:
            if not reason.startswith("descriptive:"):
                con.print(Text(f"  {visible(v.trace_id)}: {visible(reason)}"))


def _report_errors(results: list[ReplayResult]) -> None:
    seen: set[str] = set()
    for r in results:
        if r.error and r.error not in seen:
            seen.add(r.error)
            diag(f"error ({r.trace_id}): {visible(r.error)}")


def _execute(session: ReplaySession, *, store_path, no_save, base_url, api_key_env, concurrency, timeout) -> None:
    """Send, save and judge through ``replay.session`` (what the TUI and canary runs use too)."""
    client = _client(base_url, api_key_env, concurrency, timeout)
    total = session.requests
    try:
        run_session(session, client, on_result=_progress(total), save_to=None if no_save else store_path)
    except ReplayError as e:
        raise click.ClickException(str(e)) from None
    if session.interrupted:
        diag(f"interrupted: {len(session.results)} of {total} replay(s) finished; keeping those")
    if session.saved:
        diag(f"saved {len(session.results)} replay result(s) under {store_path}/replays")
    if session.save_error:
        diag(f"replay results {session.save_error}")
    _report_errors(session.results)


def _select_traces(store, trace_ids, user, session, model_filter, since, until, text, limit) -> list[dict]:
    traces: list[dict] = []
    missing = []
    for tid in trace_ids:
        t = store.get(tid)
        if t is None:
            missing.append(tid)
        else:
            traces.append(t)
    if missing:
        raise click.ClickException(f"no trace(s) {', '.join(missing)} in the store (an unambiguous id prefix works)")
    if any(v is not None for v in (user, session, model_filter, since, until, text)):
        from tracelens.query import SearchFilters, search

        f = SearchFilters(
            user=user, session=session, model=model_filter, since=since, until=until, text=text, limit=limit or None
        )
        seen = {t["trace_id"] for t in traces}
        for row in search(store, f, columns=None).to_dicts():
            row.pop("date", None)
            if row["trace_id"] not in seen:
                traces.append(row)
                seen.add(row["trace_id"])
    return traces


@click.command()
@click.argument("trace_ids", nargs=-1)
@click.option("--n", "n", default=5, show_default=True, type=click.IntRange(1, 200), help="Replays per trace.")
@send_options
@click.option("--user", help="Select traces of this user id.")
@click.option("--session", help="Select traces of this session or conversation id.")
@click.option("--model-filter", help="Select traces whose requested or returned model contains this.")
@when_option("since")
@when_option("until", end=True)
@click.option("--text", help="Select traces whose prompt, response or system prompt contains this.")
@click.option("--limit", default=10, show_default=True, type=LIMIT, help="Maximum traces selected by filters (0 = no limit).")
@store_option
@json_option
def replay(
    trace_ids, n, model, dry_run, yes, base_url, api_key_env, concurrency, timeout, prices, no_save,
    user, session, model_filter, since, until, text, limit, store_path, as_json,
):  # fmt: skip
    """Replay traces against their pinned snapshot N times and give a verdict.

    \b
    Sends the recorded request body (minus `stream`, with the snapshot the
    provider reported as `model`) to the Messages API. Shows what will be
    sent and what it costs first; --dry-run prints the exact bodies.
    """
    if not trace_ids and all(v is None for v in (user, session, model_filter, since, until, text)):
        raise click.UsageError(
            "name TRACE_IDs or select traces with --user/--session/--model-filter/--since/--until/--text"
        )
    store = open_store(store_path)
    traces = _select_traces(store, trace_ids, user, session, model_filter, since, until, text, limit)
    if not traces:
        raise click.ClickException("no trace matched the filters")
    planned = plan_session(traces, n=n, model=model, prices=_prices(prices), catalog=load_catalog(store.root))
    for tid, why in planned.skipped.items():
        diag(f"cannot replay {tid}: {visible(why)}")
    if not planned.plans:
        raise click.ClickException("nothing to replay")
    _describe_plans(planned.plans, base_url)
    if dry_run:
        _dry_run(planned.plans, as_json)
        return
    _confirm(planned.plans, yes)
    _execute(planned, store_path=store_path, no_save=no_save, base_url=base_url, api_key_env=api_key_env,
             concurrency=concurrency, timeout=timeout)
    if as_json:
        emit_json(planned.to_dict())
    else:
        _render_verdicts(planned.verdicts)
    _exit(planned.results, planned.interrupted, save_failed=planned.save_error is not None)


def _exit(results: list[ReplayResult], interrupted: bool, save_failed: bool = False) -> None:
    if interrupted:
        raise SystemExit(130)
    if save_failed or (results and all(not r.ok for r in results)):
        raise SystemExit(1)


@click.group()
def canary():
    """Canary sets: named traces re-run against their pinned snapshots to catch drift."""


@canary.command("add")
@click.argument("name")
@click.argument("trace_ids", nargs=-1, required=True)
@click.option("--n", "n", type=click.IntRange(1, 200), help="Default replays per trace for this set.")
@click.option("--description")
@store_option
@json_option
def canary_add(name, trace_ids, n, description, store_path, as_json):
    """Create canary NAME or add TRACE_IDs to it (ids are checked against the store)."""
    store = open_store(store_path)
    full_ids, missing = [], []
    for tid in trace_ids:
        t = store.get(tid)
        if t is None:
            missing.append(tid)
        else:
            full_ids.append(t["trace_id"])
    if missing:
        raise click.ClickException(f"no trace(s) {', '.join(missing)} in the store; nothing added")
    try:
        c = add_to_canary(store_path, name, full_ids, n=n, description=description)
    except CanaryError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(c.to_dict())
    else:
        echo(f"{c.name}: {len(c.trace_ids)} trace(s), n={c.n}")


@canary.command("list")
@store_option
@json_option
def canary_list(store_path, as_json):
    """List canary sets with their runs."""
    rows = []
    for c in list_canaries(store_path):
        runs = canary_runs(store_path, c.name)
        rows.append(
            {
                "name": c.name,
                "traces": len(c.trace_ids),
                "n": c.n,
                "runs": len(runs),
                "last_run_id": runs[-1][0] if runs else None,
                "last_run_at": runs[-1][1].isoformat() if runs else None,
                "description": c.description,
            }
        )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        diag(f"no canary sets in {store_path} (create one with `tracelens canary add NAME TRACE_ID...`)")
        return
    for r in rows:
        last = f", last run {r['last_run_id']} at {r['last_run_at']}" if r["runs"] else ""
        echo(f"{r['name']}: {r['traces']} trace(s), n={r['n']}, {r['runs']} run(s){last}")


@canary.command("run")
@click.argument("name")
@click.option("--n", "n", type=click.IntRange(1, 200), help="Replays per trace (default: the set's n).")
@send_options
@store_option
@json_option
def canary_run(
    name, n, model, dry_run, yes, base_url, api_key_env, concurrency, timeout, prices, no_save, store_path, as_json
):
    """Replay every trace of canary NAME and compare with its previous run."""
    store = open_store(store_path)
    table = _prices(prices)
    try:
        planned = plan_canary(store_path, name, store.get, n=n, model=model, prices=table)
    except CanaryError as e:
        raise click.ClickException(str(e)) from None
    _, session = planned
    plans = session.plans
    for tid, why in session.skipped.items():
        diag(f"cannot replay {tid}: {visible(why)}")
    if not plans:
        raise click.ClickException(f"canary {name!r}: nothing to replay")
    _describe_plans(plans, base_url)
    if dry_run:
        _dry_run(plans, as_json)
        return
    if no_save:
        raise click.UsageError("canary runs are compared through the stored results; --no-save is not supported here")
    _confirm(plans, yes)
    client = _client(base_url, api_key_env, concurrency, timeout)
    try:
        run = run_canary(
            store_path, name, store.get, client, planned=planned, on_result=_progress(sum(p.n for p in plans))
        )
    except ReplayError as e:
        raise click.ClickException(str(e)) from None
    _report_errors(run.results)
    comparison = None
    if len(canary_runs(store_path, name)) > 1 and run.results:
        comparison = compare_runs(store_path, name, run_id=run.run_id)
    if as_json:
        emit_json(
            {
                "name": name,
                "run_id": run.run_id,
                "skipped": run.skipped,
                "results": [r.to_dict() for r in run.results],
                "verdicts": [v.to_dict() for v in run.verdicts],
                "comparison": comparison.to_dict() if comparison else None,
                "interrupted": run.interrupted,
            }
        )
    else:
        echo(f"canary {name} run {run.run_id}: {len(run.results)} replay(s)")
        _render_verdicts(run.verdicts)
        _render_comparison(comparison)
    _exit(run.results, run.interrupted)


def _render_comparison(comparison: Any) -> None:
    if comparison is None:
        diag("no previous run to compare with")
        return
    echo(f"compared with run {comparison.previous_run_id}: {len(comparison.changed)} prompt(s) changed")
    for p in comparison.prompts:
        flag = "CHANGED" if p.changed else "same"
        sim = "-" if p.similarity_cross is None else f"{p.similarity_cross:.2f}"
        lr = "-" if p.length_ratio is None else f"{p.length_ratio:.2f}"
        rr = (
            "-"
            if p.refusal_rate_current is None or p.refusal_rate_previous is None
            else (f"{p.refusal_rate_previous:.0%}→{p.refusal_rate_current:.0%}")
        )
        echo(f"  {p.trace_id}  {flag}  refusals {rr}  cross-sim {sim}  len ratio {lr}")
        for r in p.reasons:
            echo(f"    {visible(r)}")


@canary.command("compare")
@click.argument("name")
@click.option("--run", "run_id", help="Run id (default: latest).")
@click.option("--previous", "previous_run_id", help="Run id to compare with (default: the one before).")
@store_option
@json_option
def canary_compare(name, run_id, previous_run_id, store_path, as_json):
    """Compare two stored runs of canary NAME, prompt by prompt."""
    try:
        comparison = compare_runs(store_path, name, run_id=run_id, previous_run_id=previous_run_id)
    except CanaryError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(comparison.to_dict())
    else:
        _render_comparison(comparison if comparison.previous_run_id else None)


commands = [replay, canary]
