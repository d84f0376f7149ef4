"""Embedding commands: `embed`, `cluster`, `clusters`, `similar`."""

from __future__ import annotations

import sys
import time

import click

from tracelens.cli.common import (
    SEED,
    cell,
    diag,
    echo,
    emit_json,
    engine_options,
    json_option,
    open_store,
    out_console,
    store_option,
    when_option,
)
from tracelens.textsafe import one_line, visible


def model_option(f):
    """``--model M``: the embedding model (default: the bundled all-MiniLM-L6-v2)."""
    return click.option(
        "--model", default=None, metavar="M",
        help="Embedding model: all-MiniLM-L6-v2 (default, bundled), any sentence-transformers name or local "
             "directory, or 'fake' (test/dev only).",
    )(f)


class _Progress:
    """Progress on stderr: a rich bar on a TTY, a plain line every ~10 s otherwise (never on stdout)."""

    def __init__(self, enabled: bool):
        self.tty = enabled and sys.stderr.isatty()
        self.enabled = enabled
        self._bar = None
        self._task = None
        self._last = 0.0

    def __call__(self, done: int, total: int, seconds: float) -> None:
        if not self.enabled:
            return
        rate = done / seconds if seconds > 0 else 0.0
        if self.tty:
            if self._bar is None:
                from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

                from tracelens.cli.common import err_console

                self._bar = Progress(TextColumn("embedding"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                                     TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err_console(),
                                     transient=True)
                self._bar.start()
                self._task = self._bar.add_task("embed", total=total, rate="")
            self._bar.update(self._task, completed=done, rate=f"{rate:,.0f} texts/s")
        elif time.monotonic() - self._last >= 10 or done == total:
            self._last = time.monotonic()
            diag(f"embedded {done:,}/{total:,} texts ({rate:,.0f} texts/s)")

    def close(self) -> None:
        """Stop the progress bar, if one is shown."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@click.command()
@model_option
@when_option("since")
@when_option("until", end=True)
@click.option("--sample", "sample", type=click.IntRange(min=1), help="Only N traces per day (stratified, deterministic).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of --sample.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True)
@click.option("--batch-size", default=None, type=click.IntRange(min=1), help="Texts per encoder batch [default: 64].")
@click.option("--fields", default="prompt,response,system", show_default=True,
              help="Which texts to embed: any of prompt, response, system.")
@click.option("--backend", type=click.Choice(["torch", "openvino", "pipeline", "auto", "onnx"]), default="torch",
              show_default=True,
              help="What runs the model: torch (sentence-transformers), openvino (CPU, about 3x torch; needs the "
                   "'openvino' extra), pipeline (background tokeniser, float16 on CUDA), auto (the fastest of "
                   "these available). Vectors agree to cosine 0.999+, but not bit for bit.")
@click.option("--no-progress", is_flag=True, help="No progress on stderr.")
@engine_options
@store_option
@json_option
def embed(model, since, until, sample, seed, device, batch_size, fields, backend, no_progress, engine, store_path,
          as_json):
    """Embed prompt, response and system-prompt texts that have no vector yet.

    Each distinct text is embedded once (keyed by its hash) and stored under
    STORE/embeddings/<model>/ (a Delta table there on an object-storage
    store). Work is committed every 4,096 texts: an
    interrupted run keeps what it finished, and running again continues; a
    run with nothing new does nothing.

    \b
    Examples:
      tracelens embed
      tracelens embed --since 7d --sample 2000 --json
      tracelens embed --engine ray --ray-address auto
    """
    from tracelens.embed.models import DEFAULT_BATCH_SIZE, require_embedder
    from tracelens.embed.run import EmbedResult
    from tracelens.embed.search import FIELDS

    require_embedder(model, "tracelens embed")

    cols = []
    for f in (x.strip() for x in fields.split(",") if x.strip()):
        if f not in FIELDS:
            raise click.BadParameter(f"unknown field {f!r}; use prompt, response, system", param_hint="--fields")
        cols.append(FIELDS[f])
    store = open_store(store_path, url_ok=True, write=True)
    progress = _Progress(not no_progress)
    res = EmbedResult(model_id="", slug="", columns=cols)
    try:
        res = engine.embed(store, model, since=since, until=until, sample_per_day=sample, seed=seed, columns=cols,
                           device=device, batch_size=batch_size or DEFAULT_BATCH_SIZE, backend=backend,
                           progress=progress, result=res)
    except KeyboardInterrupt:
        progress.close()
        diag(f"interrupted: {res.embedded:,} texts were embedded and kept; run `tracelens embed` again to continue")
        sys.exit(130)
    except (RuntimeError, ValueError) as e:
        progress.close()
        raise click.ClickException(str(e)) from None
    finally:
        engine.close()
    progress.close()
    if as_json:
        emit_json(res.to_dict())
        return
    rate = f", {res.texts_per_s:,.0f} texts/s on {res.backend}" if res.texts_per_s else ""
    skipped = f"{res.skipped_days:,} day(s) already complete; " if res.skipped_days else ""
    echo(
        f"{res.model_id}: {res.traces:,} traces; {skipped}{res.texts:,} texts read, {res.distinct:,} distinct, "
        f"{res.already:,} already embedded; {res.embedded:,} embedded now{rate} ({res.seconds:.1f} s)"
    )


@click.command()
@model_option
@when_option("since")
@when_option("until", end=True)
@click.option("--k", "k", type=click.IntRange(min=1), help="Number of clusters (kmeans) [default: chosen by silhouette].")
@click.option("--algorithm", type=click.Choice(["kmeans", "hdbscan"]), default="kmeans", show_default=True)
@click.option("--refit", is_flag=True, help="Fit a new model even if one is current (cluster ids may change).")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the clustering.")
@store_option
@json_option
def cluster(model, since, until, k, algorithm, refit, seed, store_path, as_json):
    """Fit topic clusters on prompt embeddings and assign every trace.

    The reference window defaults to the last 4 weeks of data. The fitted
    model is saved in the store and reused by later runs, so cluster ids stay
    stable week to week until --refit. Prompts without a vector are embedded
    first.
    """
    from tracelens.cluster import ClusterError, assign_store, current_model, fit_clusters

    store = open_store(store_path, url_ok=True, write=True)
    try:
        # every trace gets assigned, so every prompt needs a vector: embed them first, with progress
        _embed_prompts(store, model)
        cm = None if refit else current_model(store, model)
        fitted = cm is None
        if fitted:
            cm = fit_clusters(store, since=since, until=until, k=k, algorithm=algorithm, model=model, seed=seed)
        elif k is not None or since is not None or until is not None or algorithm != cm.algorithm:
            diag(f"reusing cluster model {cm.id} (use --refit to fit a new one with these options)")
        counts = assign_store(store, model=model, cluster_model=cm)
    except (ClusterError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json({"fitted": fitted, "model": cm.to_dict(), "assignment": counts})
        return
    con = out_console()
    verb = "fitted" if fitted else "reused"
    con.print(cell(f"{verb} {cm.id}: {cm.algorithm}, k={cm.k}, {cm.n_fit:,} distinct prompts "
                   f"({cm.window_since} .. {cm.window_until}); k selection: {cm.k_selection.get('method')}"))
    con.print(cell(f"assigned {counts['distinct_prompts']:,} distinct prompts of {counts['traces']:,} traces "
                   f"({counts['newly_assigned']:,} new)"))
    _cluster_table(con, [(c.cluster_id, c.label, c.traces, c.examples) for c in cm.clusters], "traces in window")


def _embed_prompts(store, model, since=None, until=None) -> None:
    """Embed prompts that have no vector yet (with progress on stderr); a no-op when all have one."""
    from tracelens.embed.run import embed_store

    progress = _Progress(True)
    try:
        r = embed_store(store, model, since=since, until=until, columns=["prompt_text"], progress=progress)
    except KeyboardInterrupt:
        diag("interrupted: prompts embedded so far are kept")
        sys.exit(130)
    finally:
        progress.close()
    if r.embedded:
        diag(f"embedded {r.embedded:,} prompts first ({r.seconds:.1f} s)")


def _cluster_table(con, rows, count_title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table("id", "label", count_title, "example", box=None)
    for cid, label, n, examples in rows:
        ex = examples[0]["text"] if examples else ""
        t.add_row(str(cid), Text(visible(label)), f"{n:,}", Text(one_line(ex, 60)))
    con.print(t)


@click.command(name="clusters")
@model_option
@when_option("since")
@when_option("until", end=True)
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 520), help="Weeks shown when no window is given.")
@click.option("--no-embed", is_flag=True, help="Do not embed prompts that have no vector (they count as unassigned).")
@store_option
@json_option
def clusters_cmd(model, since, until, weeks, no_embed, store_path, as_json):
    """Clusters with label, traces and refusal rate per week, and example prompts."""
    from tracelens.cluster import ClusterError, cluster_summary, summary_window

    store = open_store(store_path, url_ok=True, write=True)
    try:
        if not no_embed:
            _embed_prompts(store, model, *summary_window(store, since, until, weeks))
        s = cluster_summary(store, since=since, until=until, weeks=weeks, model=model, embed_missing=not no_embed)
    except (ClusterError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        emit_json(s.to_dict())
        return
    from rich.table import Table
    from rich.text import Text

    con = out_console()
    con.print(cell(f"cluster model {s.cluster_model_id} ({s.algorithm}, k={s.k}, {s.embedding_model_id}); "
                   "per week (starting Monday): traces and refusal rate"))
    # fixed widths: rich would otherwise collapse whole columns on a narrow terminal
    cells = {c.cluster_id: [f"{w.traces:,} {'-' if w.refusal_rate is None else f'{w.refusal_rate:.0%}'}"
                            for w in c.weeks] for c in s.clusters}
    week_w = max([len(w[5:]) for w in s.weeks] + [len(x) for v in cells.values() for x in v] + [1])
    label_w = min(32, max([len(c.label) for c in s.clusters] + [5]))
    id_w = max([len(str(c.cluster_id)) for c in s.clusters] + [2])
    example_w = con.width - (id_w + label_w + week_w * len(s.weeks)) - 2 * (len(s.weeks) + 3)
    t = Table(box=None)
    t.add_column("id", justify="right", width=id_w, no_wrap=True)
    t.add_column("label", width=label_w, no_wrap=True, overflow="ellipsis")
    for w in s.weeks:
        t.add_column(w[5:], justify="right", no_wrap=True, width=week_w)
    if example_w >= 12:
        t.add_column("example", width=min(example_w, 60), no_wrap=True, overflow="ellipsis")
    for c in s.clusters:
        row = [str(c.cluster_id), Text(visible(c.label)), *cells[c.cluster_id]]
        if example_w >= 12:
            row.append(Text(one_line(c.examples[0]["text"], 60) if c.examples else ""))
        t.add_row(*row)
    con.print(t)
    if s.unassigned:
        diag(f"{s.unassigned:,} traces have no prompt text or no embedding and are not counted")


@click.command()
@click.argument("trace_id", required=False)
@click.option("--like", "like", metavar="TRACE_ID", help="Find traces similar to this trace.")
@click.option("--semantic", "text", metavar="TEXT", help="Find traces similar to this free text.")
@click.option("--field", type=click.Choice(["prompt", "response", "system"]), default="prompt", show_default=True,
              help="Which text of the traces to compare.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Number of hits.")
@click.option("--all-copies", is_flag=True, help="List every trace, not one per distinct text.")
@model_option
@when_option("since")
@when_option("until", end=True)
@store_option
@json_option
@click.pass_context
def similar(ctx, trace_id, like, text, field, k, all_copies, model, since, until, store_path, as_json):
    """Traces semantically closest to a trace (TRACE_ID or --like) or a free text (--semantic).

    Only texts that have embeddings are searched (run `tracelens embed`).
    With TRACE_ID it lists what the TUI's Related tab shows for that trace:
    the nearest prompts by the stored vectors within 28 days either side of
    it (--since/--until change either end), with their refusal labels.

    \b
    Examples:
      tracelens similar 3f2a91 --json
      tracelens similar --semantic "refund was charged twice" --since 14d
      tracelens similar --like 3f2a91 --field response --json
    """
    if trace_id is not None:
        _similar_to_trace(ctx, trace_id, like, text, k, since, until, store_path, as_json)
        return
    from tracelens.embed.search import search

    if (like is None) == (text is None):
        raise click.UsageError("give exactly one of --like TRACE_ID or --semantic TEXT")
    if text is not None:  # --like compares stored vectors; a free text must be embedded first
        from tracelens.embed.models import require_embedder

        require_embedder(model, "tracelens similar --semantic")
    store = open_store(store_path, url_ok=True)
    try:
        r = search(store, text, like=like, k=k, since=since, until=until, model=model, field=field,
                   distinct=not all_copies)
    except (ValueError, RuntimeError) as e:
        raise click.ClickException(str(e)) from None
    rows = r.hits.to_dicts()
    if as_json:
        emit_json({"hits": rows, "window_texts": r.window_texts, "missing": r.missing})
    else:
        from rich.table import Table
        from rich.text import Text

        t = Table("score", "time (UTC)", "trace", "copies", field, box=None)
        for h in rows:
            t.add_row(f"{h['score']:.3f}", f"{h['timestamp']:%Y-%m-%d %H:%M}", cell(h["trace_id"][:20]),
                      str(h["copies"]), Text(one_line(h["text"], 70)))
        out_console().print(t)
    if r.missing:
        diag(f"{r.missing:,} of {r.window_texts:,} distinct texts in the window have no embedding "
             f"(run `tracelens embed`)")


def _similar_to_trace(ctx, trace_id, like, text, k, since, until, store_path, as_json) -> None:
    """`similar TRACE_ID`: ``tracelens.context.similar_traces``, the function behind the TUI's Related tab."""
    from click.core import ParameterSource

    from tracelens.context import similar_traces
    from tracelens.extras import NotAvailable

    if like is not None or text is not None:
        raise click.UsageError("give TRACE_ID, --like TRACE_ID or --semantic TEXT, not several")
    for name in ("field", "all_copies", "model"):
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
            opt = "--" + name.replace("_", "-")
            raise click.UsageError(f"{opt} applies to --like and --semantic; TRACE_ID compares prompts by the "
                                   "store's vectors, as the TUI does")
    store = open_store(store_path, url_ok=True)
    trace = store.get(trace_id)
    if trace is None:
        raise click.ClickException(f"no trace {trace_id!r} in {store_path}")
    try:
        hits = similar_traces(store, trace, k=k, since=since, until=until)
    except NotAvailable as e:
        raise click.ClickException(str(e)) from None
    rows = hits.to_dicts()
    if as_json:
        emit_json({"trace_id": trace["trace_id"], "hits": rows})
        return
    from rich.table import Table
    from rich.text import Text

    t = Table("similarity", "time (UTC)", "trace", "refusal", "prompt", box=None)
    for h in rows:
        t.add_row(f"{h['similarity']:.3f}", f"{h['timestamp']:%Y-%m-%d %H:%M}", cell(h["trace_id"][:20]),
                  cell(h["refusal"] or "-"), Text(one_line(h["prompt_text"], 70)))
    out_console().print(t)
    if not rows:
        diag("no similar trace in the window")


commands = [embed, cluster, clusters_cmd, similar]
