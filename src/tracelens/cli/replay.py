"""`tracelens replay` and `tracelens canary`: thin CLI over ``tracelens.replay`` and ``tracelens.evals``.

`replay`: parse options, fetch traces from the store, plan a
``ReplaySession`` (``tracelens.replay.session``, the same one the TUI uses),
show what will be sent (model, parameters, token and cost estimate) on
stderr, ask before spending money (interactive terminals only; otherwise
``--yes`` is required), run, store the results, and render verdicts as a
table or ``--json`` on stdout.
``--dry-run`` prints the exact request bodies (one compact JSON document per
line, or the plans with ``--json``) and sends nothing.
Exit codes: 0 done, 1 nothing replayable / refused / all replays failed,
2 usage, 130 interrupted (partial results are still printed and stored).

`canary`: an alias of `tracelens eval` for canary sets (``tracelens.evals.canary``):
``add`` is `eval add NAME ... --expect behaves-like` on a suite marked
``kind: canary`` (n 5 by default), ``run`` is `eval run NAME --target pinned`
(``--model`` runs ``anthropic:MODEL``), ``compare`` compares two stored runs
(``evals.report.compare_runs``), ``list`` lists the canary suites and
``migrate`` converts canary sets stored by older versions (every canary and
eval command does so on first use). Exit codes of `canary run`: 0 done, 1
nothing could be sent / every request failed (or a regression with
``--fail-on regression``), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from tracelens.replay.request import DEFAULT_BASE_URL, DEFAULT_KEY_ENV
from tracelens.secrets import scrub_text
from tracelens.textsafe import json_text, one_line, visible

if TYPE_CHECKING:
    from tracelens.replay.client import ReplayClient, ReplayResult
    from tracelens.replay.request import ReplayPlan
    from tracelens.replay.session import ReplaySession
    from tracelens.replay.verdict import Verdict

_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "tool_choice", "thinking", "metadata")


def send_options(f):
    """The sending options of `replay`."""
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
    from tracelens.replay.pricing import PriceError, load_prices
    try:
        return load_prices(path)
    except PriceError as e:
        raise click.ClickException(str(e)) from None


def _describe_plans(plans: list[ReplayPlan], base_url: str | None) -> None:
    """What will be sent, on stderr (bodies themselves only with --dry-run)."""
    from tracelens.replay.client import destination
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
    from tracelens.replay.client import ReplayClient
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
    from tracelens.replay.request import ReplayError
    from tracelens.replay.session import run_session
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
    from tracelens.modelcatalog import load_catalog
    from tracelens.replay.session import plan_session
    if not trace_ids and all(v is None for v in (user, session, model_filter, since, until, text)):
        raise click.UsageError(
            "name TRACE_IDs or select traces with --user/--session/--model-filter/--since/--until/--text"
        )
    store = open_store(store_path, needs="canary sets and replay runs, kept in a local store directory")
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
    """Canary sets: suites of traces graded by 'behaves like the recorded response', run on their pinned snapshots."""


def _canary_store(store_path: str):
    from tracelens.cli.evals import open_eval_store

    return open_eval_store(store_path)


def _canary_error(e: Exception) -> click.ClickException:
    return click.ClickException(str(e))


@canary.command("add")
@click.argument("name")
@click.argument("trace_ids", nargs=-1, required=True)
@click.option("--n", "n", type=click.IntRange(1, 50), help="Repeats per trace for this set's runs (default 5).")
@click.option("--description")
@store_option
@json_option
def canary_add(name, trace_ids, n, description, store_path, as_json):
    """Create canary NAME or add TRACE_IDs to it (`eval add NAME ... --expect behaves-like`, marked as a canary)."""
    from tracelens.evals.canary import CanaryError, add_canary
    from tracelens.evals.graders import SuiteError

    store = _canary_store(store_path)
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
        out = add_canary(store.root, name, full_ids, store.get, n=n, description=description)
    except (CanaryError, SuiteError) as e:
        raise _canary_error(e) from None
    for tid, why in out.skipped.items():
        if not why.startswith("already in the suite"):
            diag(f"not added {tid}: {visible(why)}")
    s = out.suite
    if as_json:
        emit_json({"name": s.name, "kind": s.kind, "trace_ids": [c.trace_id or c.id for c in s.cases], "n": s.n,
                   "description": s.description, "created_at": s.created_at, "updated_at": s.updated_at,
                   "added": out.added, "skipped": out.skipped, "path": str(out.path) if out.path else None})
    else:
        echo(f"{s.name}: {len(s.cases)} trace(s), n={s.n} ({out.path})")
    if not s.cases:
        raise SystemExit(1)


@canary.command("list")
@store_option
@json_option
def canary_list(store_path, as_json):
    """List canary sets (the suites marked as canaries) with their runs."""
    from tracelens.evals.canary import canary_suites
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.runner import list_runs

    store = _canary_store(store_path)
    try:
        suites = canary_suites(store.root)
    except SuiteError as e:
        raise _canary_error(e) from None
    runs = list_runs(store.root)
    rows = []
    for s in suites:
        mine = [r for r in runs if r.suite == s.name]
        rows.append({"name": s.name, "traces": len(s.cases), "n": s.n, "runs": len(mine),
                     "last_run_id": mine[-1].run_id if mine else None,
                     "last_run_at": mine[-1].started_at.isoformat() if mine else None,
                     "description": s.description})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        diag(f"no canary sets in {store.root} (create one with `tracelens canary add NAME TRACE_ID...`)")
        return
    for r in rows:
        last = f", last run {r['last_run_id']} at {r['last_run_at'][:16]}" if r["runs"] else ""
        echo(f"{r['name']}: {r['traces']} trace(s), n={r['n']}, {r['runs']} run(s){last}")


def _unsupported(option: str, why: str) -> click.UsageError:
    return click.UsageError(f"{option} is not supported by `canary run` any more: {why}")


@canary.command("run")
@click.argument("name")
@click.option("--n", "n", type=click.IntRange(1, 50), help="Repeats per trace (default: the set's n).")
@click.option("--model", help="Run on this snapshot instead of each trace's pinned one (target anthropic:MODEL).")
@click.option("--dry-run", is_flag=True, help="Print the exact request bodies; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (required when not interactive).")
@click.option("--base-url", help="API base URL (default: $ANTHROPIC_BASE_URL, else the public API).")
@click.option("--api-key-env", default=DEFAULT_KEY_ENV, show_default=True,
              help="Name of the environment variable holding the API key (the key itself is never printed).")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-cost", type=FiniteFloatRange(min=0), metavar="USD", help="Refuse to send above this estimate.")
@click.option("--label", help="A label stored with the run.")
@click.option("--fail-on", type=click.Choice(["regression", "none"]), default="none", show_default=True,
              help="Exit 1 when the run regressed against the previous run (for CI).")
@click.option("--timeout", type=FiniteFloatRange(min=0.1), hidden=True)
@click.option("--prices", type=click.Path(dir_okay=False), hidden=True)
@click.option("--no-save", is_flag=True, hidden=True)
@store_option
@json_option
def canary_run(name, n, model, dry_run, yes, base_url, api_key_env, concurrency, max_cost, label, fail_on, timeout,
               prices, no_save, store_path, as_json):
    """Run canary NAME (`eval run NAME --target pinned`), store it and compare with its previous run.

    \b
    Prints the pass rate against the previous run and the traces whose
    behaviour changed (passed before, fail now). Exit codes: 0 done,
    1 nothing could be sent / every request failed (or a regression with
    --fail-on regression), 2 usage, 130 interrupted (finished results are
    stored).
    """
    import dataclasses

    from tracelens.cli.evals import _confirm as confirm_cost
    from tracelens.cli.evals import _describe, send_plans
    from tracelens.evals.canary import DEFAULT_N, CanaryError, load_canary
    from tracelens.evals.report import run_summaries
    from tracelens.evals.runner import plan_run
    from tracelens.evals.suite import suite_path
    from tracelens.evals.targets import parse_target

    if timeout is not None:
        raise _unsupported("--timeout", "canary runs are eval runs, with the replay client's deadline per attempt")
    if prices is not None:
        raise _unsupported("--prices", "give an extra price table with $TRACELENS_PRICES")
    if no_save:
        raise _unsupported("--no-save", "runs are compared through their stored results")
    store = _canary_store(store_path)
    try:
        suite = load_canary(store.root, name)
        spec = parse_target(f"anthropic:{model}#{api_key_env}" if model else f"pinned#{api_key_env}")
    except CanaryError as e:
        raise _canary_error(e) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if base_url:
        spec = dataclasses.replace(spec, base_url=base_url)
    plan = plan_run(suite, spec, n or suite.n or DEFAULT_N)
    _describe(plan)
    if dry_run:
        _canary_dry_run(plan, as_json)
        return
    if not plan.sendable:
        raise click.ClickException(f"canary {name!r}: nothing to send (see the notes above)")
    confirm_cost([plan], yes, max_cost)
    total = len(plan.cases) * plan.n
    done = {"n": 0}

    def progress(_plan) -> Callable:
        def on_result(r) -> None:
            done["n"] += 1
            status = r.outcome if r.outcome != "error" else f"error: {one_line(r.response.error, 100)}"
            diag(f"  [{done['n']}/{total}] {r.case_id} {status}")

        return on_result

    [run], _ = send_plans(store, suite, suite_path(store.root, suite.name), [plan], progress,
                          concurrency=concurrency, label=label)
    [summary] = run_summaries(store.root, suite, [run.run_id]) or [None]
    changed = summary.vs_previous.overall.pass_to_fail if summary and summary.vs_previous else []
    if as_json:
        emit_json({"name": name, "suite": suite.name, "run_id": run.run_id, "target": spec.name,
                   "interrupted": run.interrupted, "answers": run.count("pass") + run.count("fail"),
                   "errors": run.count("error"), "changed": changed,
                   "run": summary.to_dict() if summary else None})
    else:
        from tracelens.cli.common import out_console
        from tracelens.evals.render import print_summaries

        echo(f"canary {name} run {run.run_id}: {len(run.results)} answer(s) on {spec.name}")
        print_summaries([summary] if summary else [], out_console())
        if summary is not None and summary.vs_previous is None:
            diag("no previous run to compare with")
    if run.interrupted:
        raise SystemExit(130)
    if (run.results and all(r.outcome == "error" for r in run.results)) or (
            fail_on == "regression" and summary is not None and summary.regressed):
        raise SystemExit(1)


def _canary_dry_run(plan: Any, as_json: bool) -> None:
    from tracelens.replay.request import dumps_body

    if as_json:
        emit_json({"dry_run": True, **plan.to_dict(), "bodies": {c.case.id: c.wire for c in plan.cases}})
        return
    for p in plan.sendable:
        # the exact bytes that would be POSTed, one body per line (secrets and terminal controls escaped)
        click.echo(json_text(scrub_text(dumps_body(p.wire).decode("utf-8"))))


@canary.command("compare")
@click.argument("name")
@click.option("--run", "run_id", help="Run id (default: the latest).")
@click.option("--previous", "previous_run_id", help="Run id to compare with (default: the one before it).")
@store_option
@json_option
def canary_compare(name, run_id, previous_run_id, store_path, as_json):
    """Compare two stored runs of canary NAME, trace by trace (paired test, the traces that changed)."""
    from tracelens.evals.canary import CanaryError, load_canary
    from tracelens.evals.report import EvalReportError, compare_runs

    store = _canary_store(store_path)
    try:
        suite = load_canary(store.root, name)
        verdict = compare_runs(store.root, suite, run_id, previous_run_id)
    except (CanaryError, EvalReportError) as e:
        raise _canary_error(e) from None
    if as_json:
        emit_json(verdict.to_dict())
    else:
        from tracelens.cli.common import out_console
        from tracelens.evals.render import print_verdict

        echo(f"canary {name}: run {verdict.candidate.run.run_id} against run {verdict.baseline.run.run_id}")
        print_verdict(verdict, out_console())


@canary.command("migrate")
@store_option
@json_option
def canary_migrate(store_path, as_json):
    """Turn canary sets kept by an older version into canary suites, and their runs into eval runs.

    \b
    Every canary and eval command does this on first use; this command does
    it now and says what it did. The old files move to canaries/migrated/.
    """
    from tracelens.evals.canary import migrate_canaries

    store = open_store(store_path, needs="canary sets and replay runs, kept in a local store directory")
    done = migrate_canaries(store.root, store.get, note=diag)
    if as_json:
        emit_json([m.to_dict() for m in done])
    elif not done:
        diag(f"no canary sets to migrate in {store.root}")


commands = [replay, canary]
