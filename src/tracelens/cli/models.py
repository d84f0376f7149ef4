"""`tracelens models`: the model catalog that decides which model ids are aliases.

``tracelens models`` lists the catalog (shipped data merged with the store's
override), ``models show ID`` explains how one id is classified and why, and
``models refresh`` asks the Anthropic Models API what it serves today and
saves the answer as the store's override. Thin CLI over
``tracelens.modelcatalog``; see docs/models.md.
Exit codes: 0 done, 1 refresh failed or had no API key (nothing changed),
2 usage.
"""

from __future__ import annotations

import click

from tracelens.cli.common import (
    FiniteFloatRange,
    diag,
    echo,
    emit_json,
    json_option,
    open_store,
    store_option,
)
from tracelens.modelcatalog import ENTRY_KINDS, ModelCatalog, load_catalog
from tracelens.textsafe import visible

_KEY_ENV = "ANTHROPIC_API_KEY"


def _catalog(store_path: str) -> ModelCatalog:
    """The store's catalog when the store exists, else the shipped data alone (listing needs no store)."""
    from pathlib import Path

    from tracelens.store import MARKER

    if (Path(store_path) / MARKER).exists():
        return load_catalog(store_path)
    return load_catalog(None)


def _describe_sources(cat: ModelCatalog) -> None:
    line = f"shipped model data as of {cat.as_of}"
    if cat.override_path:
        when = cat.override_fetched_at or f"as of {cat.override_as_of}"
        line += f"; store override {cat.override_path} ({when}) wins"
    diag(line)


def _d(v) -> str:
    return v.isoformat() if v else "-"


@click.group(invoke_without_command=True)
@click.option("--provider", type=click.Choice(["anthropic", "bedrock", "vertex", "openai", "gemini"]),
              help="Only this provider's ids.")
@click.option("--kind", type=click.Choice(list(ENTRY_KINDS)), help="Only snapshots, aliases or fixed ids.")
@store_option
@json_option
@click.pass_context
def models(ctx, provider, kind, store_path, as_json):
    """List the model catalog: which ids are dated snapshots, aliases or fixed models.

    \b
    The shipped data is merged with the store's override (written by
    `tracelens models refresh`), which wins. Ids not listed are classified
    by their shape; `tracelens models show ID` says how and why.

    \b
    Examples:
      tracelens models --provider anthropic --kind alias
      tracelens models show claude-sonnet-4-5
      tracelens models refresh            # needs $ANTHROPIC_API_KEY
    """
    if ctx.invoked_subcommand is not None:
        return
    cat = _catalog(store_path)
    for w in cat.warnings:
        diag(f"warning: {w}")
    rows = []
    for e, src in cat.entries(provider, kind):
        d = e.to_dict()
        rows.append({"provider": e.provider, **d, "resolves_to": list(e.resolves_to), "source": src})
    if as_json:
        emit_json(rows)
        return
    _describe_sources(cat)
    header = ("provider", "id", "kind", "family", "released", "deprecated", "retired", "resolves to", "source")
    table = [header]
    for r in rows:
        table.append((
            r["provider"], r["id"], r["kind"], r["family"], r["released"] or "-", r["deprecated"] or "-",
            r["retired"] or "-", ", ".join(r["resolves_to"]) or "-", r["source"],
        ))  # fmt: skip
    widths = [max(len(visible(str(row[i]))) for row in table) for i in range(len(header))]
    for row in table:
        echo("  ".join(visible(str(v)).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@models.command("show")
@click.argument("model_id")
@click.option("--reported", is_flag=True,
              help="Treat the id as one the provider reported back (a trace's model_returned).")
@store_option
@json_option
def models_show(model_id, reported, store_path, as_json):
    """Explain how MODEL_ID is classified (snapshot, alias, fixed or unknown) and why.

    \b
    Bedrock ids (with or without a us./eu./apac./global. inference-profile
    prefix or an ARN), Vertex ids (claude-...@YYYYMMDD, resource paths) and
    Gemini's models/ prefix are looked up as the catalog lists them.
    """
    cat = _catalog(store_path)
    for w in cat.warnings:
        diag(f"warning: {w}")
    c = cat.classify(model_id, reported=reported)
    if as_json:
        emit_json(c.to_dict())
        return
    pinned = "pinned" if c.pinned else "not pinned"
    echo(f"{visible(c.model)}: {c.kind} ({pinned}; decided by the {c.source})")
    echo(f"  why: {visible(c.reason)}")
    echo(f"  provider: {c.provider or '-'}  family: {visible(c.family or '-')}")
    if c.resolves_to:
        echo(f"  resolves to: {', '.join(c.resolves_to)}")
    echo(f"  released: {_d(c.released)}  deprecated: {_d(c.deprecated)}  retired: {_d(c.retired)}")


@models.command("refresh")
@click.option("--base-url", help="API base URL (default: $ANTHROPIC_BASE_URL, else the public API).")
@click.option(
    "--api-key-env",
    default=_KEY_ENV,
    show_default=True,
    help="Name of the environment variable holding the API key (the key itself is never printed or stored).",
)
@click.option("--timeout", default=30.0, show_default=True, type=FiniteFloatRange(min=0.1), help="Seconds per request.")
@store_option
@json_option
def models_refresh(base_url, api_key_env, timeout, store_path, as_json):
    """Ask the Anthropic Models API which models and aliases exist today; save it as the store's override.

    \b
    Lists every model (all pages), then resolves each alias the catalog knows
    and each undated model id the store's traces requested (GET
    /v1/models/{id} answers an alias with the snapshot it points at today).
    The answer is written atomically to STORE/models.json with the time it
    was fetched; it wins over the shipped data from then on. Without a key,
    nothing is fetched or changed (exit 1).
    """
    from tracelens.modelrefresh import MissingKeyError, RefreshError, refresh_catalog

    store = open_store(store_path, needs="the model catalog override file of a local store directory")
    try:
        result = refresh_catalog(store.root, api_key_env=api_key_env, base_url=base_url, timeout=timeout)
    except MissingKeyError as e:
        raise click.ClickException(str(e)) from None
    except RefreshError as e:
        raise click.ClickException(visible(str(e))) from None
    if as_json:
        emit_json(result.to_dict())
        return
    echo(f"{len(result.listed)} model(s) listed by {result.base_url} at {result.fetched_at}")
    for alias, target in sorted(result.aliases.items()):
        echo(f"  {alias} -> {target}")
    for m in result.fixed:
        echo(f"  {m}: a model in its own right (fixed)")
    if result.not_found:
        echo(f"  unknown to the API (retired or never served): {', '.join(result.not_found)}")
    diag(f"saved to {result.path}")


commands = [models]
