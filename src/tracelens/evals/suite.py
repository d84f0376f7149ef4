"""Suites: reading and writing suite files, the suites kept in a store, and cases built from stored traces.

Contract:

* A suite file is YAML (``.yaml``/``.yml``/``.json``: a mapping with ``name``,
  optional ``description``, optional ``defaults``, optional ``n`` (default
  repeats per case), optional ``kind`` (``canary`` marks a canary set, the
  suites `tracelens canary` works on) and a ``cases`` list) or
  JSON Lines (``.jsonl``: one case per line; an optional first line
  ``{"suite": {"name", "description", "defaults"}}``). A promptfoo config
  (a mapping with ``prompts`` or ``tests`` and no ``cases``) is read through
  ``tracelens.evals.promptfoo``.
* A case is ``{"id", "request" | "prompt" [+ "system"] | "messages" [+ "system"],
  "graders", "tags", "model", "trace_id", "reference", "reference_refusal",
  "description", "max_tokens"}``. ``request`` is an Anthropic Messages body;
  ``prompt``/``messages`` are shorthands that build one (``max_tokens``
  default 1024). ``defaults.graders`` are added to every case's graders,
  ``defaults.tags`` under each case's tags. Unknown fields, duplicate ids,
  a bad grader or a case without a request are rejected with a
  ``SuiteError`` naming the file, the line and the field; nothing of a bad
  file is used.
* Suites kept in a store live at ``<store>/evals/suites/<name>.yaml``,
  written atomically; ``load_suite`` takes a stored name or a file path.
* ``cases_from_traces`` builds cases from stored traces: the exact
  ``request_raw`` when recorded (the request is rebuilt from the normalised
  fields otherwise, and the case says so), the pinned snapshot that served
  it, the recorded response as ``reference`` with its refusal label, and the
  app as a tag. A trace that cannot become a case is reported with the
  reason, never dropped silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracelens import atomic
from tracelens.evals.graders import SuiteError, parse_grader
from tracelens.evals.model import Case, GraderSpec, Suite

SUITES_DIR = ("evals", "suites")
_HELD = threading.local()  # store roots whose writer lock this thread holds (the lock is not re-entrant)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_MAX_TOKENS = 1024
CASE_FIELDS = {"id", "request", "prompt", "system", "messages", "graders", "tags", "model", "trace_id", "reference",
               "reference_refusal", "description", "max_tokens"}
SUITE_FIELDS = {"name", "description", "defaults", "cases", "created_at", "updated_at", "n", "kind"}
SUITE_KINDS = ("canary",)
DEFAULT_FIELDS = {"graders", "tags"}

GetTrace = Callable[[str], "dict[str, Any] | None"]


@contextlib.contextmanager
def writer_lock(store_root: str | Path):
    """The store's writer lock for eval files, taken once per thread: nested writers (a canary add that adds
    traces and saves the suite) do not wait on themselves."""
    from tracelens.store import store_lock

    key = str(Path(store_root).resolve())
    held: set[str] = getattr(_HELD, "roots", None) or set()
    _HELD.roots = held
    if key in held:
        yield
        return
    with store_lock(store_root):
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


def check_name(name: str) -> str:
    """``name`` when it is a valid suite name (1-64 of ``[A-Za-z0-9._-]``, starting with a letter or digit)."""
    if not NAME_RE.match(name or ""):
        raise SuiteError(f"bad suite name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")
    return name


def suites_dir(store_root: str | Path) -> Path:
    """Where a store keeps its suites."""
    return Path(store_root).joinpath(*SUITES_DIR)


def suite_path(store_root: str | Path, name: str) -> Path:
    """The file of stored suite ``name``."""
    return suites_dir(store_root) / f"{check_name(name)}.yaml"


# ---------------------------------------------------------------------------------------------- reading files


def _lines_of(text: str) -> dict[tuple, int]:
    """1-based line of every mapping key and list item of a YAML document, by path (keys and indexes)."""
    from tracelens.evals.promptfoo import yaml_lines

    try:
        return yaml_lines(text)
    except Exception:  # noqa: BLE001 - line numbers only decorate messages; the parse below reports the error
        return {}


def _where(file: str, lines: dict[tuple, int], path: tuple, what: str = "") -> str:
    for k in range(len(path), -1, -1):
        if path[:k] in lines:
            return f"{file} line {lines[path[:k]]}{what}"
    return f"{file}{what}"


def _request_of(obj: dict[str, Any], where: str) -> dict[str, Any]:
    if "request" in obj:
        req = obj["request"]
        if not isinstance(req, dict) or not isinstance(req.get("messages"), list) or not req["messages"]:
            raise SuiteError(f"{where}, request: must be a Messages API body with a non-empty 'messages' list")
        if any(k in obj for k in ("prompt", "messages", "system")):
            raise SuiteError(f"{where}: give either 'request' or 'prompt'/'messages'/'system', not both")
        return dict(req)
    max_tokens = obj.get("max_tokens", DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise SuiteError(f"{where}, max_tokens: must be a whole number >= 1")
    if "prompt" in obj:
        if "messages" in obj:
            raise SuiteError(f"{where}: give either 'prompt' or 'messages', not both")
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            raise SuiteError(f"{where}, prompt: must be non-empty text")
        messages: list = [{"role": "user", "content": obj["prompt"]}]
    elif "messages" in obj:
        messages = obj["messages"]
        if (not isinstance(messages, list) or not messages
                or not all(isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
                           for m in messages)):
            raise SuiteError(f"{where}, messages: must be a non-empty list of {{role: user|assistant, content}}")
    else:
        raise SuiteError(f"{where}: a case needs 'request', 'prompt' or 'messages'")
    req: dict[str, Any] = {"max_tokens": max_tokens}
    if obj.get("system") is not None:
        if not isinstance(obj["system"], str | list):
            raise SuiteError(f"{where}, system: must be text or a list of text blocks")
        req["system"] = obj["system"]
    req["messages"] = messages
    return req


def _str_map(v: Any, where: str) -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str | int | float | bool)
                                          for k, x in v.items()):
        raise SuiteError(f"{where}: must be a mapping of names to text, e.g. {{task: refund, risk: high}}")
    return {k: str(x) for k, x in v.items()}


def case_from_dict(obj: Any, where: str, defaults: dict[str, Any] | None = None,
                   grader_where: Callable[[int], str] | None = None) -> Case:
    """One case from its file form (see the module docstring); raises ``SuiteError`` naming ``where`` and the field."""
    if not isinstance(obj, dict):
        raise SuiteError(f"{where}: a case must be a mapping")
    unknown = sorted(set(obj) - CASE_FIELDS)
    if unknown:
        raise SuiteError(f"{where}: unknown field {unknown[0]!r} (a case has: {', '.join(sorted(CASE_FIELDS))})")
    cid = obj.get("id")
    if not isinstance(cid, str | int) or isinstance(cid, bool) or not str(cid).strip():
        raise SuiteError(f"{where}, id: every case needs an id (text)")
    request = _request_of(obj, where)
    defaults = defaults or {}
    raw_graders = obj.get("graders", [])
    if not isinstance(raw_graders, list):
        raise SuiteError(f"{where}, graders: must be a list")
    graders = [parse_grader(g, (grader_where(i) if grader_where else where) + f", graders[{i}]")
               for i, g in enumerate(raw_graders)]
    graders = list(defaults.get("graders", [])) + graders
    tags = {**defaults.get("tags", {}), **_str_map(obj.get("tags"), f"{where}, tags")}
    for key in ("model", "trace_id", "reference", "reference_refusal", "description"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise SuiteError(f"{where}, {key}: must be text")
    if obj.get("reference_refusal") not in (None, "none", "partial", "full"):
        raise SuiteError(f"{where}, reference_refusal: must be none, partial or full")
    return Case(id=str(cid), request=request, graders=graders, tags=tags, model=obj.get("model"),
                trace_id=obj.get("trace_id"), reference=obj.get("reference"),
                reference_refusal=obj.get("reference_refusal"), description=obj.get("description"))


def _defaults(obj: Any, where: str) -> dict[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, dict) or set(obj) - DEFAULT_FIELDS:
        raise SuiteError(f"{where}, defaults: may hold only {', '.join(sorted(DEFAULT_FIELDS))}")
    graders = obj.get("graders") or []
    if not isinstance(graders, list):
        raise SuiteError(f"{where}, defaults.graders: must be a list")
    return {"graders": [parse_grader(g, f"{where}, defaults.graders[{i}]") for i, g in enumerate(graders)],
            "tags": _str_map(obj.get("tags"), f"{where}, defaults.tags")}


def _unique(cases: list[Case], file: str) -> list[Case]:
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise SuiteError(f"{file}: two cases have the id {c.id!r}; case ids must be unique in a suite")
        seen.add(c.id)
    return cases


def suite_from_yaml(text: str, file: str, default_name: str) -> Suite:
    """A suite from the text of a YAML (or JSON) suite file."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{file}{at}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(doc, dict):
        raise SuiteError(f"{file}: a suite file is a mapping with 'name' and 'cases'")
    lines = _lines_of(text)
    unknown = sorted(set(doc) - SUITE_FIELDS)
    if unknown:
        raise SuiteError(f"{_where(file, lines, (unknown[0],))}: unknown field {unknown[0]!r} "
                         f"(a suite has: {', '.join(sorted(SUITE_FIELDS))})")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise SuiteError(f"{_where(file, lines, ('cases',))}: 'cases' must be a list")
    defaults = _defaults(doc.get("defaults"), _where(file, lines, ("defaults",)))
    out = []
    for i, c in enumerate(cases):
        cid = c.get("id") if isinstance(c, dict) else None
        label = f", case {cid!r}" if cid is not None else f", cases[{i}]"
        out.append(case_from_dict(
            c, _where(file, lines, ("cases", i), label), defaults,
            lambda j, i=i, label=label: _where(file, lines, ("cases", i, "graders", j), label)))
    name = doc.get("name") or default_name
    n = doc.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 50):
        raise SuiteError(f"{_where(file, lines, ('n',))}, n: repeats per case must be a whole number from 1 to 50")
    kind = doc.get("kind")
    if kind is not None and kind not in SUITE_KINDS:
        raise SuiteError(f"{_where(file, lines, ('kind',))}, kind: must be one of {', '.join(SUITE_KINDS)} (or left out)")
    return Suite(name=check_name(str(name)), cases=_unique(out, file), description=doc.get("description"),
                 created_at=_text(doc.get("created_at")), updated_at=_text(doc.get("updated_at")), n=n, kind=kind)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v.isoformat() if isinstance(v, dt.date | dt.datetime) else str(v)


def suite_from_jsonl(text: str, file: str, default_name: str) -> Suite:
    """A suite from JSON Lines: one case per line, an optional ``{"suite": {...}}`` first line."""
    header: dict[str, Any] = {}
    cases: list[Case] = []
    defaults: dict[str, Any] = {}
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise SuiteError(f"{file} line {no}: not valid JSON ({e})") from None
        if not cases and not header and isinstance(obj, dict) and set(obj) == {"suite"}:
            header = obj["suite"] if isinstance(obj["suite"], dict) else {}
            defaults = _defaults(header.get("defaults"), f"{file} line {no}")
            continue
        cid = obj.get("id") if isinstance(obj, dict) else None
        cases.append(case_from_dict(obj, f"{file} line {no}" + (f", case {cid!r}" if cid is not None else ""),
                                    defaults))
    return Suite(name=check_name(str(header.get("name") or default_name)), cases=_unique(cases, file),
                 description=header.get("description"))


def read_suite_file(path: str | Path, skip_unsupported: bool = False) -> tuple[Suite, list[str]]:
    """(suite, notes) from a suite file or a promptfoo config; raises ``SuiteError`` with file, line and field.

    ``skip_unsupported`` applies to promptfoo configs (``load_promptfoo``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(f"{p}: cannot read it ({e})") from None
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", p.stem).strip("-.") or "suite"
    if p.suffix.lower() == ".jsonl":
        return suite_from_jsonl(text, p.name, stem), []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        doc = None  # suite_from_yaml reports it with the line
    if isinstance(doc, dict) and "cases" not in doc and ("tests" in doc or "prompts" in doc):
        from tracelens.evals.promptfoo import load_promptfoo

        cases, notes = load_promptfoo(p, skip_unsupported)
        name = doc.get("description") if isinstance(doc.get("description"), str) else None
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:64] if name else stem
        return Suite(name=check_name(name if NAME_RE.match(name) else stem), cases=_unique(cases, p.name),
                     description=doc.get("description")), notes
    return suite_from_yaml(text, p.name, stem), []


# ---------------------------------------------------------------------------------------------- the store's suites


def suite_to_yaml(suite: Suite) -> str:
    """The YAML text a stored suite is written as (round-trips through ``suite_from_yaml``)."""
    doc: dict[str, Any] = {"name": suite.name}
    if suite.description:
        doc["description"] = suite.description
    if suite.kind:
        doc["kind"] = suite.kind
    if suite.n is not None:
        doc["n"] = suite.n
    doc["created_at"] = suite.created_at
    doc["updated_at"] = suite.updated_at
    doc["cases"] = [c.to_dict() for c in suite.cases]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def save_suite(store_root: str | Path, suite: Suite) -> Path:
    """Write ``suite`` into the store (atomically), stamping created/updated times; returns the file."""
    path = suite_path(store_root, suite.name)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    suite.created_at = suite.created_at or now
    suite.updated_at = now
    with writer_lock(store_root):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, suite_to_yaml(suite))
    return path


def list_suites(store_root: str | Path) -> list[Suite]:
    """Every suite kept in the store, by name (an unreadable file raises ``SuiteError`` naming it)."""
    d = suites_dir(store_root)
    return [read_suite_file(p)[0] for p in sorted(d.glob("*.yaml"))] if d.is_dir() else []


def load_suite(ref: str, store_root: str | Path | None = None) -> tuple[Suite, Path | None]:
    """(suite, file) for a stored suite's name or a suite file's path (the path wins when both exist)."""
    p = Path(ref)
    if p.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl") and p.is_file():
        return read_suite_file(p)[0], p
    if store_root is not None and NAME_RE.match(ref):
        sp = suite_path(store_root, ref)
        if sp.is_file():
            return read_suite_file(sp)[0], sp
    known = [s.stem for s in sorted(suites_dir(store_root).glob("*.yaml"))] if store_root is not None and \
        suites_dir(store_root).is_dir() else []
    hint = f" (suites in this store: {', '.join(known)})" if known else " (this store has no suites yet: "\
        "create one with `tracelens eval add`)"
    raise SuiteError(f"no suite {ref!r}: neither a suite file nor a suite in the store{hint}")


# ---------------------------------------------------------------------------------------------- graders in one line

# the parameter a one-line ``TYPE:VALUE`` grader sets
_MAIN_PARAM = {"equals": "value", "contains": "value", "not-contains": "value", "regex": "pattern",
               "not-regex": "pattern", "similar": "threshold", "behaves-like": "threshold", "tool-call": "tool",
               "llm-judge": "rubric", "python": "value", "latency": "max_ms", "json-schema": "schema"}
_NUMERIC = {"threshold", "max_ms"}


def parse_expect(values: Iterable[str], graders_json: Iterable[str] = ()) -> list[GraderSpec]:
    """Graders from one-line ``TYPE[:VALUE]`` forms (``contains:refund``, ``not-refused``, ``similar:0.8``) and
    whole JSON objects; ``SuiteError`` naming the bad one and the grader types.
    """
    from tracelens.evals.graders import GRADER_TYPES

    out: list[GraderSpec] = []
    for v in values:
        kind, sep, arg = v.strip().partition(":")
        obj: dict[str, Any] = {"type": kind}
        where = f"--expect {v}"
        if kind not in GRADER_TYPES:
            raise SuiteError(f"{where}: unknown grader {kind!r} (grader types: {', '.join(sorted(GRADER_TYPES))})")
        if sep:
            key = _MAIN_PARAM.get(kind)
            if key is None:  # options as NAME=VALUE pairs: length:max_chars=500,min_words=3
                for pair in arg.split(","):
                    k, eq, val = pair.partition("=")
                    if not eq or not k.strip():
                        raise SuiteError(f"{where}: give {kind}'s options as NAME=VALUE[,NAME=VALUE], or the whole "
                                         "grader as JSON with --grader")
                    try:
                        obj[k.strip()] = json.loads(val)
                    except ValueError:
                        obj[k.strip()] = val
            elif key in _NUMERIC:
                try:
                    obj[key] = float(arg)
                except ValueError:
                    raise SuiteError(f"{where}: {key} must be a number") from None
            elif key == "schema":
                try:
                    obj[key] = json.loads(arg)
                except ValueError as e:
                    raise SuiteError(f"{where}: the schema is not JSON ({e})") from None
            else:
                obj[key] = arg
        out.append(parse_grader(obj, where))
    for i, g in enumerate(graders_json):
        try:
            obj = json.loads(g)
        except ValueError as e:
            raise SuiteError(f"--grader #{i + 1}: not JSON ({e})") from None
        out.append(parse_grader(obj, f"--grader #{i + 1}"))
    return out


# ---------------------------------------------------------------------------------------------- cases from traces


@dataclass
class AddOutcome:
    """What ``add_traces`` did: cases added or replaced, and traces that could not become cases (with why)."""

    suite: Suite
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"suite": self.suite.name, "cases": len(self.suite.cases), "added": self.added,
                "replaced": self.replaced, "skipped": self.skipped, "notes": self.notes,
                "path": str(self.path) if self.path else None}


def case_from_trace(trace: dict[str, Any], graders: list[GraderSpec], tags: dict[str, str] | None = None,
                    case_id: str | None = None, pin: str | None = None) -> tuple[Case, list[str]]:
    """(case, notes) for one stored trace; raises ``ReplayError`` when its request cannot be sent again.

    ``pin`` names the snapshot to pin when the trace records only an alias (or to pin another one).
    """
    from tracelens.replay.labels import refusal_label
    from tracelens.replay.request import (
        AliasOnlyError,
        NotReplayableError,
        body_from_raw,
        is_anthropic_trace,
        reconstruct_body,
        resolve_target_model,
    )

    if not is_anthropic_trace(trace):
        raise NotReplayableError(
            f"trace {trace.get('trace_id')} is a call to provider {trace.get('provider') or 'unknown'!r} "
            f"(model {trace.get('model_returned') or trace.get('model_requested')!r}), not Claude; eval cases hold Anthropic "
            "Messages requests (other providers are targets: run the suite with --target openai:MODEL)")
    try:
        model, notes = resolve_target_model(trace, pin)
    except AliasOnlyError as e:  # the replay wording names replay's option; eval add pins with --pin
        raise AliasOnlyError(str(e).replace("Pass model= / --model", "Pass --pin")) from None
    raw = trace.get("request_raw")
    if raw:
        body, w, _ = body_from_raw(raw, model)
    else:
        body, w = reconstruct_body(trace, model)
        w = [*w, "no request_raw recorded: the request was rebuilt from the normalised fields"]
    notes = [*notes, *w]
    body.pop("model", None)  # the target decides the model; the case keeps its pinned snapshot beside it
    all_tags = {k: v for k, v in {"app": trace.get("app")}.items() if v}
    all_tags.update(tags or {})
    text = trace.get("response_text")
    ref_refusal = trace.get("refusal") if trace.get("refusal") in ("none", "partial", "full") else (
        refusal_label(text, trace.get("stop_reason")) if text is not None else None)
    return Case(id=case_id or str(trace["trace_id"]), request=body, graders=list(graders), tags=all_tags,
                model=model, trace_id=trace.get("trace_id"), reference=text,
                reference_refusal=ref_refusal), notes


def add_traces(store_root: str | Path, name: str, trace_ids: Iterable[str], get_trace: GetTrace,
               graders: list[GraderSpec], tags: dict[str, str] | None = None, description: str | None = None,
               replace: bool = False, pin: str | None = None) -> AddOutcome:
    """Add traces to stored suite ``name`` (created when missing) as cases; the file is rewritten atomically.

    A trace already in the suite is kept as it is unless ``replace``; a trace
    that is missing or cannot be replayed is in ``skipped`` with the reason.
    """
    check_name(name)
    with writer_lock(store_root):  # read, change, write: two adds at once must both land
        return _add_traces(store_root, name, trace_ids, get_trace, graders, tags, description, replace, pin)


def _add_traces(store_root, name, trace_ids, get_trace, graders, tags, description, replace, pin) -> AddOutcome:
    from tracelens.replay.request import ReplayError

    path = suite_path(store_root, name)
    suite = read_suite_file(path)[0] if path.is_file() else Suite(name=name, description=description)
    if description:
        suite.description = description
    out = AddOutcome(suite=suite)
    for tid in dict.fromkeys(trace_ids):
        trace = get_trace(tid)
        if trace is None:
            out.skipped[tid] = "no such trace in the store"
            continue
        try:
            case, notes = case_from_trace(trace, graders, tags, pin=pin)
        except ReplayError as e:
            out.skipped[tid] = str(e)
            continue
        existing = suite.case(case.id)
        if existing is not None and not replace:
            out.skipped[tid] = "already in the suite (use --replace to rebuild the case)"
            continue
        if existing is not None:
            suite.cases[suite.cases.index(existing)] = case
            out.replaced.append(case.id)
        else:
            suite.cases.append(case)
            out.added.append(case.id)
        if notes:
            out.notes[case.id] = notes
    if out.added or out.replaced:  # nothing added: no file (a failed add leaves no empty suite behind)
        out.path = save_suite(store_root, suite)
    return out
