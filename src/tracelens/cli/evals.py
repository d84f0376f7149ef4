"""`tracelens eval`: task evals built from your own traffic (thin CLI over ``tracelens.evals``).

Commands: ``add`` (traces, or a search, become cases of a stored suite),
``import`` (a suite file or a promptfoo config into the store), ``list``,
``show``, ``run`` (plan, show cost, confirm, send, grade, store, compare with
the previous run), ``runs``, ``report`` and ``compare`` (the upgrade verdict).
Plans, progress and diagnostics go to stderr; data (tables, ``--json``) to
stdout. Exit codes: 0 done, 1 a regression with ``--fail-on regression`` (or
nothing could be sent), 2 usage or a bad suite, 130 interrupted (finished
results are stored).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import click

from tracelens.cli.common import (
    FiniteFloatRange,
    diag,
    echo,
    emit_json,
    is_interactive,
    json_option,
    open_store,
    store_option,
)
from tracelens.textsafe import one_line, visible


class SuiteUsageError(click.ClickException):
    """A bad suite file or grader: the message names the file, line and field; exit code 2."""

    exit_code = 2


def open_eval_store(store_path: str):
    """The store, with canary sets kept by an older version migrated to eval suites first (once; a note on stderr)."""
    store = open_store(store_path, needs="eval suites and runs, kept in a local store directory")
    from tracelens.evals.canary import migrate_canaries, old_canary_files

    if old_canary_files(store.root):
        from tracelens.store import StoreError

        try:
            migrate_canaries(store.root, store.get, note=diag)
        except (StoreError, OSError) as e:  # a read-only store: the commands still read it; migrate later
            diag(f"canary sets not migrated yet ({e}); run `tracelens canary migrate` on a writable store")
    return store


def _suite_error(e: Exception) -> click.ClickException:
    return SuiteUsageError(str(e))


def _open_suite(store_path: str, ref: str):
    """(store, suite, suite file) for a stored suite's name or a suite file's path; a bad suite is exit 2."""
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.suite import load_suite

    store = open_eval_store(store_path)
    try:
        suite, path = load_suite(ref, store.root)
    except SuiteError as e:
        raise _suite_error(e) from None
    return store, suite, path


def _parse_expect(values: tuple[str, ...], graders_json: tuple[str, ...]) -> list:
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.suite import parse_expect

    try:
        return parse_expect(values, graders_json)
    except SuiteError as e:
        raise SuiteUsageError(str(e)) from None


def _tags(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k.strip():
            raise click.UsageError(f"--tag {v!r}: use NAME=VALUE, e.g. --tag task=refund")
        out[k.strip()] = val.strip()
    return out


@click.group("eval")
def eval_group():
    """Task evals from your own traffic: suites, graded runs on any target, regression tests."""


@eval_group.command("add")
@click.argument("suite")
@click.argument("trace_ids", nargs=-1)
@click.option("--expect", "expect", multiple=True, metavar="TYPE[:VALUE]",
              help="A grader for the new cases, e.g. not-refused, contains:refund, regex:'#\\d+', similar:0.8, "
                   "behaves-like, tool-call:lookup, json. Repeatable.")
@click.option("--grader", "graders_json", multiple=True, metavar="JSON",
              help="A grader with all its options, as JSON (see docs/evals.md). Repeatable.")
@click.option("--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Tag the new cases (task, risk, ...).")
@click.option("--description", help="Describe the suite.")
@click.option("--replace", is_flag=True, help="Rebuild cases that are already in the suite.")
@click.option("--pin", metavar="SNAPSHOT", help="Pin this dated snapshot (for traces that record only an alias).")
@click.option("--text", help="Add the traces whose prompt or response holds this text (or /regex/).")
@click.option("--user", help="... of this user.")
@click.option("--app", help="... of this app.")
@click.option("--model", help="... whose model id contains this.")
@click.option("--time", "time_expr", help="... in this window (2026-W47, 7d, 2026-11-18, yesterday 3pm).")
@click.option("--refusals", is_flag=True, help="... that were refused.")
@click.option("--answered", is_flag=True, help="... that were answered (not refused): the behaviour to keep.")
@click.option("--sample", type=click.IntRange(1, 100_000), help="Add a random sample of this many matching traces.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Seed of --sample.")
@store_option
@json_option
def eval_add(suite, trace_ids, expect, graders_json, tags, description, replace, pin, text, user, app, model,
             time_expr, refusals, answered, sample, seed, store_path, as_json):
    """Add traces (by id, or every trace a search finds) to SUITE as cases with graders."""
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.suite import add_traces, check_name

    try:
        check_name(suite)
    except SuiteError as e:
        raise _suite_error(e) from None
    store = open_eval_store(store_path)
    graders = _parse_expect(expect, graders_json)
    ids = list(trace_ids)
    if refusals and answered:
        raise click.UsageError("--refusals and --answered exclude each other")
    searching = any(v for v in (text, user, app, model, time_expr, refusals, answered))
    if searching:
        ids += _search_ids(store, text, user, app, model, time_expr, refusals, answered)
        if sample is not None and len(ids) > sample:
            ids = sorted(random.Random(seed).sample(ids, sample))
    elif sample is not None:
        raise click.UsageError("--sample picks from a search: give --text, --user, --app, --model, --time, "
                               "--refusals or --answered")
    if not ids:
        raise click.UsageError("no traces to add: name TRACE_IDs or a search (--text, --user, --time, ...)")
    resolved: list[str] = []
    for tid in ids:
        t = store.get(tid)
        if t is None:
            raise click.ClickException(store.not_found(tid) + "; nothing added")
        resolved.append(t["trace_id"])
    if not graders:
        diag("note: no --expect given: the cases have no graders yet, so every answer passes; add graders with "
             "--expect, or edit the suite file")
    try:
        out = add_traces(store.root, suite, resolved, store.get, graders, _tags(tags), description, replace, pin)
    except SuiteError as e:
        raise _suite_error(e) from None
    for tid, why in out.skipped.items():
        diag(f"not added {tid}: {visible(why)}")
    for cid, notes in out.notes.items():
        for n in notes:
            diag(f"note {cid}: {visible(n)}")
    if as_json:
        emit_json(out.to_dict())
    else:
        where = f" ({out.path})" if out.path else ""
        echo(f"{out.suite.name}: {len(out.added)} case(s) added, {len(out.replaced)} replaced, "
             f"{len(out.skipped)} not added; {len(out.suite.cases)} case(s) in the suite{where}")
    if not (out.added or out.replaced):
        sys.exit(1)


def _search_ids(store, text, user, app, model, time_expr, refusals, answered) -> list[str]:
    import datetime as dt

    from tracelens.query import FindQuery, find_results

    q = FindQuery(user=user or "", app=app or "", model=model or "", time=time_expr or "", text=text or "",
                  refusal_only=refusals)
    try:
        rs, _ = find_results(store, q, now=dt.datetime.now(dt.UTC))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    rows = rs.page(0, max(rs.total, 1)).to_dicts()
    return [r["trace_id"] for r in rows if not answered or r.get("refusal") not in ("partial", "full")]


@eval_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Store it under this name (default: the file's suite name).")
@click.option("--replace", is_flag=True, help="Overwrite a stored suite of that name.")
@click.option("--skip-unsupported", is_flag=True,
              help="promptfoo: leave out assertions tracelens cannot run (JavaScript, cost, ...) and tests with output "
                   "transforms, each listed, instead of rejecting the file.")
@store_option
@json_option
def eval_import(path, name, replace, skip_unsupported, store_path, as_json):
    """Check a suite file or a promptfoo config and keep it in the store."""
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.suite import check_name, read_suite_file, save_suite, suite_path

    store = open_eval_store(store_path)
    try:
        suite, notes = read_suite_file(path, skip_unsupported)
        if name:
            suite.name = check_name(name)
    except SuiteError as e:
        raise _suite_error(e) from None
    if suite_path(store.root, suite.name).exists() and not replace:
        raise click.ClickException(f"the store already has a suite {suite.name!r}: pass --replace, or --name NEW")
    for n in notes:
        diag(f"note: {visible(n)}")
    p = save_suite(store.root, suite)
    if as_json:
        emit_json({"suite": suite.name, "cases": len(suite.cases), "path": str(p), "notes": notes})
    else:
        echo(f"{suite.name}: {len(suite.cases)} case(s) ({p})")


@eval_group.command("list")
@store_option
@json_option
def eval_list(store_path, as_json):
    """Suites in the store, with their cases and runs."""
    from tracelens.evals.graders import SuiteError
    from tracelens.evals.runner import list_runs
    from tracelens.evals.suite import list_suites

    store = open_eval_store(store_path)
    try:
        suites = list_suites(store.root)
    except SuiteError as e:
        raise _suite_error(e) from None
    runs = list_runs(store.root)
    rows = []
    for s in suites:
        mine = [r for r in runs if r.suite == s.name]
        rows.append({"suite": s.name, "kind": s.kind, "cases": len(s.cases), "description": s.description,
                     "runs": len(mine),
                     "targets": sorted({r.target for r in mine}),
                     "last_run": mine[-1].started_at.isoformat() if mine else None})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        diag(f"no suites in {store.root} (create one with `tracelens eval add SUITE TRACE_ID... --expect ...`)")
        return
    for r in rows:
        last = f", last {r['last_run'][:16]}" if r["last_run"] else ""
        kind = f" [{r['kind']}]" if r["kind"] else ""
        echo(f"{r['suite']}{kind}: {r['cases']} case(s), {r['runs']} run(s){last}"
             + (f" on {', '.join(r['targets'])}" if r["targets"] else ""))


@eval_group.command("show")
@click.argument("suite")
@store_option
@json_option
def eval_show(suite, store_path, as_json):
    """The cases of SUITE (a stored name or a suite file) with their graders and tags."""
    _, s, _ = _open_suite(store_path, suite)
    if as_json:
        emit_json({"suite": s.name, "description": s.description, "cases": [c.to_dict() for c in s.cases]})
        return
    echo(f"{s.name}: {len(s.cases)} case(s)" + (f": {visible(s.description)}" if s.description else ""))
    for c in s.cases:
        graders = ", ".join(g.label for g in c.graders) or "no graders"
        tags = " ".join(f"{k}={v}" for k, v in sorted(c.tags.items()))
        prompt = _first_user_text(c.request)
        echo(f"  {visible(c.id)}  {c.model or '-'}  [{visible(graders)}]  {visible(tags)}")
        echo(f"      {one_line(prompt, 100)}")


def _first_user_text(request: dict) -> str:
    for m in request.get("messages") or []:
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(b.get("text", "") for b in c if isinstance(b, dict) and b.get("type") == "text")
    return ""


# ---------------------------------------------------------------------------------------------- run


def _describe(plan) -> None:
    from tracelens.evals.runner import RunPlan

    assert isinstance(plan, RunPlan)
    cost = plan.estimated_cost_usd
    money = "unknown" if cost is None else f"≈ ${cost:,.4f}"
    if cost is not None and plan.unpriced:
        money += f" + {plan.unpriced} case(s) at unknown price"
    errors = [p for p in plan.cases if p.error]
    diag(f"eval plan: suite {plan.suite.name}, target {plan.target.name}: {len(plan.sendable)} case(s) × "
         f"{plan.n} = {plan.requests} request(s), cost {money}")
    notes: dict[str, list[str]] = {}
    for p in plan.sendable:
        for note in p.notes:
            notes.setdefault(note, []).append(p.case.id)
    for note, ids in sorted(notes.items(), key=lambda kv: -len(kv[1]))[:8]:
        which = ids[0] if len(ids) == 1 else f"{len(ids)} cases"
        diag(f"  note ({which}): {visible(note)}")
    if len(notes) > 8:
        diag(f"  … {len(notes) - 8} more distinct note(s) (--dry-run --json lists them per case)")
    for p in errors[:5]:
        diag(f"  not sent {p.case.id}: {visible(p.error or '')}")
    if len(errors) > 5:
        diag(f"  … {len(errors) - 5} more case(s) not sent (counted as errors)")


def _confirm(plans: list, yes: bool, max_cost: float | None) -> None:
    n = sum(p.requests for p in plans)
    known = sum(p.estimated_cost_usd or 0.0 for p in plans)
    unpriced = sum(p.unpriced for p in plans) + sum(1 for p in plans if p.estimated_cost_usd is None and p.sendable)
    if max_cost is not None:
        if known > max_cost:
            raise click.ClickException(f"estimated cost ${known:,.4f} is above --max-cost ${max_cost:,.4f}; "
                                       "nothing sent")
        if unpriced:
            raise click.ClickException(f"--max-cost ${max_cost:,.4f} cannot be checked: {unpriced} case(s) have no "
                                       "known price (add one with --prices or $TRACELENS_PRICES); nothing sent")
    if yes:
        return
    if not is_interactive():
        raise click.ClickException(f"refusing to send {n} paid request(s) without confirmation: not an interactive "
                                   "terminal. Pass --yes (and --max-cost USD as a cap) to send, or --dry-run.")
    if not click.confirm(f"Send {n} request(s)?", default=False, err=True):
        raise click.ClickException("nothing sent")


@eval_group.command("run")
@click.argument("suite")
@click.option("--target", "targets", multiple=True, metavar="TARGET",
              help="pinned (default: each case's own snapshot), anthropic:MODEL[@URL], openai:MODEL[@URL], "
                   "compatible:MODEL@URL; '#ENV' at the end names the key's variable. Repeatable.")
@click.option("--n", "n", type=click.IntRange(1, 50), help="Repeats per case (default: the suite's n, else 1).")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (required when not interactive).")
@click.option("--max-cost", type=FiniteFloatRange(min=0), metavar="USD", help="Refuse to send above this estimate.")
@click.option("--dry-run", is_flag=True, help="Show the plan (and with --json the exact bodies); send nothing.")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--judge", metavar="MODEL", help="Turn on llm-judge graders with this pinned judge model (costs extra).")
@click.option("--label", help="A label stored with the run (e.g. the week).")
@click.option("--fail-on", type=click.Choice(["regression", "none"]), default="none", show_default=True,
              help="Exit 1 when a target regressed against its previous run (for CI).")
@store_option
@json_option
def eval_run(suite, targets, n, yes, max_cost, dry_run, concurrency, judge, label, fail_on, store_path, as_json):
    """Run SUITE on one or more targets, grade every answer, store the results and test for a regression."""
    from tracelens.evals.runner import plan_run
    from tracelens.evals.targets import parse_target

    store, s, path = _open_suite(store_path, suite)
    try:
        specs = [parse_target(t) for t in (targets or ("pinned",))]
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    plans = [plan_run(s, spec, n or s.n or 1) for spec in specs]
    for p in plans:
        _describe(p)
    _describe_judge(plans, judge)
    _describe_vectors(plans)
    if dry_run:
        if as_json:
            emit_json([{**p.to_dict(), "bodies": {c.case.id: c.wire for c in p.cases}} for p in plans])
        return
    if not s.cases:
        raise click.ClickException(f"suite {s.name!r} has no cases (add some with `tracelens eval add {s.name} ...`)")
    if not any(p.sendable for p in plans):
        raise click.ClickException("no case can be sent to any target (see the notes above)")
    _confirm(plans, yes, max_cost)
    runs, interrupted = send_plans(store, s, path, plans, _progress, concurrency=concurrency,
                                   judge=_judge(judge) if judge else None, label=label)
    from tracelens.evals.report import run_summaries

    summaries = run_summaries(store.root, s, [r.run_id for r in runs])
    if as_json:
        emit_json({"suite": s.name, "interrupted": interrupted, "runs": [x.to_dict() for x in summaries]})
    else:
        from tracelens.cli.common import out_console
        from tracelens.evals.render import print_summaries

        print_summaries(summaries, out_console())
    if interrupted:
        sys.exit(130)
    if fail_on == "regression" and any(x.regressed for x in summaries):
        sys.exit(1)


def _write(text: str, out: str | None) -> None:
    if out:
        from tracelens import atomic

        atomic.write_text(out, text)
        diag(f"wrote {out}")
    else:
        click.echo(text, nl=False)


@eval_group.command("runs")
@click.argument("suite")
@store_option
@json_option
def eval_runs(suite, store_path, as_json):
    """The stored runs of SUITE, oldest first."""
    from tracelens.evals.runner import list_runs

    store = open_eval_store(store_path)
    runs = list_runs(store.root, suite)
    if as_json:
        emit_json([r.to_dict() for r in runs])
        return
    if not runs:
        diag(f"suite {suite!r} has no stored runs (run `tracelens eval run {suite}`)")
        return
    for r in runs:
        graded = r.passed + r.failed
        rate = f"{r.passed / graded:.1%}" if graded else "-"
        echo(f"{r.run_id}  {r.started_at:%Y-%m-%d %H:%M}  {visible(r.target)}  n={r.n}  {r.cases} case(s)  "
             f"pass {rate}  errors {r.errors}" + (f"  [{visible(r.label)}]" if r.label else ""))


@eval_group.command("report")
@click.argument("suite")
@click.option("--format", "fmt", type=click.Choice(["terminal", "markdown", "html"]), default="terminal",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the Markdown/HTML here instead of stdout.")
@click.option("--fail-on", type=click.Choice(["regression", "none"]), default="none", show_default=True,
              help="Exit 1 when a target's latest run regressed against its previous run.")
@store_option
@json_option
def eval_report(suite, fmt, out, fail_on, store_path, as_json):
    """Latest run per target against its previous run, trends over runs, and a leaderboard across targets."""
    from tracelens.evals.report import EvalReportError, eval_report

    store, s, _ = _open_suite(store_path, suite)
    try:
        report = eval_report(store.root, s)
    except EvalReportError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(report.to_dict())
    elif fmt == "terminal":
        from tracelens.cli.common import out_console
        from tracelens.evals.render import print_report

        print_report(report, out_console())
    else:
        from tracelens.evals.render import render_report

        _write(render_report(report, fmt), out)
    if fail_on == "regression" and report.regressed:
        sys.exit(1)


def _side(ctx, param, value: str) -> str:
    """A compare side is a snapshot, a target or a run id: one printable word."""
    if not value or not value.isprintable() or any(c.isspace() for c in value):
        raise click.BadParameter(f"{value!r} is not a model, target or run id")
    return value


@eval_group.command("compare")
@click.argument("suite")
@click.option("--baseline", required=True, metavar="TARGET", callback=_side, help="The model you run today (a snapshot id, a target "
              "such as anthropic:MODEL or openai:MODEL, or a run id).")
@click.option("--candidate", required=True, metavar="TARGET", callback=_side, help="The model you consider moving to.")
@click.option("--run-missing", is_flag=True, help="Run the suite on a side that has no run yet (asks first).")
@click.option("--n", "n", type=click.IntRange(1, 50), default=1, show_default=True, help="Repeats for --run-missing.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (with --run-missing).")
@click.option("--max-cost", type=FiniteFloatRange(min=0), metavar="USD", help="Cap for --run-missing.")
@click.option("--format", "fmt", type=click.Choice(["terminal", "markdown", "html"]), default="terminal",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the Markdown/HTML here instead of stdout.")
@click.option("--fail-on", type=click.Choice(["regression", "none"]), default="none", show_default=True,
              help="Exit 1 unless the verdict is safe or improvement.")
@store_option
@json_option
def eval_compare(suite, baseline, candidate, run_missing, n, yes, max_cost, fmt, out, fail_on, store_path, as_json):
    """The upgrade verdict: BASELINE against CANDIDATE on the suite's cases (safe / regressions / not enough cases)."""
    from tracelens.evals.report import EvalReportError, find_run, upgrade_verdict
    from tracelens.evals.runner import list_runs, load_results

    store, s, path = _open_suite(store_path, suite)
    if run_missing:
        df = load_results(store.root, s.name)
        runs = list_runs(store.root, s.name, df)
        missing = [side for side in (baseline, candidate) if find_run(runs, df, side) is None]
        if missing:
            _run_targets(store, s, path, [side if ":" in side else f"anthropic:{side}" for side in missing], n, yes,
                         max_cost)
    try:
        v = upgrade_verdict(store.root, s, baseline, candidate)
    except EvalReportError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(v.to_dict())
    elif fmt == "terminal":
        from tracelens.cli.common import out_console
        from tracelens.evals.render import print_verdict

        print_verdict(v, out_console())
    else:
        from tracelens.evals.render import render_verdict

        _write(render_verdict(v, fmt), out)
    if fail_on == "regression" and v.verdict not in ("safe", "improvement"):
        sys.exit(1)


def _run_targets(store, s, path, targets: list[str], n: int, yes: bool, max_cost: float | None) -> None:
    from tracelens.evals.runner import plan_run
    from tracelens.evals.targets import parse_target

    try:
        plans = [plan_run(s, parse_target(t), n) for t in targets]
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    for p in plans:
        _describe(p)
    _confirm(plans, yes, max_cost)
    runs, _ = send_plans(store, s, path, plans)
    for run in runs:
        diag(f"ran {s.name} on {run.target}: run {run.run_id}, {run.count('pass')} pass, {run.count('fail')} "
             f"fail, {run.count('error')} error")


def _progress(plan) -> Callable:
    """Progress of one target's run on stderr: each error, and the tallies at every quarter."""
    total = len(plan.cases) * plan.n
    done = {"n": 0, "pass": 0, "fail": 0, "error": 0}

    def on_result(r) -> None:
        done["n"] += 1
        done[r.outcome] += 1
        if r.outcome == "error":
            diag(f"  error {r.case_id}: {one_line(r.response.error, 100)}")
        if done["n"] == total or done["n"] % max(1, total // 4) == 0:
            diag(f"  [{done['n']}/{total}] {done['pass']} pass, {done['fail']} fail, {done['error']} error")

    return on_result


def send_plans(store, suite, path, plans: list, progress: Callable | None = None, **execute_options) -> tuple[list, bool]:
    """Send each planned target in turn, storing every run: (runs, interrupted). One target's stop ends the
    session (its finished answers are stored); a missing key is a usage-level error before anything is sent.

    The one sending loop of `eval run`, `eval compare --run-missing` and `canary run`; ``progress(plan)``
    gives the per-result callback of that plan's run.
    """
    from tracelens.evals.runner import EvalError, execute, write_results

    runs = []
    for p in plans:
        try:
            run = execute(p, on_result=progress(p) if progress else None,
                          suite_dir=path.parent if path else None, **execute_options)
        except EvalError as e:
            raise click.ClickException(str(e)) from None
        write_results(store.root, run, suite)
        runs.append(run)
        if run.interrupted:
            return runs, True
    return runs, False


def _describe_vectors(plans: list) -> None:
    """Say before sending when similarity graders cannot run here (no embedding model installed)."""
    from tracelens.extras import has_extra, install_command

    uses = {c.case.id for p in plans for c in p.sendable for g in c.case.graders if g.type in ("similar", "behaves-like")}
    if uses and not has_extra("embed"):
        diag(f"  note: {len(uses)} case(s) grade with similar/behaves-like, which need an embedding model; without "
             f"it those graders report an error ({install_command('embed')})")


def _describe_judge(plans: list, judge: str | None) -> None:
    """How many llm-judge calls the run makes, to which model, and roughly what they cost (not in the estimate)."""
    calls = sum(p.n * sum(1 for g in c.case.graders if g.type == "llm-judge") for p in plans for c in p.sendable)
    if not calls:
        return
    if not judge:
        diag(f"  note: {calls} llm-judge grading(s) will report 'llm-judge is off' (turn them on with --judge "
             "SNAPSHOT; each is one more paid request)")
        return
    from tracelens.replay.request import is_snapshot

    if not is_snapshot(judge):
        raise click.UsageError(f"--judge {judge!r} is not a pinned snapshot: a judge that moves under an alias makes "
                               "runs incomparable; name a dated snapshot (e.g. claude-haiku-4-5-20251001)")
    from tracelens.replay.pricing import load_prices

    hit = load_prices().lookup(judge)
    # a judge call reads the rubric, the prompt and the answer (~600 tokens) and writes a short verdict (~80)
    each = None if hit is None else (600 * hit[1].input + 80 * hit[1].output) / 1_000_000
    cost = "unknown price" if each is None else f"≈ ${each * calls:,.4f}"
    diag(f"  llm-judge: {calls} call(s) to {judge}, {cost} on top of the estimate above (the run's cost counts them)")


def _judge(model: str):
    from tracelens.evals.graders import make_anthropic_judge

    return make_anthropic_judge(model)


commands = [eval_group]
