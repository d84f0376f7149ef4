"""Refresh the model catalog from the Anthropic Models API and save it as the store's override.

Contract: ``refresh_catalog(store_root, ...) -> RefreshResult`` lists every
model the API serves (all pages), resolves each alias the catalog knows and
each undated id the store's traces requested (``GET /v1/models/{id}``), and
writes ``STORE/models.json`` atomically under the store lock
(``write_override``); ``tracelens.modelcatalog`` then prefers that file to the
shipped data. It raises ``MissingKeyError`` before any request when the key is
missing and ``RefreshError`` on an API failure; in both cases nothing is
written. The key is handed to the SDK only and never appears in the result,
the file or an error message.

Why a module of its own: the catalog is data every analysis reads; this is
the one place that touches the network and the store, so the pure layers can
import the catalog without either.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelens import atomic
from tracelens.modelcatalog import ModelCatalog, ModelEntry, document, load_catalog, override_path, parse_document
from tracelens.modelid import first_party_id, parse_model_id
from tracelens.store import store_lock


class RefreshError(Exception):
    """``refresh_catalog`` could not finish; nothing was written (the message is user-facing)."""


class MissingKeyError(RefreshError):
    """No API key in the environment variable named; nothing was fetched."""


def write_override(store_root: str | os.PathLike, doc: dict) -> Path:
    """Write ``doc`` as the store's override atomically (temp file, fsync, rename, fsync of the directory)."""
    parse_document(doc)  # never write what the reader would reject
    path = override_path(store_root)
    # A crash before the rename leaves the old override (or none); after it, the new one.
    with store_lock(store_root):
        return atomic.write_json(path, doc)


# --------------------------------------------------------------------------- refresh from the Models API


@dataclass
class RefreshResult:
    """What ``refresh_catalog`` learned and where it saved it."""

    path: str
    fetched_at: str
    base_url: str
    listed: list[str] = field(default_factory=list)  # ids from GET /v1/models, as listed
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> the id it resolves to today
    fixed: list[str] = field(default_factory=list)  # undated ids the API confirmed as models in their own right
    not_found: list[str] = field(default_factory=list)  # ids asked about that the API does not know

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "path": self.path,
            "fetched_at": self.fetched_at,
            "base_url": self.base_url,
            "listed": list(self.listed),
            "aliases": dict(self.aliases),
            "fixed": list(self.fixed),
            "not_found": list(self.not_found),
        }


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment (it is recorded in the store)."""
    from urllib.parse import urlsplit, urlunsplit

    s = urlsplit(url)
    host = s.hostname or ""
    if s.port:
        host = f"{host}:{s.port}"
    return urlunsplit((s.scheme, host, s.path, "", ""))


def undated_requested_ids(store_root: str | os.PathLike) -> list[str]:
    """Undated Claude ids the store's traces requested (first-party spelling), sorted."""
    import polars as pl

    from tracelens.storeopen import open_store

    lf = open_store(store_root).scan().select(pl.col("model_requested").drop_nulls().unique())
    out = set()
    for m in lf.collect().get_column("model_requested").to_list():
        fp = first_party_id(m)
        p = parse_model_id(fp)
        if fp and p is not None and p.snapshot is None:
            out.add(fp)
    return sorted(out)


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        d = value.date()
    elif isinstance(value, str) and value:
        try:
            d = dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    else:
        return None
    return None if d.year <= 1970 else d  # the API sends the epoch when it does not know the date


def _api_entry(info: Any) -> ModelEntry:
    mid = str(info.id)
    p = parse_model_id(mid)
    return ModelEntry(
        id=mid,
        provider="anthropic",
        kind="snapshot" if p is not None and p.snapshot else "fixed",
        family=p.family if p is not None else mid,
        released=_day(getattr(info, "created_at", None)),
        deprecated=_day(getattr(info, "deprecated_at", None)),
        retired=_day(getattr(info, "retires_at", None)),
        display_name=getattr(info, "display_name", None) or None,
    )


def refresh_catalog(
    store_root: str | os.PathLike,
    *,
    api_key_env: str = "ANTHROPIC_API_KEY",
    base_url: str | None = None,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    catalog: ModelCatalog | None = None,
    now: dt.datetime | None = None,
) -> RefreshResult:
    """Ask the Anthropic Models API what it serves today and save that as ``store_root``'s override.

    Lists every model (all pages), then resolves each alias the catalog knows
    and each undated id the store's traces requested with ``GET
    /v1/models/{id}``. Raises ``MissingKeyError`` before any request when the
    key is missing, ``RefreshError`` on an API failure; in both cases nothing
    is written. The key is handed to the SDK only and never appears in the
    result, the file or an error message.
    """
    env = os.environ if env is None else env
    key = env.get(api_key_env) or ""
    if not key:
        raise MissingKeyError(
            f"no API key: ${api_key_env} is not set, so the Models API cannot be asked; nothing was changed"
        )
    import anthropic

    catalog = catalog or load_catalog(store_root)
    client = anthropic.Anthropic(api_key=key, base_url=base_url, timeout=timeout, max_retries=2)
    url = _public_url(str(client.base_url))

    def fail(e: Exception) -> RefreshError:
        msg = str(e).replace(key, "[key]")
        if isinstance(e, anthropic.AuthenticationError):
            msg = f"the Models API at {url} rejected the key in ${api_key_env} ({msg})"
        elif isinstance(e, anthropic.APIConnectionError):
            msg = f"could not reach the Models API at {url}: {msg}"
        else:
            msg = f"the Models API at {url} failed: {msg}"
        return RefreshError(msg + "; nothing was changed")

    try:
        listed = list(client.models.list(limit=100))
    except anthropic.APIError as e:
        raise fail(e) from None
    entries: dict[str, ModelEntry] = {}
    for info in listed:
        e = _api_entry(info)
        entries.setdefault(e.id, e)
    result = RefreshResult(path="", fetched_at="", base_url=url, listed=[str(i.id) for i in listed])
    ask = sorted(set(catalog.aliases("anthropic")) | set(undated_requested_ids(store_root)))
    for model in ask:
        if model in entries:
            continue  # listed by the API itself: a model, not an alias
        try:
            info = client.models.retrieve(model)
        except anthropic.NotFoundError:
            result.not_found.append(model)
            continue
        except anthropic.APIError as e:
            raise fail(e) from None
        target = _api_entry(info)
        entries.setdefault(target.id, target)
        if target.id == model:
            result.fixed.append(model)
        else:
            fam = parse_model_id(model)
            entries[model] = ModelEntry(
                id=model, provider="anthropic", kind="alias", family=fam.family if fam else model,
                resolves_to=(target.id,),
            )
            result.aliases[model] = target.id
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    result.fetched_at = when.isoformat().replace("+00:00", "Z")
    doc = document(
        entries.values(),
        as_of=when.date(),
        sources={"anthropic": [f"Anthropic Models API (GET /v1/models, GET /v1/models/{{id}}) at {url}"]},
        fetched_at=result.fetched_at,
        fetched_from=url,
    )
    result.path = str(write_override(store_root, doc))
    return result
