"""Read promptfoo configs as task-eval cases, so teams can bring the suites they already have.

Contract:

* ``load_promptfoo(path) -> (cases, notes)``. Each prompt x test (x each combination of list-valued vars)
  becomes one ``Case`` whose ``request`` is an Anthropic Messages body ``{"max_tokens": 1024, "messages":
  [...]}`` (plus ``system`` when a chat prompt has system messages; ``model`` is left to the target). Case ids
  are the test's ``description`` (else its 1-based position), with ``/<prompt number>`` when the config has
  several prompts and ``~N`` when an id repeats. ``metadata`` scalars become tags; ``description`` the case
  description. ``notes`` lists what was read but ignored (``providers``: targets are chosen with
  ``--target``; grading ``provider`` options; test ``threshold``).
* Prompts: strings with ``{{ var }}`` placeholders (dotted lookups and the ``dump``, ``upper``, ``lower``,
  ``trim`` and ``join`` filters; other filters and ``{% %}`` tags are a ``SuiteError`` naming the template),
  ``{raw|id, label}`` objects, and ``file://`` references (globs allowed) to ``.txt``/``.md`` (``---``
  separates several prompts) or ``.json``/``.yaml`` chat prompts (a list of ``{role, content}``). No
  ``prompts`` means promptfoo's ``{{prompt}}``.
* Tests: an inline list, or ``file://`` YAML/JSON/JSONL/CSV files; ``defaultTest`` (inline or ``file://``) is
  merged into every test (its vars under the test's, its asserts first unless the test sets
  ``options.disableDefaultAsserts``). CSV columns are vars except promptfoo's ``__expected[N]`` (``type:
  value``, ``type(threshold): value``, plain text = ``equals``), ``__description``, ``__metadata:<key>``,
  ``__metric``, ``__prefix`` and ``__suffix``. Var values may be ``file://`` text, YAML or JSON files.
* Asserts map onto ``tracelens.evals.graders`` types (see ``ASSERT_MAP`` and docs/evals-graders.md), keeping
  promptfoo's semantics where ours differ by default (``equals`` compares exactly; ``similar`` defaults to
  0.75; ``llm-rubric`` without a threshold passes on the judge's ``pass`` alone). ``weight`` is carried and
  ``metric`` becomes the grader's name. An unsupported assertion type (``javascript``, ``webhook``,
  ``cost``, ``perplexity``, ...) or option (``transform``) is a ``SuiteError`` naming the type, the file and
  line, and what to use instead.
* ``yaml_lines(text)`` maps each path of a YAML document (tuples of keys and list indexes) to its 1-based
  line, so errors can point at the line; ``line_of`` finds the nearest known line for a path.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tracelens.evals.graders import SuiteError, parse_grader
from tracelens.evals.model import Case, GraderSpec

MAX_TOKENS = 1024
DEFAULT_PROMPT = "{{prompt}}"
PROVIDERS_NOTE = "providers in the config are ignored: choose targets with --target"

# ---------------------------------------------------------------- YAML lines


def yaml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """1-based line of every node of a YAML document, keyed by its path (mapping keys and list indexes);
    a mapping entry's line is its key's. ``{}`` for a document that does not compose."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[tuple[Any, ...], int] = {}
    if root is None:
        return out

    def walk(node: yaml.Node, path: tuple[Any, ...], line: int) -> None:
        out[path] = line
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, path + (key.value,), key.start_mark.line + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, path + (i,), item.start_mark.line + 1)

    walk(root, (), root.start_mark.line + 1)
    return out


def line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    """The line of ``path``, else of its nearest ancestor in ``lines``; None when nothing is known."""
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


class _Doc:
    """One file of the config (the config itself, a tests file): its name, folder and line map."""

    def __init__(self, path: Path, text: str | None = None):
        self.path = path
        self.name = path.name
        self.dir = path.parent
        self.lines = yaml_lines(text) if text is not None and path.suffix.lower() in (".yaml", ".yml") else {}

    def where(self, path: tuple[Any, ...]) -> str:
        """``<file> line N, tests[0].assert[1]`` for a path of this document."""
        line = line_of(self.lines, path)
        dotted = ""
        for p in path:
            dotted += f"[{p}]" if isinstance(p, int) else (f".{p}" if dotted else str(p))
        loc = f"{self.name} line {line}" if line else self.name
        return f"{loc}, {dotted}" if dotted else loc


# ---------------------------------------------------------------- templates

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPR = re.compile(r"^\s*([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*|\[\d+\])*)\s*((?:\|\s*[A-Za-z_]\w*\s*(?:\([^)]*\))?\s*)*)$")
_FILTER = re.compile(r"\|\s*([A-Za-z_]\w*)\s*(?:\(([^)]*)\))?")
FILTERS = ("dump", "upper", "lower", "trim", "join")


def _stringify(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _lookup(vars_: dict[str, Any], dotted: str) -> Any:
    obj: Any = vars_
    for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", dotted):
        if part.startswith("["):
            idx = int(part[1:-1])
            obj = obj[idx] if isinstance(obj, list) and idx < len(obj) else None
        else:
            obj = obj.get(part) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def render(template: str, vars_: dict[str, Any], where: str) -> str:
    """``{{ var }}`` substitution with the filters in ``FILTERS``; anything else is a ``SuiteError``."""
    if "{%" in template or "{#" in template:
        raise SuiteError(f"{where}: Nunjucks tags ({{% %}}, {{# #}}) are not supported in {_short(template)!r}: "
                         "use plain {{ var }} placeholders")

    def sub(m: re.Match[str]) -> str:
        e = _EXPR.match(m.group(1))
        if not e:
            raise SuiteError(f"{where}: unsupported template expression {{{{{m.group(1)}}}}} in "
                             f"{_short(template)!r} (supported: {{{{ name }}}}, {{{{ a.b }}}}, filters "
                             f"{', '.join(FILTERS)})")
        value = _lookup(vars_, e.group(1))
        for f in _FILTER.finditer(e.group(2) or ""):
            name, args = f.group(1), f.group(2)
            if name not in FILTERS:
                raise SuiteError(f"{where}: unsupported filter '{name}' in {_short(template)!r} "
                                 f"(supported: {', '.join(FILTERS)})")
            if name == "dump":
                value = json.dumps(value, ensure_ascii=False)
            elif name == "join":
                sep = (args or "''").strip().strip("'\"") if args is not None else ""
                value = sep.join(_stringify(x) for x in value) if isinstance(value, list) else value
            else:
                s = _stringify(value)
                value = s.upper() if name == "upper" else s.lower() if name == "lower" else s.strip()
        return _stringify(value)

    return _TAG.sub(sub, template)


def _short(s: str, n: int = 60) -> str:
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "…"


def _render_deep(obj: Any, vars_: dict[str, Any], where: str) -> Any:
    if isinstance(obj, str):
        return render(obj, vars_, where)
    if isinstance(obj, list):
        return [_render_deep(x, vars_, where) for x in obj]
    if isinstance(obj, dict):
        return {k: _render_deep(v, vars_, where) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------- files


def _file_ref(value: Any) -> str | None:
    return value[len("file://"):] if isinstance(value, str) and value.startswith("file://") else None


def _paths(ref: str, base: Path, where: str) -> list[Path]:
    p = Path(ref).expanduser()
    full = p if p.is_absolute() else base / p
    if any(c in ref for c in "*?["):
        found = sorted(Path(x) for x in glob.glob(str(full), recursive=True))
        if not found:
            raise SuiteError(f"{where}: no file matches file://{ref}")
        return found
    if not full.is_file():
        raise SuiteError(f"{where}: file://{ref} not found (looked for {full})")
    return [full]


def _read_structured(path: Path, where: str) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise SuiteError(f"{where}: cannot parse {path.name}: {_short(str(e), 160)}") from e


# ---------------------------------------------------------------- prompts


def _chat(obj: Any) -> list[dict[str, Any]] | None:
    if isinstance(obj, list) and obj and all(isinstance(m, dict) and "role" in m and "content" in m for m in obj):
        return obj
    return None


def _prompt_from_text(text: str) -> tuple[str, Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            chat = _chat(json.loads(stripped))
        except ValueError:
            chat = None
        if chat is not None:
            return "chat", chat
    return "text", text


def _load_prompts(raw: Any, doc: _Doc) -> list[tuple[str, Any, str]]:
    """(kind, template, where) per prompt; kind ``text`` (a string) or ``chat`` (a list of messages)."""
    if raw is None:
        return [("text", DEFAULT_PROMPT, doc.where(()))]
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, Any, str]] = []
    for i, item in enumerate(items):
        where = doc.where(("prompts", i) if isinstance(raw, list) else ("prompts",))
        if isinstance(item, dict):
            item = item.get("raw", item.get("id"))
        if not isinstance(item, str):
            raise SuiteError(f"{where}: a prompt must be a string, a file:// reference or {{raw|id, label}}")
        ref = _file_ref(item)
        if ref is None:
            for prefix in ("exec:", "langfuse://", "portkey://", "helicone://"):
                if item.startswith(prefix):
                    raise SuiteError(f"{where}: {prefix} prompts are not supported: export the prompt text to a "
                                     ".txt or .json file and reference it with file://")
            kind, tpl = _prompt_from_text(item)
            out.append((kind, tpl, where))
            continue
        for path in _paths(ref.split(":", 1)[0] if re.search(r"\.(py|js|ts):", ref) else ref, doc.dir, where):
            suffix = path.suffix.lower()
            if suffix in (".json", ".yaml", ".yml"):
                chat = _chat(_read_structured(path, where))
                if chat is None:
                    raise SuiteError(f"{where}: {path.name} must hold a chat prompt (a list of {{role, content}})")
                out.append(("chat", chat, f"{where} ({path.name})"))
            elif suffix in (".txt", ".md", ".j2", ".prompt", ""):
                text = path.read_text(encoding="utf-8")
                for part in re.split(r"\n-{3,}\n", text):
                    if part.strip():
                        kind, tpl = _prompt_from_text(part.strip("\n"))
                        out.append((kind, tpl, f"{where} ({path.name})"))
            else:
                raise SuiteError(f"{where}: {suffix or path.name} prompt files are not supported (use .txt, .md, "
                                 ".json or .yaml): generated prompts cannot be replayed as fixed requests")
    return out


def _request(kind: str, tpl: Any, vars_: dict[str, Any], where: str, prefix: str, suffix: str) -> dict[str, Any]:
    if kind == "text":
        text = prefix + render(tpl, vars_, where) + suffix
        return {"max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": text}]}
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for msg in tpl:
        role = msg.get("role")
        content = _render_deep(msg.get("content"), vars_, where)
        if role == "system":
            system.append(content if isinstance(content, str) else json.dumps(content))
        elif role in ("user", "assistant"):
            messages.append({"role": role, "content": content})
        else:
            raise SuiteError(f"{where}: chat role {role!r} is not supported (system, user, assistant)")
    if not messages:
        raise SuiteError(f"{where}: the chat prompt has no user message")
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user") if any(
        m["role"] == "user" for m in messages) else None
    if last_user is not None and (prefix or suffix) and isinstance(messages[last_user]["content"], str):
        messages[last_user]["content"] = prefix + messages[last_user]["content"] + suffix
    body: dict[str, Any] = {"max_tokens": MAX_TOKENS, "messages": messages}
    if system:
        body["system"] = "\n\n".join(system)
    return body


# ---------------------------------------------------------------- assertions

UNSUPPORTED: dict[str, str] = {
    "javascript": "rewrite it as a python grader (type: python)",
    "webhook": "call your service from a python grader (type: python)",
    "cost": "tracelens reports each run's cost itself; remove the assertion",
    "perplexity": "the Messages API returns no log-probabilities; remove the assertion",
    "perplexity-score": "the Messages API returns no log-probabilities; remove the assertion",
    "levenshtein": "use similar, or a python grader",
    "rouge-n": "use similar, or a python grader",
    "bleu": "use similar, or a python grader",
    "gleu": "use similar, or a python grader",
    "meteor": "use similar, or a python grader",
    "factuality": "use llm-rubric with the expected facts in the rubric",
    "model-graded-closedqa": "use llm-rubric",
    "answer-relevance": "use llm-rubric",
    "g-eval": "use llm-rubric",
    "select-best": "compare targets with tracelens eval runs instead",
    "assert-set": "list the assertions directly",
    "not-similar": "use not-contains or a python grader",
    "not-is-json": "use a python grader",
    "not-equals": "use not-regex",
    "is-valid-openai-tools-call": "use tool-call graders in a tracelens suite",
    "is-valid-function-call": "use tool-call graders in a tracelens suite",
    "tool-call-f1": "use tool-call graders in a tracelens suite",
}


def _csv_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v.strip() for v in next(csv.reader([value], skipinitialspace=True)) if v.strip()]
    return value


def _anchored(value: Any) -> str:
    return r"\A" + re.escape(_stringify(value))


class UnsupportedError(SuiteError):
    """A promptfoo feature tracelens cannot run (JavaScript, transforms, ...): skippable with ``skip_unsupported``."""


def map_assert(a: dict[str, Any], vars_: dict[str, Any], doc: _Doc, path: tuple[Any, ...],
               test_vars: dict[str, Any]) -> dict[str, Any]:
    """One promptfoo assertion as a tracelens grader object (not yet validated)."""
    where = doc.where(path)
    t = a.get("type")
    if not isinstance(t, str):
        raise SuiteError(f"{where}.type: every assertion needs a type")
    if "transform" in a:
        raise UnsupportedError(f"{doc.where(path + ('transform',))}: assertion transforms are JavaScript and not "
                         "supported: grade the raw answer (e.g. with a python grader)")
    value = _render_deep(a.get("value"), vars_, where)
    ref = _file_ref(value)
    if ref is not None and t not in ("python",):
        files = _paths(ref, doc.dir, where)
        value = _read_structured(files[0], where) if files[0].suffix.lower() in (".json", ".yaml", ".yml") else \
            files[0].read_text(encoding="utf-8")
    thr = a.get("threshold")
    g: dict[str, Any]
    lower = t.lower()
    if lower in ("equals",):
        g = {"type": "equals", "value": value, "strip": False}
    elif lower in ("contains", "icontains", "not-contains", "not-icontains"):
        g = {"type": "not-contains" if lower.startswith("not-") else "contains", "value": value}
        if "icontains" in lower:
            g["case_sensitive"] = False
    elif re.fullmatch(r"(not-)?i?contains-(any|all)", lower):
        g = {"type": "not-contains" if lower.startswith("not-") else "contains", "value": _csv_list(value),
             "mode": "any" if lower.endswith("any") else "all"}
        if "icontains" in lower:
            g["case_sensitive"] = False
    elif lower in ("starts-with", "not-starts-with"):
        g = {"type": "not-regex" if lower.startswith("not-") else "regex", "pattern": _anchored(value)}
    elif lower in ("regex", "not-regex"):
        g = {"type": lower, "pattern": value}
    elif lower in ("is-json", "contains-json"):
        extract = lower == "contains-json"
        g = {"type": "json-schema", "schema": value} if value is not None else {"type": "json"}
        if extract:
            g["extract"] = True
    elif lower in ("similar", "similar:cosine"):
        g = {"type": "similar", "threshold": 0.75 if thr is None else thr}
        if value is not None:
            g["value"] = value
    elif lower == "llm-rubric":
        g = {"type": "llm-judge", "rubric": value, "threshold": 0 if thr is None else thr}
        provider = a.get("provider")
        if isinstance(provider, str) and provider.startswith("anthropic:"):
            g["model"] = provider.rsplit(":", 1)[-1]
    elif lower == "python":
        g = {"type": "python", "value": _python_value(value, doc, where)}
        if thr is not None:
            g["threshold"] = thr
        if isinstance(a.get("config"), dict):
            g["config"] = a["config"]
        if test_vars:
            g["vars"] = test_vars
    elif lower in ("is-refusal", "not-is-refusal"):
        g = {"type": "not-refused" if lower.startswith("not-") else "refused"}
    elif lower == "latency":
        if thr is None:
            raise SuiteError(f"{where}.threshold: latency needs a threshold in milliseconds")
        g = {"type": "latency", "max_ms": thr}
    else:
        hint = UNSUPPORTED.get(lower, "supported: " + ", ".join(ASSERT_MAP))
        raise UnsupportedError(f"{doc.where(path + ('type',))}: promptfoo assertion type {t!r} is not supported: "
                               f"{hint}")
    if "weight" in a:
        g["weight"] = a["weight"]
    if a.get("metric"):
        g["name"] = str(a["metric"])
    return g


def _python_value(value: Any, doc: _Doc, where: str) -> str:
    if not isinstance(value, str):
        raise SuiteError(f"{where}.value: a python assertion needs code or a file:// reference")
    ref = _file_ref(value)
    if ref is None:
        return value
    file_part, _, func = ref.partition(":") if not re.match(r"^[A-Za-z]:[\\/]", ref) else (ref, "", "")
    path = _paths(file_part, doc.dir, where)[0]
    return f"{path.resolve()}:{func or 'get_assert'}"


ASSERT_MAP: dict[str, str] = {
    "equals": "equals (exact, strip: false)", "contains": "contains", "icontains": "contains, case_sensitive: false",
    "not-contains": "not-contains", "not-icontains": "not-contains, case_sensitive: false",
    "contains-any": "contains, mode: any", "contains-all": "contains, mode: all",
    "icontains-any": "contains, mode: any, case_sensitive: false",
    "icontains-all": "contains, mode: all, case_sensitive: false",
    "not-contains-any": "not-contains, mode: any", "not-contains-all": "not-contains, mode: all",
    "starts-with": "regex \\A<escaped value>", "not-starts-with": "not-regex", "regex": "regex",
    "not-regex": "not-regex", "is-json": "json, or json-schema when a schema is given",
    "contains-json": "json / json-schema with extract: true", "similar": "similar (threshold 0.75 by default)",
    "llm-rubric": "llm-judge (threshold 0 by default: the judge's pass decides)", "python": "python",
    "is-refusal": "refused", "not-is-refusal": "not-refused", "latency": "latency (threshold -> max_ms)",
}


# ---------------------------------------------------------------- tests

CSV_META = re.compile(r"^__metadata:(.+?)(\[\])?$")
CSV_EXPECTED = re.compile(r"^__expected\d*$")
_EXPECTED_VALUE = re.compile(r"^(?P<type>[a-z][a-z0-9:-]*)(?:\((?P<thr>[0-9.]+)\))?\s*:\s?(?P<value>.*)$", re.DOTALL)


def _csv_assert(text: str) -> dict[str, Any]:
    m = _EXPECTED_VALUE.match(text.strip())
    if not m or m.group("type").lower() not in ASSERT_MAP and m.group("type").lower() not in UNSUPPORTED:
        return {"type": "equals", "value": text}
    a: dict[str, Any] = {"type": m.group("type")}
    a["value"] = m.group("value").strip()
    if m.group("thr"):
        a["threshold"] = float(m.group("thr"))
    if a["type"] == "latency":
        a["threshold"] = float(a["value"])
    return a


def _csv_tests(path: Path, where: str) -> list[tuple[dict[str, Any], str]]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    tests: list[tuple[dict[str, Any], str]] = []
    for n, row in enumerate(rows, start=2):
        test: dict[str, Any] = {"vars": {}, "assert": [], "metadata": {}, "options": {}}
        for col, val in row.items():
            if col is None:
                continue
            val = val or ""
            if CSV_EXPECTED.match(col):
                if val.strip():
                    test["assert"].append(_csv_assert(val))
            elif col == "__description":
                test["description"] = val
            elif (m := CSV_META.match(col)) is not None:
                test["metadata"][m.group(1)] = _csv_list(val) if m.group(2) else val
            elif col in ("__prefix", "__suffix"):
                test["options"][col[2:]] = val
            elif col == "__metric":
                for a in test["assert"]:
                    a.setdefault("metric", val)
                test["_metric"] = val
            elif col.startswith("__"):
                raise SuiteError(f"{path.name} row {n}, column {col}: not supported")
            else:
                test["vars"][col] = val
        if test.get("_metric"):
            for a in test["assert"]:
                a.setdefault("metric", test["_metric"])
        tests.append((test, f"{path.name} row {n}"))
    return tests


def _expand_tests(raw: Any, doc: _Doc) -> list[tuple[dict[str, Any], _Doc, tuple[Any, ...], str | None]]:
    """(test, its document, its path there, or a CSV row label) for every test of ``tests``."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[dict[str, Any], _Doc, tuple[Any, ...], str | None]] = []
    for i, item in enumerate(items):
        path = ("tests", i) if isinstance(raw, list) else ("tests",)
        where = doc.where(path)
        ref = _file_ref(item) if isinstance(item, str) else None
        if isinstance(item, dict) and "path" in item and _file_ref(item["path"]):
            ref = _file_ref(item["path"])
        if ref is None:
            if not isinstance(item, dict):
                raise SuiteError(f"{where}: a test must be an object or a file:// reference")
            out.append((item, doc, path, None))
            continue
        for fpath in _paths(ref, doc.dir, where):
            suffix = fpath.suffix.lower()
            if suffix == ".csv":
                sub = _Doc(fpath)
                out.extend((t, sub, (), label) for t, label in _csv_tests(fpath, where))
            elif suffix in (".yaml", ".yml", ".json", ".jsonl"):
                text = fpath.read_text(encoding="utf-8")
                sub = _Doc(fpath, text)
                data = _read_structured(fpath, where)
                data = data if isinstance(data, list) else [data]
                for j, t in enumerate(data):
                    if not isinstance(t, dict):
                        raise SuiteError(f"{sub.where((j,))}: a test must be an object")
                    out.append((t, sub, (j,), None))
            else:
                raise SuiteError(f"{where}: {suffix or fpath.name} test files are not supported (YAML, JSON, JSONL or "
                                 "CSV): generated tests cannot be read without running them")
    return out


def _load_vars(raw: Any, base: Path, where: str) -> dict[str, Any]:
    ref = _file_ref(raw)
    if ref is not None:
        merged: dict[str, Any] = {}
        for p in _paths(ref, base, where):
            data = _read_structured(p, where)
            if not isinstance(data, dict):
                raise SuiteError(f"{where}: {p.name} must hold an object of vars")
            merged.update(data)
        raw = merged
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: vars must be an object")
    out: dict[str, Any] = {}
    for key, val in raw.items():
        vref = _file_ref(val)
        if vref is not None:
            files = _paths(vref, base, f"{where}.{key}")
            suffix = files[0].suffix.lower()
            if suffix in (".py", ".js", ".ts", ".mjs", ".cjs"):
                raise SuiteError(f"{where}.{key}: scripted vars ({suffix}) are not supported: store the value")
            loaded = [(_read_structured(f, where) if f.suffix.lower() in (".json", ".yaml", ".yml")
                       else f.read_text(encoding="utf-8")) for f in files]
            val = loaded if len(loaded) > 1 else loaded[0]
        out[key] = val
    return out


def _combinations(vars_: dict[str, Any]) -> list[dict[str, Any]]:
    # lists of plain values expand, as in promptfoo; a list of objects (chat history) is one value
    keys = [k for k, v in vars_.items() if isinstance(v, list) and v and all(
        isinstance(x, str | int | float | bool) for x in v)]
    if not keys:
        return [vars_]
    combos = []
    for values in itertools.product(*(vars_[k] for k in keys)):
        combos.append({**vars_, **dict(zip(keys, values, strict=True))})
    return combos


def _tags(metadata: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    if isinstance(metadata, dict):
        for k, v in metadata.items():
            if isinstance(v, str | int | float | bool):
                tags[str(k)] = _stringify(v)
            elif isinstance(v, list) and all(isinstance(x, str) for x in v):
                tags[str(k)] = ",".join(v)
    return tags


TOP_LEVEL_ERRORS = {
    "scenarios": "expand the scenarios into tests",
    "nunjucksFilters": "custom Nunjucks filters cannot run here: render the values into vars",
    "redteam": "red-team configs generate their tests: run promptfoo redteam generate and import the result",
}


def load_promptfoo(path: str | Path, skip_unsupported: bool = False) -> tuple[list[Case], list[str]]:
    """The cases of a promptfoo config and notes on what was ignored (see the module docstring).

    ``skip_unsupported``: drop assertions tracelens cannot run (JavaScript, cost, ...) and tests whose output is
    transformed, each named in the notes, instead of rejecting the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SuiteError(f"{path}: cannot read: {e.strerror}") from e
    doc = _Doc(path, text if path.suffix.lower() != ".json" else None)
    try:
        config = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise SuiteError(f"{path.name}: not valid YAML/JSON: {_short(str(e), 200)}") from e
    if not isinstance(config, dict):
        raise SuiteError(f"{path.name}: a promptfoo config must be a mapping with prompts and tests")
    notes: list[str] = []
    for key, hint in TOP_LEVEL_ERRORS.items():
        if key in config:
            raise SuiteError(f"{doc.where((key,))}: {key} is not supported: {hint}")
    if config.get("providers") or config.get("targets"):
        notes.append(PROVIDERS_NOTE)
    prompts = _load_prompts(config.get("prompts"), doc)
    default = config.get("defaultTest") or {}
    default_doc, default_path = doc, ("defaultTest",)
    if _file_ref(default):
        fpath = _paths(_file_ref(default), doc.dir, doc.where(("defaultTest",)))[0]
        default_doc, default_path = _Doc(fpath, fpath.read_text(encoding="utf-8")), ()
        default = _read_structured(fpath, doc.where(("defaultTest",)))
    if not isinstance(default, dict):
        raise SuiteError(f"{doc.where(('defaultTest',))}: defaultTest must be an object")
    default_vars = _load_vars(default.get("vars"), default_doc.dir, default_doc.where(default_path + ("vars",)))
    tests = _expand_tests(config.get("tests") or [{}], doc)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for t_index, (test, tdoc, tpath, row) in enumerate(tests, start=1):
        twhere = row or tdoc.where(tpath)
        options = {**(default.get("options") or {}), **(test.get("options") or {})}
        transformed = [bad for bad in ("transform", "postprocess") if bad in options]
        if transformed:
            msg = (f"{twhere}.options.{transformed[0]}: output transforms are JavaScript and not supported: "
                   "grade the raw answer (e.g. with a python grader)")
            if not skip_unsupported:
                raise UnsupportedError(msg)
            _note(notes, f"skipped the test: {msg}")
            continue
        if "provider" in options:
            _note(notes, "grading provider options are ignored: choose the judge with --judge")
        if "threshold" in test or "threshold" in default:
            _note(notes, "test thresholds are ignored: a case passes when every grader passes")
        test_vars = _load_vars(test.get("vars"), tdoc.dir, row or tdoc.where(tpath + ("vars",)))
        all_vars = {**default_vars, **test_vars}
        asserts: list[tuple[dict[str, Any], _Doc, tuple[Any, ...]]] = []
        if not options.get("disableDefaultAsserts"):
            asserts += [(a, default_doc, default_path + ("assert", j)) for j, a in enumerate(default.get("assert") or [])]
        asserts += [(a, tdoc, tpath + ("assert", j)) for j, a in enumerate(test.get("assert") or [])]
        base_id = str(test.get("description") or t_index)
        combos = _combinations(all_vars)
        for c_index, combo in enumerate(combos, start=1):
            # vars may reference other vars ({{topic}} inside item): one rendering pass, as promptfoo does
            combo = {k: _compose(v, combo, f"{twhere}.vars.{k}") for k, v in combo.items()}
            graders = _graders(asserts, combo, test_vars, row, notes if skip_unsupported else None)
            for p_index, (kind, tpl, pwhere) in enumerate(prompts, start=1):
                request = _request(kind, tpl, combo, pwhere, str(options.get("prefix") or ""),
                                   str(options.get("suffix") or ""))
                cid = base_id + (f"#{c_index}" if len(combos) > 1 else "") + (f"/{p_index}" if len(prompts) > 1
                                                                                else "")
                seen[cid] = seen.get(cid, 0) + 1
                if seen[cid] > 1:
                    cid = f"{cid}~{seen[cid]}"
                tags = {**_tags(default.get("metadata")), **_tags(test.get("metadata"))}
                cases.append(Case(id=cid, request=request, graders=list(graders), tags=tags,
                                  description=test.get("description")))
    return cases, notes


def _compose(value: Any, vars_: dict[str, Any], where: str) -> Any:
    """A var rendered with the other vars; a value that is not a template we support (code, JSON with braces)
    stays as written rather than failing the import."""
    if not isinstance(value, str) or "{{" not in value:
        return value
    try:
        return render(value, vars_, where)
    except SuiteError:
        return value


def _graders(asserts: list[tuple[dict[str, Any], _Doc, tuple[Any, ...]]], vars_: dict[str, Any],
             test_vars: dict[str, Any], row: str | None, skipped: list[str] | None = None) -> list[GraderSpec]:
    """The graders of one test; with ``skipped`` (a notes list), unsupported assertions are noted there and left out."""
    specs = []
    for j, (a, adoc, apath) in enumerate(asserts):
        where = f"{row}, __expected[{j}]" if row else adoc.where(apath)
        if not isinstance(a, dict):
            raise SuiteError(f"{where}: an assertion must be an object with a type")
        try:
            obj = map_assert(a, vars_, adoc if not row else _RowDoc(row, adoc), apath, test_vars)
        except UnsupportedError as e:
            if skipped is None:
                raise
            _note(skipped, f"skipped: {e}")
            continue
        if obj.get("weight") == 0:
            raise SuiteError(f"{where}.weight: weight 0 (a metric that does not count) is not supported: tracelens "
                             "graders weigh more than 0")
        specs.append(parse_grader(obj, where))
    return specs


class _RowDoc(_Doc):
    """A CSV row: errors name the row instead of a YAML line."""

    def __init__(self, label: str, base: _Doc):
        self.path, self.name, self.dir, self.lines, self.label = base.path, base.name, base.dir, {}, label

    def where(self, path: tuple[Any, ...]) -> str:
        """The row's label (``tests.csv row 3``), whatever the path."""
        return self.label


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)
