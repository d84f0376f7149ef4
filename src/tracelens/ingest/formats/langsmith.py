"""LangSmith runs (``langsmith_runs``): run create/update payloads and bulk-export rows.

Accepted shapes:

* the batch-ingest body the SDKs send (``{"post": [run, ...], "patch":
  [run, ...]}``), as one JSON document or one per line;
* JSONL, or a JSON array, of run objects: recorded creates/updates, or rows of
  a bulk export / ``list runs`` (``{"runs": [...]}`` pages too).

A run create (post) and its later update (patch) share the run ``id`` (an
update without ``id``, as the JS SDK sends it, is matched by the run id that
ends its ``dotted_order``) and are merged into one run, later values winning.
A run is emitted as soon as it is complete, i.e. it has ``inputs`` and has
finished (``end_time``, ``outputs`` or ``error``); every other record of that
run is counted as ``Skipped`` ("merged into ..."), so a file's counts still
reconcile. Merging works **within one file**: across files, a create whose
update is in another file is ``Skipped`` ("without its update in this
file"), and an update without inputs likewise; ingest the records together
(one file, or concatenated) to get the trace. An update that carries the
inputs (JS SDK) is complete on its own.

``run_type: llm`` runs become traces; ``chain``/``tool``/``retriever``/
``prompt``/``parser``/``embedding`` runs are ``Skipped`` with the run type.
A run without ``run_type`` (an update) is judged by its siblings, else by
what it holds (``ls_model_name``, LLM-shaped outputs).

Content is read by the liberal readers shared with the span importers:
``inputs.messages`` in OpenAI or LangChain shapes (``{lc, type:
constructor, id: [..., "HumanMessage"], kwargs}``, ``{type: "human",
data}``, nested ``[[...]]`` batches), ``inputs.prompts``; outputs as an
OpenAI ``chat.completion`` (``wrap_openai``; ``usage_metadata`` tokens), an
Anthropic Message (``wrap_anthropic`` drops its ``type`` and may flatten tool
calls or nest it under ``message``: restored first), or a LangChain ``LLMResult`` (``generations[][]`` with
``message``/``text``/``generation_info``, ``llm_output``). ``trace_id`` is
``langsmith:<run id>``. Field mapping: docs/formats/langsmith.md.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tracelens.ingest.base import Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import attr_text, coerce_fields, safe_text
from tracelens.ingest.content import (
    as_dict,
    conversation,
    first,
    maybe_json,
    ms_between,
    nullish,
    params_fields,
    provider_name,
    request_body,
    request_settings,
    response_fields,
    string_list,
)
from tracelens.ingest.guard import each_record, isolate
from tracelens.ingest.normalize import (
    as_float,
    as_int,
    as_str,
    dumps,
    last_user_text,
    message,
    normalize_stop_reason,
    parse_timestamp,
    uncached_input,
)
from tracelens.ingest.readers import iter_json_values

_NOT_LLM = {"chain", "tool", "retriever", "prompt", "parser", "embedding"}
_DOTTED_TAIL = re.compile(r"(\d{8}T\d{6}\d*Z)([0-9a-fA-F-]{32,36})$")
_PROVIDERS = {"google_vertexai": "vertex", "vertexai": "vertex", "google_genai": "google", "amazon_bedrock": "bedrock",
              "bedrock_converse": "bedrock", "azure_openai": "azure", "azure": "azure", "mistralai": "mistral"}
_META_FIELDS = {"user_id": "user_id", "userId": "user_id", "user": "user_id", "session_id": "session_id",
                "sessionId": "session_id", "thread_id": "conversation_id", "threadId": "conversation_id",
                "conversation_id": "conversation_id", "conversationId": "conversation_id"}
_MODEL_KEYS = ("model", "model_name", "model_id", "modelId")
_ERROR_CLASS = re.compile(r"^\s*([A-Za-z_][\w.]*?(?:Error|Exception|Timeout|Exceeded|Denied|Failure))\b")
_MAX_ATTR = 512


def run_id(run: dict) -> str | None:
    """A run's id: ``id``, else the run id that ends its ``dotted_order``."""
    rid = as_str(run.get("id"))
    if rid:
        return rid
    d = run.get("dotted_order")
    if isinstance(d, str):
        m = _DOTTED_TAIL.search(d.rsplit(".", 1)[-1])
        if m:
            return m.group(2)
    return None


def _dotted_start(run: dict) -> dt.datetime | None:
    """Start time encoded in the last ``dotted_order`` segment (``20241013T070537170001Z<run id>``)."""
    d = run.get("dotted_order")
    if not isinstance(d, str):
        return None
    m = _DOTTED_TAIL.search(d.rsplit(".", 1)[-1])
    if not m:
        return None
    try:
        return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _time(v: Any) -> dt.datetime | None:
    if nullish(v):
        return None
    try:
        return parse_timestamp(v, "UTC")[0]  # LangSmith times are UTC (naive ones included)
    except RecordError:
        return None


def merge_run(base: dict, update: dict) -> dict:
    """Merge an update into a run: later non-empty values win; ``extra.metadata`` and ``events`` combine."""
    out = dict(base)
    for k, v in update.items():
        if v is None or (k in ("outputs", "inputs") and v == {} and out.get(k)):
            continue
        if k == "extra" and isinstance(v, dict) and isinstance(out.get("extra"), dict):
            ex = dict(out["extra"])
            for ek, ev in v.items():
                if isinstance(ev, dict) and isinstance(ex.get(ek), dict):
                    ex[ek] = {**ex[ek], **ev}
                elif ev is not None:
                    ex[ek] = ev
            out["extra"] = ex
        elif k == "events" and isinstance(v, list):
            if v:
                out["events"] = v
        else:
            out[k] = v
    return out


def _finished(run: dict) -> bool:
    return (not nullish(run.get("end_time")) or bool(run.get("outputs")) or not nullish(run.get("error"))
            or run.get("status") in ("success", "error"))


def _looks_llm(run: dict) -> bool | None:
    """True/False when the run's type is known or evident, None when it cannot be told yet."""
    rt = run.get("run_type")
    if isinstance(rt, str) and rt:
        return rt.lower() == "llm"
    meta = as_dict(as_dict(run.get("extra")).get("metadata"))
    if meta.get("ls_model_name") or meta.get("ls_provider"):
        return True
    out = as_dict(run.get("outputs"))
    if "generations" in out or "choices" in out or out.get("type") == "message":
        return True
    return None


# ---------------------------------------------------------------- outputs


def _plain_message(m: Any) -> Any:
    """A LangChain message (serialised constructor or ``{type, data}``) as a plain assistant message dict."""
    if isinstance(m, dict) and m.get("lc") is not None and isinstance(m.get("kwargs"), dict):
        return {**m["kwargs"], "role": "assistant"}
    if isinstance(m, dict) and isinstance(m.get("data"), dict) and m.get("type") in ("ai", "AIMessageChunk", "assistant"):
        return {**m["data"], "role": "assistant"}
    return m


def _unbatch(v: Any) -> Any:
    """LangChain batches: ``[[msg, ...]]`` (one prompt of a batch of one) -> ``[msg, ...]``."""
    while isinstance(v, list) and len(v) == 1 and isinstance(v[0], list):
        v = v[0]
    return v


def _langchain_input(usage: dict) -> int | None:
    """The schema's uncached ``input_tokens`` from LangChain ``usage_metadata`` (whose total includes the cache)."""
    details = as_dict(usage.get("input_token_details"))
    return uncached_input(usage.get("input_tokens"), details.get("cache_read"), details.get("cache_creation"))


def _generation_fields(outputs: dict) -> dict:
    """Response fields from a LangChain ``LLMResult`` (``generations``, ``llm_output``)."""
    gens = outputs.get("generations")
    g0: Any = gens
    while isinstance(g0, list):
        g0 = g0[0] if g0 else None
    g0 = g0 if isinstance(g0, dict) else {}
    msg = maybe_json(g0.get("message"))
    if msg is not None:
        out = response_fields(_plain_message(msg))
    else:
        out = {"response_text": as_str(g0.get("text")), "tool_calls": []}
    out.pop("response_raw", None)
    kw = msg.get("kwargs") if isinstance(msg, dict) and isinstance(msg.get("kwargs"), dict) else (
        msg if isinstance(msg, dict) else {})
    rmeta = as_dict(kw.get("response_metadata"))
    info = as_dict(g0.get("generation_info"))
    llm_out = as_dict(outputs.get("llm_output"))
    fin = first(info.get("finish_reason"), info.get("stop_reason"), rmeta.get("finish_reason"), rmeta.get("stop_reason"),
                rmeta.get("stopReason"))
    if fin is not None:
        out["stop_reason_raw"] = as_str(fin)
        out["stop_reason"] = normalize_stop_reason(as_str(fin))
    usage = as_dict(kw.get("usage_metadata"))
    tok = as_dict(first(llm_out.get("token_usage"), llm_out.get("usage"), rmeta.get("token_usage"), rmeta.get("usage")))
    details = as_dict(usage.get("input_token_details"))
    out.update({
        "model_returned": as_str(first(rmeta.get("model_name"), rmeta.get("model"), rmeta.get("model_id"),
                                       llm_out.get("model_name"), llm_out.get("model"), llm_out.get("model_id"))),
        "response_id": as_str(first(rmeta.get("id"), llm_out.get("id"))),
        # LangChain's usage_metadata.input_tokens and OpenAI's prompt_tokens include the cached tokens;
        # Anthropic's input_tokens (llm_output.usage of ChatAnthropic) does not
        "input_tokens": first(_langchain_input(usage),
                              uncached_input(tok.get("prompt_tokens"), as_dict(tok.get("prompt_tokens_details"))
                                             .get("cached_tokens")),
                              as_int(tok.get("input_tokens"))),
        "output_tokens": as_int(first(usage.get("output_tokens"), tok.get("completion_tokens"), tok.get("output_tokens"))),
        "cache_read_tokens": as_int(details.get("cache_read")),
        "cache_creation_tokens": as_int(details.get("cache_creation")),
        "_system_fingerprint": as_str(first(rmeta.get("system_fingerprint"), llm_out.get("system_fingerprint"))),
    })
    return out


def _wrapped_anthropic_message(v: dict) -> dict | None:
    """The Anthropic Message that ``wrap_anthropic`` recorded as ``outputs``, restored; None if it is not one.

    The wrapper stores ``Message.model_dump()`` without ``type`` (and without
    ``usage``, moved to ``usage_metadata``); recent versions also flatten
    ``tool_use`` blocks into an OpenAI-style ``tool_calls`` list with
    ``content`` the joined text, older ones nest it all under ``message``.
    Without this the generic reader sees no Message and loses the model and id.
    """
    m = v.get("message") if isinstance(v.get("message"), dict) and len(v) <= 2 else v
    if not (m.get("role") == "assistant" and isinstance(m.get("id"), str) and m["id"].startswith("msg")
            and isinstance(m.get("model"), str) and "stop_reason" in m and "choices" not in m):
        return None
    content = m.get("content")
    blocks: list = list(content) if isinstance(content, list) else (
        [{"type": "text", "text": content}] if isinstance(content, str) and content else [])
    for tc in m.get("tool_calls") or []:
        fn = as_dict(tc.get("function")) if isinstance(tc, dict) else {}
        args = maybe_json(fn.get("arguments"))
        blocks.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"),
                       "input": args if isinstance(args, dict) else {}})
    msg = {k: val for k, val in m.items() if k not in ("tool_calls", "usage_metadata")}
    return {**msg, "type": "message", "content": blocks}


def output_fields(outputs: Any) -> dict:
    """Response fields from a run's ``outputs`` in any of the shapes LangSmith SDKs record."""
    v = maybe_json(outputs)
    if nullish(v) or v == {}:
        return {}
    if isinstance(v, dict) and len(v) == 1 and "output" in v and nullish(v["output"]):
        return {}  # the wrappers' {"output": None} for a call that raised: no response, not the text '{"output":null}'
    if isinstance(v, dict) and "generations" in v:
        return _generation_fields(v)
    restored = _wrapped_anthropic_message(v) if isinstance(v, dict) else None
    if restored is not None:
        out = response_fields(restored)
        out["response_raw"] = outputs if isinstance(outputs, str) else dumps(v)  # as recorded, not as restored
        if isinstance(v.get("message"), dict) and "usage_metadata" not in v:
            v = v["message"]  # older wrappers: the usage is inside
    else:
        out = response_fields(v)
    if isinstance(v, dict):
        usage = as_dict(v.get("usage_metadata"))  # wrap_openai / wrap_anthropic put LangChain-style usage here
        details = as_dict(usage.get("input_token_details"))
        out["input_tokens"] = first(out.get("input_tokens"), _langchain_input(usage))
        out["output_tokens"] = first(out.get("output_tokens"), as_int(usage.get("output_tokens")))
        out["cache_read_tokens"] = first(out.get("cache_read_tokens") or None, as_int(details.get("cache_read")),
                                         out.get("cache_read_tokens"))
        out["cache_creation_tokens"] = first(out.get("cache_creation_tokens"), as_int(details.get("cache_creation")))
        if v.get("system_fingerprint"):
            out["_system_fingerprint"] = as_str(v["system_fingerprint"])
        if "output" in v and len(v) == 1 and isinstance(v["output"], dict | list):
            return output_fields(v["output"])  # {"output": <message>} wrappers
    return out


def _input_fields(inputs: Any) -> tuple[dict, str | None]:
    """(fields, request_raw) from a run's ``inputs``."""
    v = maybe_json(inputs)
    if isinstance(v, dict) and isinstance(v.get("prompts"), list) and "messages" not in v:
        msgs = [message("user", p if isinstance(p, str) else dumps(p)) for p in v["prompts"]]
        return {"messages": msgs, "prompt_text": last_user_text(msgs)}, None
    if isinstance(v, dict) and isinstance(v.get("input"), list | str) and "messages" not in v and "model" not in v:
        v = {"messages": v["input"] if isinstance(v["input"], list) else [v["input"]]}  # RunnableLambda-style wrappers
    if isinstance(v, dict) and isinstance(v.get("messages"), list):
        v = {**v, "messages": _unbatch(v["messages"])}
    system, msgs = conversation(v)
    fields: dict[str, Any] = {"system_prompt": system, "messages": msgs, "prompt_text": last_user_text(msgs)}
    if isinstance(v, dict):
        fields.update(request_settings(v))
        if isinstance(v.get("model"), str):
            fields["model_requested"] = v["model"]
    return fields, request_body(v)


# ---------------------------------------------------------------- run -> trace


def _error_type(err: str) -> str | None:
    m = _ERROR_CLASS.match(err)
    return m.group(1).rsplit(".", 1)[-1] if m else None


def run_record(run: dict, locator: str, n_records: int = 1) -> dict:
    """Trace fields from one complete (merged) LLM run (raises RecordError)."""
    rid = run_id(run)
    if not rid:
        raise RecordError("run has no 'id' (and no dotted_order to recover it from)")
    extra = as_dict(run.get("extra"))
    meta = as_dict(extra.get("metadata"))
    inv = as_dict(extra.get("invocation_params"))
    attrs: dict[str, str] = {"langsmith_run_id": rid}
    fields, req_raw = _input_fields(run.get("inputs"))
    try:
        out = output_fields(run.get("outputs"))
    except (TypeError, AttributeError, ValueError, KeyError) as e:  # wrong JSON types deep inside the outputs
        raise RecordError(f"run {rid}: outputs have an unexpected shape ({type(e).__name__}: {e})") from e
    fp = out.pop("_system_fingerprint", None)
    if fp:
        attrs["system_fingerprint"] = fp
    out.pop("_created", None)
    resp_raw = out.pop("response_raw", None)
    for k, v in out.items():
        if v is not None or k not in fields:
            fields[k] = v
    # sampling parameters: invocation params, then LangSmith's ls_* metadata, fill what the inputs lack
    inv_params = params_fields(inv)
    ls_params = params_fields({"temperature": meta.get("ls_temperature"), "max_tokens": meta.get("ls_max_tokens"),
                               "stop": meta.get("ls_stop")})
    for k in ("temperature", "top_p", "top_k", "max_tokens", "seed", "stop_sequences"):
        fields[k] = first(fields.get(k), inv_params.get(k), ls_params.get(k))
    if not fields.get("tool_definitions") and (inv.get("tools") or inv.get("functions")):
        fields["tool_definitions"] = dumps(inv.get("tools") or inv.get("functions"))
    fields["model_requested"] = as_str(first(fields.get("model_requested"), *(inv.get(k) for k in _MODEL_KEYS),
                                             meta.get("ls_model_name")))
    prov = as_str(first(meta.get("ls_provider"), inv.get("_type")))
    if prov:
        fields["provider"] = _PROVIDERS.get(prov.lower()) or provider_name(prov)
    start = _time(run.get("start_time")) or _dotted_start(run)
    end = _time(run.get("end_time"))
    if start is None and end is None:
        raise RecordError(f"run {rid} has no start_time, end_time or dotted_order to place it in time")
    fields["timestamp"] = start or end
    if start is None:
        attrs["timestamp_source"] = "end_time"
    fields["latency_ms"] = ms_between(start, end)
    first_token = _time(run.get("first_token_time"))
    streamed = False
    events = run.get("events") if isinstance(run.get("events"), list) else []
    for ev in events:
        if isinstance(ev, dict) and ev.get("name") == "new_token":
            streamed = True
            first_token = first_token or _time(ev.get("time"))
            break
    fields["time_to_first_token_ms"] = ms_between(start, first_token)
    if streamed or (isinstance(run.get("inputs"), dict) and run["inputs"].get("stream") is True):
        attrs["streamed"] = "true"
    # the run's prompt_tokens is LangSmith's total, cached tokens included
    fields["input_tokens"] = first(fields.get("input_tokens"), uncached_input(
        run.get("prompt_tokens"), fields.get("cache_read_tokens"), fields.get("cache_creation_tokens")))
    fields["output_tokens"] = first(fields.get("output_tokens"), as_int(run.get("completion_tokens")))
    fields["cost"] = as_float(run.get("total_cost"))
    err = run.get("error")
    if not nullish(err) or str(run.get("status") or "").lower() == "error":
        text = as_str(err) if not nullish(err) else None
        fields.update({"status": "error", "stop_reason": "error", "error_message": text,
                       "error_type": _error_type(text or "") or "error"})
    else:
        fields["status"] = "ok"
    for k, v in meta.items():
        if v is None or k in ("ls_model_name", "ls_provider", "ls_temperature", "ls_max_tokens", "ls_stop"):
            continue
        if k in _META_FIELDS and not fields.get(_META_FIELDS[k]):
            fields[_META_FIELDS[k]] = attr_text(v)
        else:
            s = attr_text(v)
            if len(s) <= _MAX_ATTR:
                attrs[f"metadata.{k}"] = s
    for src, name in (("name", "langsmith_run_name"), ("trace_id", "langsmith_trace_id"),
                      ("parent_run_id", "langsmith_parent_run_id"), ("session_id", "langsmith_project_id"),
                      ("reference_example_id", "langsmith_example_id")):
        if not nullish(run.get(src)):
            attrs[name] = attr_text(run[src])
    tags = string_list(run.get("tags"))
    if tags:
        attrs["tags"] = dumps(tags)
    if n_records > 1:
        attrs["langsmith_records_merged"] = str(n_records)
    fields.update({
        "app": as_str(run.get("session_name")) if not nullish(run.get("session_name")) else None,
        "request_raw": req_raw,
        "request_is_exact": False if req_raw else None,  # the SDK's view of the call, not the bytes sent
        "response_raw": resp_raw,
        "attributes": attrs,
        "source_locator": locator,
        "trace_id": f"langsmith:{rid}",
    })
    return coerce_fields(fields)


# ---------------------------------------------------------------- streaming merge


@dataclass
class _Pending:
    run: dict
    locators: list[str] = field(default_factory=list)


@dataclass
class RunMerger:
    """Merges the records of each run within one file and emits items as runs complete."""

    pending: dict[str, _Pending] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)  # run id -> locator of its trace
    skipped: dict[str, str] = field(default_factory=dict)  # run id -> skip reason (non-LLM runs)

    def add(self, run: Any, locator: str) -> Iterator[dict | Quarantined | Skipped]:
        """Take one run record: yield ``Quarantined`` for a non-object or a run without id, ``Skipped`` for records of
        non-LLM or already complete runs, and the trace (earlier records of the run ``Skipped`` as merged) once the
        merged run is an LLM call that has finished and has inputs; otherwise nothing yet.
        """
        if not isinstance(run, dict):
            yield Quarantined(locator, f"expected a run object, got {type(run).__name__}", safe_text(dumps(run)))
            return
        rid = run_id(run)
        if not rid:
            yield Quarantined(locator, "run has no 'id' (and no dotted_order to recover it from)", safe_text(dumps(run)))
            return
        if rid in self.skipped:
            yield Skipped(locator, self.skipped[rid])
            return
        if rid in self.done:
            yield Skipped(locator, f"record of run {rid} after the run was complete (stored from {self.done[rid]})")
            return
        p = self.pending.get(rid)
        if p is None:
            p = self.pending[rid] = _Pending({})
        p.run = merge_run(p.run, run)
        p.locators.append(locator)
        kind = _looks_llm(p.run)
        if kind is False:
            reason = f"LangSmith {p.run.get('run_type')} run (not an LLM call)"
            self.skipped[rid] = reason
            del self.pending[rid]
            for loc in p.locators:
                yield Skipped(loc, reason)
            return
        if kind and _finished(p.run) and "inputs" in p.run:
            yield from self._emit(rid, p)

    def _emit(self, rid: str, p: _Pending) -> Iterator[dict | Quarantined | Skipped]:
        del self.pending[rid]
        loc = p.locators[-1]
        for earlier in p.locators[:-1]:
            yield Skipped(earlier, f"merged into run {rid} (stored from {loc})")
        item = isolate(loc, p.run, lambda lc, run: run_record(run, lc, len(p.locators)))
        if isinstance(item, dict):
            self.done[rid] = loc
            item["_raw"] = None
        yield item

    def finish(self) -> Iterator[dict | Quarantined | Skipped]:
        """Account for runs still pending at the end of the file."""
        for rid, p in list(self.pending.items()):
            run = p.run
            if "inputs" not in run:
                reason = f"update of run {rid} without its create in this file (no inputs); ingest it with its create"
            elif not _finished(run):
                reason = (f"create of run {rid} without its update in this file (run unfinished, or the update is in "
                          "another file); ingest them together")
            else:
                reason = f"run {rid} has no run_type and nothing shows it is an LLM call"
            del self.pending[rid]
            for loc in p.locators:
                yield Skipped(loc, reason)


def _runs_of(locator: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(locator, run) pairs from one JSON value: a batch body, a runs page, a list, or a run."""
    if isinstance(value, dict) and ("post" in value or "patch" in value) and "id" not in value and "run_type" not in value:
        for op in ("post", "patch"):
            runs = value.get(op)
            if runs is None:
                continue
            if not isinstance(runs, list):
                yield f"{locator}/{op}", Quarantined(f"{locator}/{op}", f"'{op}' is not a list of runs", safe_text(dumps(runs)))
                continue
            for i, r in enumerate(runs):
                yield f"{locator}/{op}:{i}", r
    elif isinstance(value, dict) and isinstance(value.get("runs"), list) and "id" not in value:
        for i, r in enumerate(value["runs"]):
            yield f"{locator}/runs:{i}", r
    elif isinstance(value, list):
        for i, r in enumerate(value):
            yield f"{locator}/{i}", r
    else:
        yield locator, value


_SNIFF_RUN = re.compile(rb'"run_type"\s*:\s*"(llm|chain|tool|retriever|prompt|parser|embedding)"')
_SNIFF_DOTTED = re.compile(rb'"dotted_order"\s*:\s*"\d{8}T\d{6,}Z[0-9a-fA-F-]{32,36}')


class LangSmithRuns:
    """The ``langsmith_runs`` format: LangSmith run creates/updates and bulk-export rows, merged per run."""

    name = "langsmith_runs"
    description = "LangSmith runs: batch-ingest post/patch payloads, run JSONL, bulk-export rows"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is LangSmith runs: 0.9 for JSON with a ``run_type`` and a run key
        (``dotted_order``, ``trace_id``, ``session_name``, ``parent_run_id``) or with a LangSmith ``dotted_order``,
        else 0.
        """
        s = head.lstrip()
        if s[:1] not in (b"{", b"["):
            return 0.0
        w = s[:65536]
        if _SNIFF_RUN.search(w) and (b'"dotted_order"' in w or b'"trace_id"' in w or b'"session_name"' in w
                                     or b'"parent_run_id"' in w):
            return 0.9
        if _SNIFF_DOTTED.search(w):  # LangSmith's run ordering key: every SDK record carries it
            return 0.9
        return 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield one trace per LLM run (its create and update merged), ``Skipped`` for other runs and merged records,
        and at the end ``Skipped`` for runs left incomplete in the file.
        """
        merger = RunMerger()

        def items(locator: str, value: Any) -> Iterator[dict | Quarantined | Skipped]:
            runs = 0
            for loc, run in _runs_of(locator, value):
                runs += 1
                if isinstance(run, Quarantined):
                    yield run
                else:
                    # a run that breaks the merge costs only itself
                    yield from each_record(None, [(loc, run)], lambda lc, r: merger.add(r, lc), defer=True)
            if not runs:
                yield Skipped(locator, "record holds no runs")

        # a record may be emitted later, merged with its update: records are counted, not required to yield
        yield from each_record(source, iter_json_values(source.stream, source.head, source.path), items, defer=True)
        yield from merger.finish()


FORMATS = [LangSmithRuns()]
