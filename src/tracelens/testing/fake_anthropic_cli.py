"""``python -m tracelens.testing.fake_anthropic``: the fake Messages API as a standalone server.

Serves the built-in snapshots plus ``--model``/``--models-file`` ids and every
model a store's traces name (``--store``, with the aliases they resolved
through), scripted by ``--script`` (one-shot replies in order) and
``--rules`` (persistent replies per prompt or model; ``read_rules``). Prints
its base URL on stdout, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from tracelens.testing.fake_anthropic import (
    DATED_ID,
    DEFAULT_ALIASES,
    DEFAULT_MODELS,
    FakeAnthropicServer,
    Reply,
    Rule,
)
from tracelens.testing.fake_anthropic import __doc__ as _SERVER_DOC


def _reply_from_dict(d: dict[str, Any]) -> Reply:
    return Reply(**d)


def read_models_file(path: str) -> list[str]:
    """Model ids from ``path``: a JSON array of ids, or one id per line (blank lines and ``#`` comments ignored)."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        ids = json.loads(text)
        if not all(isinstance(m, str) and m for m in ids):
            raise ValueError(f"{path}: expected a JSON array of model id strings")
        return ids
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def models_in_store(store: str) -> tuple[set[str], dict[str, str]]:
    """Every model a store's traces name, and the aliases they resolved through.

    Returned snapshots (and requested ids that carry a date) are served as
    models; a requested id that was answered by another id is an alias of
    the snapshot that answered it most recently, so a replay of any stored
    trace finds its model here instead of a 404.
    """
    # The store (pyarrow/polars) only when asked: the server itself needs the standard library alone.
    import polars as pl

    from tracelens.storeopen import open_store

    frame = (
        open_store(store).scan()
        .select("timestamp", "model_requested", "model_returned")
        .collect()
    )
    models = {m for m in frame["model_returned"].drop_nulls().unique().to_list() if m}
    models |= {m for m in frame["model_requested"].drop_nulls().unique().to_list() if m and DATED_ID.search(m)}
    aliases: dict[str, str] = {}
    pairs = (
        frame.drop_nulls(["model_requested", "model_returned"])
        .filter(pl.col("model_requested") != pl.col("model_returned"))
        .sort("timestamp")
    )
    for requested, returned in pairs.select("model_requested", "model_returned").iter_rows():
        if not DATED_ID.search(requested):
            aliases[requested] = returned  # the latest resolution wins
    return models, aliases


def read_rules(path: str) -> list[Rule]:
    """Persistent replies from a JSON file: a list of objects, each a match and a reply.

    Match keys: ``contains`` (a substring of the last user text), ``model``
    (requested or resolved id) and ``times`` (uses, unlimited when absent).
    ``"refusal": true`` makes the reply a refusal (``text``, ``category``,
    ``explanation`` optional); otherwise the other keys are ``Reply`` fields
    (``text``, ``stop_reason``, ``status``, ``delay``, ...). Rules are tried
    in file order; the first that matches answers.
    """
    with open(path, encoding="utf-8") as fh:
        items = json.load(fh)
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON array of rule objects")
    rules = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: rule {n}: expected an object")
        fields = dict(item)
        match = {k: fields.pop(k) for k in ("contains", "model", "times") if k in fields}
        try:
            if fields.pop("refusal", False):
                reply = Reply.refusal(**fields)
            else:
                reply = Reply(**fields)
        except TypeError as e:
            raise ValueError(f"{path}: rule {n}: {e}") from None
        rules.append(Rule(reply, **match))
    return rules


def server_for(store: str | None = None, models: list[str] | tuple[str, ...] = (), rules: str | None = None,
               **kw: Any) -> FakeAnthropicServer:
    """A server (not started) for the built-in snapshots, ``models``, every model ``store`` names (with the aliases
    its traces resolved through) and the replies of the ``rules`` file; ``kw`` goes to ``FakeAnthropicServer``.
    OSError or ValueError for a file or store that cannot be read."""
    served = set(DEFAULT_MODELS) | set(models)
    aliases = dict(DEFAULT_ALIASES)
    if store:
        stored, resolved = models_in_store(store)
        served |= stored
        aliases.update(resolved)
    server = FakeAnthropicServer(models=sorted(served), aliases=aliases, **kw)
    if rules:
        server.add_rules(read_rules(rules))
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; prints the base URL on stdout. Returns the exit status (2 for a bad option or file)."""
    ap = argparse.ArgumentParser(prog="python -m tracelens.testing.fake_anthropic", description=_SERVER_DOC.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", action="append", default=[], metavar="ID",
                    help="serve this model id too (repeatable); the built-in snapshots are always served")
    ap.add_argument("--models-file", metavar="FILE", help="serve the model ids in FILE (JSON array or one per line)")
    ap.add_argument("--store", metavar="PATH",
                    help="serve every model the store's traces name, with the aliases they resolved through")
    ap.add_argument("--rules", metavar="FILE",
                    help="JSON file: persistent replies chosen per prompt/model (see read_rules), e.g. to refuse")
    ap.add_argument("--script", help="JSON file: a list of Reply fields objects, served in order before the rules")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        models = list(args.model) + (read_models_file(args.models_file) if args.models_file else [])
        server = server_for(args.store, models, args.rules, host=args.host, port=args.port, seed=args.seed,
                            verbose=args.verbose)
    except (OSError, ValueError) as e:
        ap.error(str(e))
    if args.script:
        with open(args.script, encoding="utf-8") as fh:
            server.enqueue(*(_reply_from_dict(d) for d in json.load(fh)))
    server.start()
    print(server.base_url, flush=True)
    print(f"fake Anthropic Messages API listening on {server.base_url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
