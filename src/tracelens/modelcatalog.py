"""The model catalog: which model ids are pinned, which are aliases, and what is known about each.

Whether ``claude-sonnet-4-5`` is an alias and ``claude-opus-4-6`` a fixed
model is data, not something to guess from the installed SDK (whose model
list changes with every release). This module is the one place that decides.

Contract:

* Data. The package ships ``tracelens/data/models.json``; a store may hold an
  override, ``STORE/models.json`` (written by ``tracelens models refresh`` or
  by hand), in the same format. :func:`load_catalog` returns a
  :class:`ModelCatalog` of both; :func:`default_catalog` the shipped data
  alone. Format (``FORMAT_VERSION`` 1)::

      {"format_version": 1, "as_of": "YYYY-MM-DD", "sources": {...},
       "fetched_at": ISO datetime (overrides only, optional),
       "providers": {"anthropic" | "bedrock" | "vertex" | "openai" | "gemini" | ...: [
          {"id", "kind": "snapshot" | "alias" | "fixed", "family",
           "released", "deprecated", "retired": "YYYY-MM-DD" or null,
           "resolves_to": [ids] (aliases), "same_as": first-party id (platform entries),
           "display_name", "note" (optional)}]}}

  ``id``, ``kind`` and ``family`` are required; an alias needs a non-empty
  ``resolves_to``; ids are unique across the file. A date of null means "not
  published or not known", never "no such date".
* Precedence. An override entry replaces the shipped entry of the same id
  field by field: its ``kind`` always, every other field where it is not null
  (so a refresh, which learns no retirement dates, keeps the shipped ones).
* Decision. :meth:`ModelCatalog.classify` returns a :class:`ModelClass`; the
  rule, in order:

  1. the id in the override, then in the shipped data (``source`` ``store
     override`` / ``shipped data``), tried as given, as the platform lists it
     (:func:`tracelens.modelid.platform_id`: no ARN, inference-profile region
     such as ``us.``/``eu.``/``apac.``/``global.``, ``models/`` or resource
     path) and as the first-party Claude id
     (:func:`tracelens.modelid.first_party_id`);
  2. otherwise its shape (``source`` ``shape rule``): a date suffix
     (``-YYYYMMDD``, ``-YYYY-MM-DD``, ``@YYYYMMDD``, OpenAI's ``-MMDD``) ->
     snapshot; ``-latest`` -> alias; a Bedrock id with an explicit version
     (``amazon.nova-pro-v1:0``) -> fixed; an undated id for which the catalog
     knows a dated sibling (``id + "-YYYYMMDD"``) -> alias of those; an
     undated Claude id the provider itself reported back (``reported=True``:
     it was the trace's ``model_returned``) -> fixed, as the most specific
     identity the API gave (Anthropic answers an alias with its snapshot;
     other providers echo some aliases, so the rule is Claude's alone); an id
     of no known provider -> unknown; anything else -> alias.

  ``unknown`` and ``alias`` are "not pinned" (``is_alias``); ``snapshot`` and
  ``fixed`` are pinned.
* Bad overrides (unparsable JSON, missing fields, another format version)
  never stop a command: a warning naming the file goes to stderr (once per
  process for each version of the file) and the shipped data is used.
* No click, no textual, no network and no store: asking the Models API and
  writing the override live in ``tracelens.modelrefresh``. Nothing here reads
  the SDK's own model list.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from tracelens.modelid import first_party_id, parse_model_id, platform_id

FORMAT_VERSION = 1
OVERRIDE_FILE = "models.json"
ENTRY_KINDS: tuple[str, ...] = ("snapshot", "alias", "fixed")
KINDS: tuple[str, ...] = (*ENTRY_KINDS, "unknown")
PROVIDERS: tuple[str, ...] = ("anthropic", "bedrock", "vertex", "openai", "gemini")

SOURCE_OVERRIDE = "store override"
SOURCE_SHIPPED = "shipped data"
SOURCE_SHAPE = "shape rule"

_DATE_FIELDS = ("released", "deprecated", "retired")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATED = re.compile(r"^(?P<base>.+)-(?P<date>20\d{2}(0[1-9]|1[0-2])([0-2]\d|3[01]))$")


class CatalogFormatError(ValueError):
    """A catalog document that does not follow the format (the message says what is wrong)."""


@dataclass(frozen=True)
class ModelEntry:
    """One model id of a catalog file."""

    id: str
    provider: str
    kind: str
    family: str
    released: dt.date | None = None
    deprecated: dt.date | None = None
    retired: dt.date | None = None
    resolves_to: tuple[str, ...] = ()
    same_as: str | None = None
    display_name: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "kind": self.kind, "family": self.family}
        for name in _DATE_FIELDS:
            v = getattr(self, name)
            d[name] = v.isoformat() if v else None
        if self.resolves_to:
            d["resolves_to"] = list(self.resolves_to)
        for name in ("same_as", "display_name", "note"):
            if getattr(self, name):
                d[name] = getattr(self, name)
        return d


@dataclass(frozen=True)
class ModelClass:
    """How one model id is classified, and why."""

    model: str
    kind: str  # snapshot | alias | fixed | unknown
    source: str  # store override | shipped data | shape rule
    reason: str
    provider: str | None = None  # catalog provider key (anthropic/bedrock/vertex/openai/gemini) or the id's vendor
    family: str | None = None
    matched: str | None = None  # the catalog id that decided it (None: shape rule)
    released: dt.date | None = None
    deprecated: dt.date | None = None
    retired: dt.date | None = None
    resolves_to: tuple[str, ...] = ()
    display_name: str | None = None

    @property
    def is_alias(self) -> bool:
        """Not known to name one fixed model (an alias, or an id of unknown shape)."""
        return self.kind in ("alias", "unknown")

    @property
    def pinned(self) -> bool:
        """Names one fixed model: a dated snapshot or an undated fixed id."""
        return self.kind in ("snapshot", "fixed")

    def status(self, on: dt.date) -> str | None:
        """``retired`` / ``deprecated`` / ``active`` on ``on`` by the known dates; None without a release date."""
        if self.retired and on >= self.retired:
            return "retired"
        if self.deprecated and on >= self.deprecated:
            return "deprecated"
        return "active" if self.released and on >= self.released else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "is_alias": self.is_alias,
            "source": self.source,
            "reason": self.reason,
            "provider": self.provider,
            "family": self.family,
            "matched": self.matched,
            "released": self.released.isoformat() if self.released else None,
            "deprecated": self.deprecated.isoformat() if self.deprecated else None,
            "retired": self.retired.isoformat() if self.retired else None,
            "resolves_to": list(self.resolves_to),
            "display_name": self.display_name,
        }


# --------------------------------------------------------------------------- the document format


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CatalogFormatError(f"{where}: expected an ISO date (YYYY-MM-DD) or null, got {value!r}")
    try:
        if not _ISO_DATE.match(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CatalogFormatError(f"{where}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _entry(raw: Any, provider: str, i: int) -> ModelEntry:
    where = f"providers.{provider}[{i}]"
    if not isinstance(raw, dict):
        raise CatalogFormatError(f"{where}: expected an object")
    for name in ("id", "kind", "family"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise CatalogFormatError(f"{where}: missing field {name!r}")
    where = f"{where} ({raw['id']})"
    kind = raw["kind"]
    if kind not in ENTRY_KINDS:
        raise CatalogFormatError(f"{where}: kind {kind!r} is not one of {', '.join(ENTRY_KINDS)}")
    targets = raw.get("resolves_to") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
        raise CatalogFormatError(f"{where}: resolves_to must be a list of model ids")
    if kind == "alias" and not targets:
        raise CatalogFormatError(f"{where}: an alias needs resolves_to")
    for name in ("same_as", "display_name", "note"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise CatalogFormatError(f"{where}: {name} must be a string")
    return ModelEntry(
        id=raw["id"].strip(),
        provider=provider,
        kind=kind,
        family=raw["family"],
        released=_date(raw.get("released"), f"{where}.released"),
        deprecated=_date(raw.get("deprecated"), f"{where}.deprecated"),
        retired=_date(raw.get("retired"), f"{where}.retired"),
        resolves_to=tuple(targets),
        same_as=raw.get("same_as"),
        display_name=raw.get("display_name"),
        note=raw.get("note"),
    )


def parse_document(doc: Any) -> tuple[dict[str, ModelEntry], dt.date]:
    """Validate a catalog document; returns ``({id: entry}, as_of)`` or raises ``CatalogFormatError``."""
    if not isinstance(doc, dict):
        raise CatalogFormatError("not a JSON object")
    version = doc.get("format_version")
    if version is None:
        raise CatalogFormatError("missing field 'format_version'")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CatalogFormatError(f"format_version {version!r} is not an integer")
    if version != FORMAT_VERSION:
        age = "an older" if version < FORMAT_VERSION else "a newer"
        raise CatalogFormatError(
            f"format_version {version} was written by {age} tracelens (this one reads version {FORMAT_VERSION})"
        )
    if "as_of" not in doc:
        raise CatalogFormatError("missing field 'as_of'")
    as_of = _date(doc["as_of"], "as_of")
    if as_of is None:
        raise CatalogFormatError("as_of is null")
    providers = doc.get("providers")
    if not isinstance(providers, dict):
        raise CatalogFormatError("missing field 'providers' (an object of provider -> list of models)")
    entries: dict[str, ModelEntry] = {}
    for provider, items in providers.items():
        if not isinstance(items, list):
            raise CatalogFormatError(f"providers.{provider}: expected a list of models")
        for i, raw in enumerate(items):
            e = _entry(raw, str(provider), i)
            if e.id in entries:
                raise CatalogFormatError(f"model id {e.id!r} is listed twice")
            entries[e.id] = e
    return entries, as_of


def document(entries: Iterable[ModelEntry], *, as_of: dt.date, sources: Mapping[str, Any], **extra: Any) -> dict:
    """A catalog document (the inverse of :func:`parse_document`), providers in ``PROVIDERS`` order."""
    by_provider: dict[str, list[dict]] = {}
    for e in entries:
        by_provider.setdefault(e.provider, []).append(e.to_dict())
    order = [p for p in PROVIDERS if p in by_provider] + sorted(set(by_provider) - set(PROVIDERS))
    return {
        "format_version": FORMAT_VERSION,
        "as_of": as_of.isoformat(),
        **extra,
        "sources": dict(sources),
        "providers": {p: by_provider[p] for p in order},
    }


# --------------------------------------------------------------------------- the catalog


@dataclass
class ModelCatalog:
    """Shipped model data plus an optional store override; see the module docstring for the rule."""

    shipped: dict[str, ModelEntry]
    as_of: dt.date | None = None
    override: dict[str, ModelEntry] = field(default_factory=dict)
    override_path: str | None = None
    override_as_of: dt.date | None = None
    override_fetched_at: str | None = None
    warnings: tuple[str, ...] = ()
    _memo: dict[tuple[str, bool], ModelClass] = field(default_factory=dict, repr=False, compare=False)
    _siblings: dict[str, tuple[str, ...]] | None = field(default=None, repr=False, compare=False)

    # -- entries ------------------------------------------------------------
    def entry(self, model_id: str) -> tuple[ModelEntry, str] | None:
        """The merged entry for an exact catalog id and the layer it comes from, or None."""
        over = self.override.get(model_id)
        base = self.shipped.get(model_id)
        if over is None:
            return (base, SOURCE_SHIPPED) if base is not None else None
        if base is None:
            return over, SOURCE_OVERRIDE
        merged = {
            name: getattr(over, name) if getattr(over, name) not in (None, ()) else getattr(base, name)
            for name in ("family", *_DATE_FIELDS, "resolves_to", "same_as", "display_name", "note")
        }
        return replace(base, kind=over.kind, **merged), SOURCE_OVERRIDE

    def entries(self, provider: str | None = None, kind: str | None = None) -> list[tuple[ModelEntry, str]]:
        """Every catalog id (merged) with its layer, shipped order first, then override-only ids."""
        ids = list(self.shipped) + [i for i in self.override if i not in self.shipped]
        out = []
        for i in ids:
            got = self.entry(i)
            if got is None:
                continue
            e, src = got
            if (provider is None or e.provider == provider) and (kind is None or e.kind == kind):
                out.append((e, src))
        return out

    def aliases(self, provider: str | None = None) -> list[str]:
        """Ids the catalog lists as aliases."""
        return [e.id for e, _ in self.entries(provider, "alias")]

    # -- classification -----------------------------------------------------
    def classify(self, model: str | None, *, reported: bool = False) -> ModelClass:
        """Classify ``model`` (``reported``: the provider reported this id back as ``model_returned``)."""
        key = ((model or "").strip(), bool(reported))
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = self._classify(key[0], key[1])
        return got

    def _candidates(self, model: str) -> list[str]:
        out: list[str] = []
        for c in (model, platform_id(model), first_party_id(model)):
            if c and c not in out:
                out.append(c)
        return out

    def _classify(self, model: str, reported: bool) -> ModelClass:
        if not model:
            return ModelClass(model, "unknown", SOURCE_SHAPE, "no model id recorded")
        cands = self._candidates(model)
        for layer in (self.override, self.shipped):
            for c in cands:
                if c in layer:
                    return self._from_entry(model, c)
        return self._by_shape(model, cands, reported)

    def _from_entry(self, model: str, cid: str) -> ModelClass:
        got = self.entry(cid)
        assert got is not None
        e, src = got
        released = e.released
        if released is None and e.same_as:
            twin = self.entry(e.same_as)
            released = twin[0].released if twin else None
        where = "the store's override" if src == SOURCE_OVERRIDE else f"the shipped model data (as of {self.as_of})"
        via = "" if cid == model else f" as {cid}"
        what = {"snapshot": "a dated snapshot", "alias": "an alias", "fixed": "a fixed model without a date"}[e.kind]
        reason = f"listed{via} in {where} as {what}"
        if e.resolves_to:
            reason += f" resolving to {', '.join(e.resolves_to)}"
        return ModelClass(
            model=model,
            kind=e.kind,
            source=src,
            reason=reason,
            provider=e.provider,
            family=e.family,
            matched=cid,
            released=released,
            deprecated=e.deprecated,
            retired=e.retired,
            resolves_to=e.resolves_to,
            display_name=e.display_name,
        )

    def _sibling_index(self) -> dict[str, tuple[str, ...]]:
        if self._siblings is None:
            found: dict[str, set[str]] = {}
            for i in list(self.shipped) + list(self.override):
                for c in (i, first_party_id(i)):
                    m = _DATED.match(c or "")
                    if m:
                        found.setdefault(m.group("base"), set()).add(c)  # type: ignore[arg-type]
            self._siblings = {k: tuple(sorted(v, reverse=True)) for k, v in found.items()}
        return self._siblings

    def _by_shape(self, model: str, cands: list[str], reported: bool) -> ModelClass:
        p = parse_model_id(model)
        assert p is not None
        provider = p.platform or ("gemini" if p.provider == "google" else p.provider)

        def out(kind: str, reason: str, resolves_to: tuple[str, ...] = ()) -> ModelClass:
            return ModelClass(model, kind, SOURCE_SHAPE, reason, provider, p.family, resolves_to=resolves_to)

        if p.snapshot is not None:
            return out("snapshot", f"not in the catalog; its date suffix ({p.snapshot}) names a snapshot")
        if model.lower().endswith("-latest"):
            return out("alias", "not in the catalog; '-latest' names whatever the provider points it at")
        if p.platform == "bedrock" and not p.is_alias:
            return out("fixed", "not in the catalog; a Bedrock id with an explicit version suffix names a fixed model")
        index = self._sibling_index()
        for c in cands:
            sibs = index.get(c)
            if sibs:
                return out("alias", f"not in the catalog, but the catalog knows dated snapshot(s) {', '.join(sibs)}", sibs)
        if reported and p.provider == "anthropic":
            # Anthropic answers an alias with the snapshot it resolved to, so an undated id it reports back is the
            # model itself. Other providers echo some aliases (OpenAI's gpt-3.5-turbo-instruct): no such inference.
            return out(
                "fixed",
                "not in the catalog and undated, but Anthropic reported this id back as the model that served "
                "the call, so it is the most specific identity available",
            )
        if provider is None:
            return out("unknown", "not in the catalog, no date, and no known provider's naming scheme")
        return out("alias", "not in the catalog and carries no date, so it may name different models over time")

    def lifecycle(self, model: str | None) -> ModelClass:
        """Like :meth:`classify`, but an alias the catalog resolves takes its (first) target's dates."""
        c = self.classify(model)
        if c.kind == "alias" and c.resolves_to and c.source != SOURCE_SHAPE:
            t = self.classify(c.resolves_to[0])
            return replace(c, released=t.released, deprecated=t.deprecated, retired=t.retired)
        return c


# --------------------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def _shipped() -> tuple[dict[str, ModelEntry], dt.date]:
    # A broken shipped file is a packaging bug: let it raise (a test validates the file).
    text = resources.files("tracelens").joinpath("data", "models.json").read_text(encoding="utf-8")
    return parse_document(json.loads(text))


def shipped_document() -> dict:
    """The shipped ``models.json`` as parsed JSON."""
    return json.loads(resources.files("tracelens").joinpath("data", "models.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_catalog() -> ModelCatalog:
    """The shipped model data alone (what callers without a store get)."""
    entries, as_of = _shipped()
    return ModelCatalog(shipped=entries, as_of=as_of)


def _warn_stderr(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def override_path(store_root: str | os.PathLike) -> Path:
    """Where a store keeps its catalog override."""
    return Path(store_root) / OVERRIDE_FILE


_LOADED: dict[tuple[str, int, int], ModelCatalog] = {}


def load_catalog(store_root: str | os.PathLike | None = None, *, warn: Callable[[str], None] | None = None) -> ModelCatalog:
    """The shipped data merged with ``store_root``'s override (if any); never raises for a bad override.

    A bad override is reported through ``warn`` (default: one line on stderr)
    the first time this process reads that version of the file, and ignored.
    """
    if store_root is None:
        return default_catalog()
    path = override_path(store_root)
    try:
        st = path.stat()
    except OSError:
        return default_catalog()
    key = (str(path), st.st_mtime_ns, st.st_size)
    cat = _LOADED.get(key)
    if cat is not None:
        return cat
    base = default_catalog()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        entries, as_of = parse_document(doc)
        fetched = doc.get("fetched_at")
        cat = ModelCatalog(
            shipped=base.shipped,
            as_of=base.as_of,
            override=entries,
            override_path=str(path),
            override_as_of=as_of,
            override_fetched_at=fetched if isinstance(fetched, str) else None,
        )
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError and CatalogFormatError are ValueErrors
        why = f"not valid JSON ({e})" if isinstance(e, json.JSONDecodeError) else str(e)
        msg = f"model catalog override {path} ignored: {why}; using the shipped model data"
        (warn or _warn_stderr)(msg)
        cat = ModelCatalog(shipped=base.shipped, as_of=base.as_of, warnings=(msg,))
    _LOADED[key] = cat
    return cat
