"""Deterministic variance sources (the "variance sources at a glance" table is in ``analysis/sources.py``).

Contract: every function takes the combined, normalised frame built by
``drift.analyze`` (a ``_w`` column: 0 = baseline, 1 = current) plus a
reference frame of everything seen before the current window (baseline and,
when given, history) and returns :class:`~tracelens.analysis.draft.Draft`
objects of the deterministic kinds: ``model_snapshot``, ``alias_usage``,
``system_prompt``, ``tool_definitions``, ``sampling_params``,
``service_tier`` (``backend_fingerprint`` has its own detector module; this
module only gives it its row in the table). For these ``p_value`` is None and ``changed`` says whether
the change happened; ``first_seen`` is the timestamp of the first current
trace that shows the new value (exact, not estimated), and ``evidence`` the
first trace ids that show it.

"Alias" is data: the model catalog (:mod:`tracelens.modelcatalog`: a store's
override, the shipped model data, then the id's shape) decides whether
``model_requested`` names an alias; an id the catalog lists settles it either
way, otherwise ``model_is_alias`` as ingested or the shape rule does. Users can
add regexes (``DriftConfig.alias_patterns``, ``re.search``) that always mean
"alias". Where the catalog knows them, a new snapshot's release date is
quoted, and current traffic on a model that is deprecated or retired as of
the current window's end is flagged (``model_snapshot``, segment
``model=<id> (deprecated)`` / ``(retired)``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from datetime import date

import polars as pl

from tracelens.analysis import fmt
from tracelens.analysis.draft import Draft
from tracelens.modelcatalog import SOURCE_SHAPE, ModelCatalog, default_catalog

#: Extra alias regexes on top of the model catalog (none by default: the catalog covers ``-latest``, the
#: providers' aliases and undated ids by its rule; add patterns for in-house names such as ``^my-model$``).
DEFAULT_ALIAS_PATTERNS: tuple[str, ...] = ()

_DATE_SUFFIX = re.compile(r"(?:[-@](?:\d{8}|\d{4}-\d{2}-\d{2}|\d{4}|\d{3}|preview-\d{2}-\d{2}))?(?:-v\d+(?::\d+)?)?$")
_PROVIDER_PREFIX = re.compile(r"^(?:[a-z]{2}\.)?[a-z][a-z0-9-]*\.(?=[a-z])")


def family_of(model: str | None) -> str | None:
    """Model family: the id without provider path, date/version suffix (fallback when model_family is null)."""
    if model is None:
        return None
    m = norm_model(model)
    fam = _DATE_SUFFIX.sub("", m)
    return fam or m


def norm_model(model: str) -> str:
    """Normalise a model id for comparisons: lower case, no 'provider/' path, no 'anthropic.' prefix."""
    m = model.strip().lower().rsplit("/", 1)[-1]
    m = _PROVIDER_PREFIX.sub("", m)
    m = re.sub(r"-v\d+(?::\d+)?$", "", m)
    return m.replace("@", "-")


def _mismatch(requested: str, returned: str) -> bool:
    a, b = norm_model(requested), norm_model(returned)
    return not (a.startswith(b) or b.startswith(a))


def alias_decisions(
    values: Iterable[str], patterns: Iterable[str], catalog: ModelCatalog | None = None
) -> tuple[set[str], set[str]]:
    """``(aliases, pinned)`` among ``values``: decided by the catalog's data, or by a user regex (always alias).

    Ids the catalog only knows by shape land in ``aliases`` when the shape rule
    says alias (``-latest``, an undated id of a known provider) and in neither
    set when it says unknown (in-house names): then the ingested
    ``model_is_alias`` decides.
    """
    cat = catalog or default_catalog()
    regs = [re.compile(p) for p in patterns]
    aliases: set[str] = set()
    pinned: set[str] = set()
    for v in values:
        if v is None:
            continue
        c = cat.classify(v)
        if any(r.search(v) for r in regs) or c.kind == "alias":
            aliases.add(v)
        elif c.pinned and c.source != SOURCE_SHAPE:
            pinned.add(v)
    return aliases, pinned


def alias_names(values: Iterable[str], patterns: Iterable[str], catalog: ModelCatalog | None = None) -> set[str]:
    """The subset of model ids that are aliases: by the model catalog (default: shipped data) or a user regex."""
    return alias_decisions(values, patterns, catalog)[0]


def _first(cur: pl.DataFrame, cond: pl.Expr, k: int = 20) -> tuple[object, tuple[str, ...]]:
    rows = cur.lazy().filter(cond).select("timestamp", "trace_id").sort(["timestamp", "trace_id"]).head(k).collect()
    if rows.height == 0:
        return None, ()
    return rows.get_column("timestamp")[0], tuple(str(t) for t in rows.get_column("trace_id").to_list())


def _seg_app(app: str | None, all_null: bool) -> str:
    if all_null:
        return ""
    return f"app={app if app is not None else '(none)'}"


# --------------------------------------------------------------------------- model snapshot


def snapshot_drafts(df: pl.DataFrame, ref: pl.DataFrame, catalog: ModelCatalog | None = None) -> list[Draft]:
    """New returned snapshots (never seen before the current window) and requested != returned mismatches.

    A new snapshot's release date is quoted where the model catalog (default: the shipped data) knows it.
    """
    cat = catalog or default_catalog()
    out: list[Draft] = []
    cur = df.filter(pl.col("_w") == 1)
    base = df.filter(pl.col("_w") == 0)
    seen = set(ref.get_column("model_returned").drop_nulls().unique().to_list())
    cur_models = cur.group_by("model_returned", "_family").agg(pl.len().alias("n")).drop_nulls("model_returned")
    fam_tot = cur.group_by("_family").agg(pl.len().alias("tot"))
    cur_models = cur_models.join(fam_tot, on="_family", how="left", nulls_equal=True).sort("model_returned")
    base_modal = (
        base.drop_nulls("model_returned")
        .group_by("_family", "model_returned")
        .agg(pl.len().alias("n"))
        .sort(["n", "model_returned"], descending=[True, False])
        .unique("_family", keep="first", maintain_order=True)
    )
    prev_by_fam = dict(zip(base_modal.get_column("_family").to_list(), base_modal.get_column("model_returned").to_list(), strict=True))
    for row in cur_models.iter_rows(named=True):
        model, fam = row["model_returned"], row["_family"]
        if model in seen:
            continue
        first, ev = _first(cur, pl.col("model_returned") == model)
        prev = prev_by_fam.get(fam)
        share = row["n"] / row["tot"] if row["tot"] else None
        was = f" (baseline: {prev})" if prev else " (no baseline traffic for this family)"
        released = cat.classify(model).released
        rel = f" (released {released.isoformat()} per the model catalog)" if released else ""
        out.append(
            Draft(
                kind="model_snapshot",
                segment=f"family={fam}" if fam else "",
                baseline_value=prev,
                current_value=model,
                effect=share,
                direction="changed",
                summary=(
                    f"New model snapshot {model}{rel} first seen {fmt.ts(first)}, serving {fmt.pct(share)} of current "
                    f"{fam or 'traffic'} traffic{was}."
                ),
                first_seen=first,
                evidence=ev,
                changed=True,
            )
        )
    # requested != returned for pinned requests (the provider served something else than named)
    pairs = (
        df.filter(pl.col("model_requested").is_not_null() & pl.col("model_returned").is_not_null() & ~pl.col("_alias"))
        .group_by("model_requested", "model_returned", "_w")
        .agg(pl.len().alias("n"), pl.col("timestamp").min().alias("t0"))
        .sort(["model_requested", "model_returned", "_w"])
    )
    if pairs.height:
        pairs = pairs.with_columns(
            pl.struct("model_requested", "model_returned")
            .map_elements(lambda s: _mismatch(s["model_requested"], s["model_returned"]), return_dtype=pl.Boolean)
            .alias("mm")
        )
        tot = df.filter(pl.col("model_requested").is_not_null()).group_by("model_requested", "_w").agg(pl.len().alias("tot"))
        mm = pairs.filter("mm")
        for req in sorted(set(mm.get_column("model_requested").to_list())):
            sub = mm.filter(pl.col("model_requested") == req)
            n_b = int(sub.filter(pl.col("_w") == 0).get_column("n").sum())
            n_c = int(sub.filter(pl.col("_w") == 1).get_column("n").sum())
            t = {r["_w"]: r["tot"] for r in tot.filter(pl.col("model_requested") == req).iter_rows(named=True)}
            sb = n_b / t[0] if t.get(0) else None
            sc = n_c / t[1] if t.get(1) else None
            new_pairs = set(sub.filter(pl.col("_w") == 1).get_column("model_returned").to_list()) - set(
                sub.filter(pl.col("_w") == 0).get_column("model_returned").to_list()
            )
            served = ", ".join(sorted(set(sub.filter(pl.col("_w") == 1).get_column("model_returned").to_list()))) or "n/a"
            first, ev = _first(cur, (pl.col("model_requested") == req) & pl.col("model_returned").is_in(sorted(new_pairs)))
            out.append(
                Draft(
                    kind="model_snapshot",
                    segment=f"model={req}",
                    baseline_value=sb,
                    current_value=sc,
                    effect=sc,
                    direction="changed",
                    summary=(
                        f"Requests pinned to {req} were served by a different model ({served}) in "
                        f"{fmt.pct(sc)} of current traffic (baseline {fmt.pct(sb)})."
                    ),
                    first_seen=first if new_pairs else None,
                    evidence=ev if new_pairs else (),
                    changed=bool(new_pairs),
                )
            )
    return out


LIFECYCLE_SUFFIXES = (" (deprecated)", " (retired)")


def is_lifecycle_segment(segment: str) -> bool:
    """A ``model_snapshot`` finding about a deprecated/retired model, not about a rollover or a mismatch."""
    return segment.startswith("model=") and segment.endswith(LIFECYCLE_SUFFIXES)


def lifecycle_drafts(df: pl.DataFrame, as_of: date | None, catalog: ModelCatalog | None = None) -> list[Draft]:
    """Current traffic on models the catalog says were retired (alert) or deprecated (warn) by ``as_of``.

    The model is what served the call (``model_returned``, else ``model_requested``; an alias the catalog
    resolves takes its snapshot's dates). Bedrock and Vertex set their own schedules, so their ids are
    flagged only where the catalog has dates for them.
    """
    if as_of is None:
        return []
    cat = catalog or default_catalog()
    model = pl.coalesce("model_returned", "model_requested")
    counts = (
        df.select(model.alias("m"), "_w").drop_nulls("m").group_by("m", "_w").agg(pl.len().alias("n")).sort("m", "_w")
    )
    totals = {r["_w"]: r["n"] for r in df.group_by("_w").agg(pl.len().alias("n")).iter_rows(named=True)}
    by_model: dict[str, dict[int, int]] = {}
    for r in counts.iter_rows(named=True):
        by_model.setdefault(r["m"], {})[r["_w"]] = r["n"]
    cur = df.filter(pl.col("_w") == 1)
    out: list[Draft] = []
    for m, n in sorted(by_model.items()):
        if not n.get(1):
            continue
        c = cat.lifecycle(m)
        status = c.status(as_of)
        if status not in ("deprecated", "retired"):
            continue
        share_c = n[1] / totals[1]
        share_b = n.get(0, 0) / totals[0] if totals.get(0) else None
        if status == "retired":
            what = f"retired on {c.retired.isoformat()} per the model catalog ({c.source}): requests naming it now fail"
        else:
            when = f"retirement scheduled for {c.retired.isoformat()}" if c.retired else "no retirement date known"
            what = f"deprecated since {c.deprecated.isoformat()} per the model catalog ({c.source}; {when})"
        _, ev = _first(cur, model == m)
        out.append(
            Draft(
                kind="model_snapshot",
                segment=f"model={m} ({status})",
                baseline_value=share_b,
                current_value=share_c,
                effect=share_c,
                direction="changed",
                summary=(
                    f"{fmt.pct(share_c)} of current traffic ({n[1]:,} call(s)) ran on {m}, {what}; "
                    "move it to a successor model."
                ),
                evidence=ev,
                changed=True,
                severity="alert" if status == "retired" else "warn",
            )
        )
    return out


# --------------------------------------------------------------------------- alias usage


def alias_drafts(df: pl.DataFrame, share_threshold: float) -> list[Draft]:
    """Share of traffic naming an alias, and aliases that now resolve to a different snapshot."""
    known = df.filter(pl.col("model_requested").is_not_null())
    if known.height == 0:
        return []
    agg = known.group_by("_w").agg(pl.col("_alias").mean().alias("share"), pl.len().alias("n")).sort("_w")
    share = {r["_w"]: r["share"] for r in agg.iter_rows(named=True)}
    sb, sc = share.get(0), share.get(1)
    out: list[Draft] = []
    if (sb or 0) > 0 or (sc or 0) > 0:
        eff = None if sb is None or sc is None else sc - sb
        out.append(
            Draft(
                kind="alias_usage",
                segment="",
                baseline_value=sb,
                current_value=sc,
                effect=eff,
                summary=(
                    f"{fmt.pct(sc)} of current traffic named a model alias rather than a pinned snapshot "
                    f"(baseline {fmt.pct(sb)}); aliases can move to a new snapshot without notice."
                ),
                changed=eff is not None and abs(eff) >= share_threshold,
            )
        )
    res = (
        known.filter(pl.col("_alias") & pl.col("model_returned").is_not_null())
        .group_by("model_requested", "_w", "model_returned")
        .agg(pl.len().alias("n"))
        .sort(["model_requested", "_w", "n", "model_returned"], descending=[False, False, True, False])
    )
    cur = df.filter(pl.col("_w") == 1)
    for alias in sorted(set(res.get_column("model_requested").to_list())):
        sub = res.filter(pl.col("model_requested") == alias)
        b = sub.filter(pl.col("_w") == 0)
        c = sub.filter(pl.col("_w") == 1)
        if b.height == 0 or c.height == 0:
            continue
        new = sorted(set(c.get_column("model_returned").to_list()) - set(b.get_column("model_returned").to_list()))
        if not new:
            continue
        first, ev = _first(cur, (pl.col("model_requested") == alias) & pl.col("model_returned").is_in(new))
        new_n = int(c.filter(pl.col("model_returned").is_in(new)).get_column("n").sum())
        share = new_n / int(c.get_column("n").sum())
        prev = b.get_column("model_returned")[0]
        out.append(
            Draft(
                kind="alias_usage",
                segment=f"model={alias}",
                baseline_value=prev,
                current_value=", ".join(new),
                effect=share,
                direction="changed",
                summary=(
                    f"Alias {alias} now resolves to {', '.join(new)} (baseline: {prev}) for {fmt.pct(share)} of "
                    f"its current traffic, first at {fmt.ts(first)}."
                ),
                first_seen=first,
                evidence=ev,
                changed=True,
            )
        )
    return out


# --------------------------------------------------------------------------- system prompts and tools


def text_lookup(df: pl.DataFrame, hash_col: str, text_col: str) -> dict:
    """``(app, hash) -> text`` for every distinct version (first occurrence), to diff without keeping text columns."""
    if df.get_column(text_col).null_count() == df.height:
        return {}
    u = (
        df.lazy()
        .select("app", pl.col(hash_col).fill_null("(none)").alias("h"), text_col)
        .unique(subset=["app", "h"], keep="first", maintain_order=True)
        .collect()
    )
    return {(a, h): t for a, h, t in u.iter_rows()}


def _pretty_tools(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text


def unified_diff(old: str | None, new: str | None, old_name: str, new_name: str, max_lines: int = 200) -> tuple[str, int, int]:
    """Unified diff text plus counts of added and removed lines."""
    lines = list(
        difflib.unified_diff(
            (old or "").splitlines(), (new or "").splitlines(), fromfile=old_name, tofile=new_name, lineterm="", n=2
        )
    )
    added = sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++"))
    removed = sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---"))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more diff lines)"]
    return "\n".join(lines), added, removed


def config_drafts(
    df: pl.DataFrame, ref: pl.DataFrame, kind: str, hash_col: str, texts: dict, templated_limit: int
) -> tuple[list[Draft], list[tuple[str, str, str, str]]]:
    """New system-prompt (or tool-definition) versions per app, with diffs against the previous version.

    ``texts`` maps ``(app, hash)`` to the text of that version (see ``text_lookup``); the
    frames themselves need no text column. Returns drafts and details ``(kind, segment, title, diff_text)``.
    """
    what = "System prompt" if kind == "system_prompt" else "Tool definitions"
    pretty = (lambda t: t) if kind == "system_prompt" else _pretty_tools
    drafts: list[Draft] = []
    details: list[tuple[str, str, str, str]] = []
    all_null = df.get_column("app").null_count() == df.height
    if df.get_column(hash_col).null_count() == df.height:
        return drafts, details
    key = pl.col(hash_col).fill_null("(none)")
    seen = ref.select(pl.col("app"), key.alias("h")).unique()
    cur = df.filter(pl.col("_w") == 1).with_columns(key.alias("_h"))
    firsts = (
        cur.group_by("app", "_h")
        .agg(pl.col("timestamp").min().alias("t0"), pl.len().alias("n"))
        .join(seen, left_on=["app", "_h"], right_on=["app", "h"], how="anti", nulls_equal=True)
        .sort(["app", "t0", "_h"], nulls_last=False)
    )
    if firsts.height == 0:
        return drafts, details
    app_tot = dict(cur.group_by("app").agg(pl.len()).iter_rows())
    allrows = df.with_columns(key.alias("_h")).select("app", "_h", "timestamp").sort("timestamp")
    for app in firsts.get_column("app").unique(maintain_order=True).to_list():
        seg = _seg_app(app, all_null)
        new = firsts.filter(pl.col("app").eq_missing(app))
        app_rows = allrows.filter(pl.col("app").eq_missing(app))
        cond_app = pl.col("app").eq_missing(app)
        if new.height > templated_limit:
            hashes = new.get_column("_h").to_list()
            share = int(new.get_column("n").sum()) / app_tot[app]
            first, ev = _first(cur, cond_app & pl.col("_h").is_in(hashes))
            drafts.append(
                Draft(
                    kind=kind,
                    segment=seg,
                    baseline_value=None,
                    current_value=f"{new.height} new versions",
                    effect=share,
                    direction="changed",
                    summary=(
                        f"{what} of {seg or 'all traffic'} varies per request: {new.height} versions never seen "
                        f"before carry {fmt.pct(share)} of current traffic (templated prompt?), first at {fmt.ts(first)}."
                    ),
                    first_seen=first,
                    evidence=ev,
                    changed=True,
                )
            )
            continue
        for row in new.iter_rows(named=True):
            h, t0 = row["_h"], row["t0"]
            before = app_rows.filter((pl.col("timestamp") < t0) & (pl.col("_h") != h))
            prev_h = before.get_column("_h")[-1] if before.height else None
            prev_text = texts.get((app, prev_h)) if before.height else None
            new_text = texts.get((app, h))
            diff, added, removed = unified_diff(
                pretty(prev_text), pretty(new_text), f"{fmt.short(prev_h)} (previous)", f"{fmt.short(h)} (new)"
            )
            share = row["n"] / app_tot[app]
            first, ev = _first(cur, cond_app & (pl.col("_h") == h))
            drafts.append(
                Draft(
                    kind=kind,
                    segment=seg,
                    baseline_value=prev_h,
                    current_value=h,
                    effect=share,
                    direction="changed",
                    summary=(
                        f"{what} of {seg or 'all traffic'} changed at {fmt.ts(first)} "
                        f"({fmt.short(prev_h)} -> {fmt.short(h)}, +{added}/-{removed} lines); "
                        f"{fmt.pct(share)} of current traffic carries the new version."
                    ),
                    first_seen=first,
                    evidence=ev,
                    changed=True,
                )
            )
            details.append((kind, seg, f"{what} diff {fmt.short(prev_h)} -> {fmt.short(h)}", diff))
    return drafts, details


# --------------------------------------------------------------------------- sampling parameters and tiers


def _val(v) -> str:
    if v is None:
        return "unset"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def sampling_drafts(df: pl.DataFrame, ref: pl.DataFrame, templated_limit: int) -> list[Draft]:
    """temperature / top_p / max_tokens values per app that were never sent before the current window."""
    out: list[Draft] = []
    all_null = df.get_column("app").null_count() == df.height
    cur = df.filter(pl.col("_w") == 1)
    base = df.filter(pl.col("_w") == 0)
    app_tot = dict(cur.group_by("app").agg(pl.len()).iter_rows())
    for param in ("temperature", "top_p", "max_tokens"):
        if df.get_column(param).null_count() == df.height:
            continue
        seen = ref.select("app", pl.col(param).alias("v")).unique()
        new = (
            cur.group_by("app", param)
            .agg(pl.len().alias("n"), pl.col("timestamp").min().alias("t0"))
            .join(seen, left_on=["app", param], right_on=["app", "v"], how="anti", nulls_equal=True)
            .sort(["app", "t0"], nulls_last=False)
        )
        for app in new.get_column("app").unique(maintain_order=True).to_list():
            seg = _seg_app(app, all_null)
            sub = new.filter(pl.col("app").eq_missing(app))
            modal = (
                base.filter(pl.col("app").eq_missing(app))
                .group_by(param)
                .agg(pl.len().alias("n"))
                .sort(["n", param], descending=[True, False], nulls_last=True)
            )
            prev = _val(modal.get_column(param)[0]) if modal.height else None
            values = sub.get_column(param).to_list()
            share = int(sub.get_column("n").sum()) / app_tot[app]
            cond = pl.col("app").eq_missing(app) & pl.col(param).is_in([v for v in values if v is not None])
            if any(v is None for v in values):
                cond = cond | (pl.col("app").eq_missing(app) & pl.col(param).is_null())
            first, ev = _first(cur, cond)
            shown = ", ".join(_val(v) for v in values[:templated_limit]) + (" ..." if len(values) > templated_limit else "")
            out.append(
                Draft(
                    kind="sampling_params",
                    segment=f"{seg} {param}".strip(),
                    baseline_value=prev,
                    current_value=shown,
                    effect=share,
                    direction="changed",
                    summary=(
                        f"{param} for {seg or 'all traffic'} changed to {shown} (baseline mostly {prev or 'n/a'}) "
                        f"at {fmt.ts(first)}, in {fmt.pct(share)} of current traffic."
                    ),
                    first_seen=first,
                    evidence=ev,
                    changed=True,
                )
            )
    return out


def tier_drafts(df: pl.DataFrame, ref: pl.DataFrame, tvd_threshold: float) -> list[Draft]:
    """New service tiers, and a shift in the tier mix (total variation >= threshold)."""
    if df.get_column("service_tier").null_count() == df.height:
        return []
    out: list[Draft] = []
    cur = df.filter(pl.col("_w") == 1)
    seen = set(ref.get_column("service_tier").drop_nulls().unique().to_list())
    shares = (
        df.drop_nulls("service_tier")
        .group_by("_w", "service_tier")
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over("_w")).alias("s"))
    )
    sb = {r["service_tier"]: r["s"] for r in shares.filter(pl.col("_w") == 0).iter_rows(named=True)}
    sc = {r["service_tier"]: r["s"] for r in shares.filter(pl.col("_w") == 1).iter_rows(named=True)}
    for tier in sorted(set(sc) - seen):
        first, ev = _first(cur, pl.col("service_tier") == tier)
        out.append(
            Draft(
                kind="service_tier",
                segment=f"tier={tier}",
                baseline_value=sb.get(tier, 0.0),
                current_value=sc[tier],
                effect=sc[tier],
                direction="changed",
                summary=f"Service tier '{tier}' appeared at {fmt.ts(first)} and served {fmt.pct(sc[tier])} of current traffic.",
                first_seen=first,
                evidence=ev,
                changed=True,
            )
        )
    if sb and sc:
        tiers = sorted(set(sb) | set(sc))
        tvd = 0.5 * sum(abs(sc.get(t, 0.0) - sb.get(t, 0.0)) for t in tiers)
        mix_b = ", ".join(f"{t} {fmt.pct(sb.get(t, 0.0))}" for t in tiers)
        mix_c = ", ".join(f"{t} {fmt.pct(sc.get(t, 0.0))}" for t in tiers)
        out.append(
            Draft(
                kind="service_tier",
                segment="",
                baseline_value=mix_b,
                current_value=mix_c,
                effect=tvd,
                direction="changed",
                summary=f"Service tier mix moved by {fmt.pct(tvd)} (total variation): now {mix_c}; baseline {mix_b}.",
                changed=tvd >= tvd_threshold,
            )
        )
    return out


# --------------------------------------------------------------------------- the at-a-glance table
