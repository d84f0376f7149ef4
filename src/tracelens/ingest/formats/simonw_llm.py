"""simonw/llm ``logs.db`` (``simonw_llm``): the SQLite log of the ``llm`` CLI and library.

The database is opened read-only by path (``file:...?mode=ro``; the stream
is not used: SQLite needs random access, so stdin or a compressed copy is a
``FormatError`` that says so). Both generations of tables are read:

* **legacy** ``responses`` (one row per prompt/response), joined with
  ``conversations`` (its ``name`` -> ``attributes.conversation_name``),
  ``prompt_fragments``/``system_fragments``/``fragments`` (the prompt and
  system text as the model saw them, assembled the way ``llm`` does:
  prompt fragments then the prompt joined with newlines, system fragments
  then the system prompt joined with blank lines), ``tool_calls``,
  ``tool_results`` and ``tool_responses``/``tools`` when present. The
  messages sent are ``prompt_json`` when it holds them (OpenAI-style plugins
  store the exact ``messages``); otherwise the conversation is rebuilt from
  the earlier responses of the same conversation, as ``llm`` replays them
  (``attributes.messages_source`` says which).
* **current** content-addressed ``threads``/``turns``/``messages``/``parts``:
  each turn is one call; its input is the message chain from the root to
  ``parent_message_hash`` and its output the messages after it up to
  ``tip_message_hash``. Parts of type ``text`` (inline, or ``text_ref``
  fragment references resolved), ``tool_call`` and ``tool_result`` are read;
  ``reasoning`` and attachments are not text. ``system`` messages become the
  system prompt. A legacy response whose id is also a turn id is ``Skipped``
  (the turn is the newer copy).

``model_requested`` is ``model`` as ``llm`` names it (plugin prefixes such
as ``anthropic/`` included), ``model_returned`` is ``resolved_model`` when
set, else the ``model`` of ``response_json`` (llm-anthropic leaves
``resolved_model`` NULL). A whitespace-only text part beside other text is
dropped (llm-anthropic logs one after the answer); family, snapshot, alias flag and provider are derived from the id
without the plugin prefix. ``trace_id`` is ``llm:<response id>`` /
``llm:<turn id>`` (ULIDs, one id space). Field mapping:
docs/formats/simonw_llm.md.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from tracelens.ingest.base import FormatError, Quarantined, RecordError, Skipped, Source
from tracelens.ingest.coerce import coerce_fields
from tracelens.ingest.content import as_dict, conversation, first, maybe_json, nullish, params_fields
from tracelens.ingest.guard import each_record
from tracelens.ingest.normalize import (
    as_int,
    as_str,
    dumps,
    last_user_text,
    message,
    normalize_stop_reason,
    parse_timestamp,
    tool_call,
    uncached_input,
)
from tracelens.ingest.streams import local_copy
from tracelens.modelcatalog import default_catalog
from tracelens.modelid import parse_model_id

MAGIC = b"SQLite format 3\x00"
_TABLE = re.compile(rb'CREATE TABLE\s+["\[`]?(responses|turns|conversations|threads)["\]`]?\s*\(')
# Model-id prefixes that llm plugins put in front of the provider's own id -> provider.
_PLUGIN_PREFIX = {"anthropic": "anthropic", "openai": "openai", "gemini": "google", "vertex": "vertex",
                  "mistral": "mistral", "bedrock": "bedrock", "groq": "groq", "openrouter": "openrouter",
                  "ollama": "ollama", "deepseek": "deepseek", "xai": "xai", "grok": "xai", "perplexity": "perplexity",
                  "together": "together", "fireworks": "fireworks", "cohere": "cohere", "azure": "azure"}
_CACHE_LIMIT = 50_000


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r["name"] for r in conn.execute("select name from sqlite_master where type in ('table', 'view')")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r["name"] for r in conn.execute(f'pragma table_info("{table}")')}


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")  # a row with invalid UTF-8 must not end the whole read


def _row(cursor: sqlite3.Cursor, values: tuple) -> dict:
    """Rows as dicts; BLOBs where text belongs are decoded (llm writes text, a damaged row must still read)."""
    return {d[0]: (_text(v) if isinstance(v, bytes) else v) for d, v in zip(cursor.description, values, strict=True)}


def open_readonly(path: str) -> sqlite3.Connection:
    """Open ``path`` read-only; a read-only directory (no -shm possible) falls back to ``immutable=1``."""
    uri = f"file:{quote(os.path.abspath(path))}"
    last: Exception | None = None
    for params in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{params}", uri=True)
            conn.execute("select count(*) from sqlite_master").fetchone()
            conn.row_factory = _row
            conn.text_factory = _text
            return conn
        except sqlite3.DatabaseError as e:
            last = e
    raise FormatError(f"{path}: cannot open the SQLite database read-only: {last}")


# ---------------------------------------------------------------- shared


def model_identity(model: str | None, resolved: str | None) -> dict:
    """Family/snapshot/alias/provider from llm model ids, ignoring a plugin prefix like ``anthropic/``."""
    out: dict[str, Any] = {}
    provider = None

    def strip(m: str | None) -> str | None:
        nonlocal provider
        if not m or "/" not in m:
            return m
        head, rest = m.split("/", 1)
        if head.lower() in _PLUGIN_PREFIX:
            provider = provider or _PLUGIN_PREFIX[head.lower()]
            return rest
        return m

    req = parse_model_id(strip(model))
    ret = parse_model_id(strip(resolved))
    ident = ret or req
    if ident:
        out.update(model_family=ident.family, model_snapshot=ident.snapshot)
    if req is not None:
        # the shipped catalog decides (the plugin prefix is gone, so the id is one the catalog knows)
        out["model_is_alias"] = default_catalog().classify(req.raw, reported=ret is not None and ret.raw == req.raw).is_alias
    out["provider"] = provider or (ident.platform or ident.provider if ident else None)
    return out


def _stop(resp_json: Any) -> str | None:
    """The stop/finish reason anywhere a provider puts it in ``response_json``."""
    v = maybe_json(resp_json)
    if not isinstance(v, dict):
        return None
    nodes = [v]
    for k in ("choices", "candidates"):
        if isinstance(v.get(k), list) and v[k] and isinstance(v[k][0], dict):
            nodes.append(v[k][0])
    for n in nodes:
        for k in ("finish_reason", "stop_reason", "stopReason", "finishReason", "done_reason"):
            if isinstance(n.get(k), str) and n[k]:
                return n[k]
    return None


def _tokens(input_tokens: Any, details: Any) -> dict:
    """Token fields from the row's ``input_tokens`` and ``token_details``.

    The plugins store the provider's own input count: Anthropic's excludes the
    cache (``cache_read_input_tokens`` beside it), OpenAI's and Gemini's include
    the cached tokens they name (``cached_tokens``, ``cachedContentTokenCount``),
    which are subtracted to give the schema's uncached ``input_tokens``.
    """
    d = as_dict(details)
    ptd = as_dict(d.get("prompt_tokens_details"))
    included = first(d.get("cached_tokens"), ptd.get("cached_tokens"), d.get("cachedContentTokenCount"))
    anthropic_read = d.get("cache_read_input_tokens")
    return {
        "input_tokens": as_int(input_tokens) if anthropic_read is not None else uncached_input(input_tokens, included),
        "cache_read_tokens": as_int(first(anthropic_read, included)),
        "cache_creation_tokens": as_int(d.get("cache_creation_input_tokens")),
    }


def _common(row: dict, cols: set[str]) -> dict:
    """Fields shared by a legacy response row and a turn row."""
    def g(k: str) -> Any:
        return row[k] if k in cols else None

    resp_json = g("response_json")
    stop = _stop(resp_json)
    rj = maybe_json(resp_json)
    opts = as_dict(g("options_json"))
    ts_raw = g("datetime_utc")
    if nullish(ts_raw):
        raise RecordError("row has no datetime_utc")
    ts, _ = parse_timestamp(ts_raw, "UTC")  # llm writes UTC, with or without an offset
    attrs: dict[str, str] = {}
    if not nullish(g("token_details")):
        attrs["token_details"] = str(g("token_details"))
    if not nullish(g("schema_id")):
        attrs["schema_id"] = str(g("schema_id"))
    if not nullish(g("reasoning")):
        attrs["reasoning_logged"] = "true"
    if opts:
        attrs["options"] = dumps(opts)
    # llm-anthropic leaves resolved_model NULL; the provider's own answer still names the model
    returned = as_str(g("resolved_model")) if not nullish(g("resolved_model")) else None
    if returned is None and isinstance(rj, dict) and isinstance(rj.get("model"), str) and rj["model"]:
        returned = rj["model"]
    return {
        "timestamp": ts,
        "model_requested": as_str(g("model")),
        "model_returned": returned,
        **model_identity(as_str(g("model")), returned),
        **{k: v for k, v in params_fields(opts).items() if k != "service_tier"},
        "output_tokens": as_int(g("output_tokens")),
        **_tokens(g("input_tokens"), g("token_details")),
        "latency_ms": float(g("duration_ms")) if isinstance(g("duration_ms"), int | float) else None,
        "stop_reason_raw": stop,
        "stop_reason": normalize_stop_reason(stop),
        "response_id": as_str(rj.get("id")) if isinstance(rj, dict) and isinstance(rj.get("id"), str) else None,
        "response_raw": as_str(resp_json) if not nullish(resp_json) else None,
        "status": "ok",
        "attributes": attrs,
    }


def _tool_defs(rows: list[dict]) -> str | None:
    if not rows:
        return None
    defs = []
    for r in rows:
        d: dict[str, Any] = {"name": r["name"]}
        if r["description"] is not None:
            d["description"] = r["description"]
        schema = maybe_json(r["input_schema"])
        if schema is not None:
            d["input_schema"] = schema
        defs.append(d)
    return dumps(defs)


# ---------------------------------------------------------------- legacy responses


class _Legacy:
    def __init__(self, conn: sqlite3.Connection, tables: set[str]):
        self.conn = conn
        self.tables = tables
        self.cols = _columns(conn, "responses")
        self.has_frag = {"fragments", "prompt_fragments"} <= tables
        self.has_sysfrag = {"fragments", "system_fragments"} <= tables
        self.has_calls = "tool_calls" in tables
        self.has_results = "tool_results" in tables
        self.has_tools = {"tools", "tool_responses"} <= tables

    def _fragments(self, table: str, rid: str) -> list[str]:
        q = (f'select f.content from {table} pf join fragments f on f.id = pf.fragment_id '
             f'where pf.response_id = ? order by pf."order"')
        return [r["content"] or "" for r in self.conn.execute(q, (rid,))]

    def prompt_text(self, row: dict) -> tuple[str | None, str | None]:
        """(prompt, system) as the model saw them: fragments first, joined the way llm joins them."""
        prompt, system = row["prompt"], row["system"] if "system" in self.cols else None
        frags = self._fragments("prompt_fragments", row["id"]) if self.has_frag else []
        sfrags = self._fragments("system_fragments", row["id"]) if self.has_sysfrag else []
        if frags:
            prompt = "\n".join(frags + ([prompt] if prompt else []))
        if sfrags:
            bits = [b.strip() for b in sfrags + [system or ""] if b and b.strip()]
            system = "\n\n".join(bits) or None
        return prompt, system

    def calls(self, rid: str) -> list[dict]:
        """Tool calls of response ``rid``, in id order; [] when the database has no ``tool_calls`` table."""
        if not self.has_calls:
            return []
        return [tool_call(r["tool_call_id"], r["name"], r["arguments"])
                for r in self.conn.execute("select * from tool_calls where response_id = ? order by id", (rid,))]

    def results(self, rid: str) -> list[dict]:
        """Tool results sent with response ``rid`` as ``tool`` messages (an exception appended to the output), in id
        order.
        """
        if not self.has_results:
            return []
        out = []
        for r in self.conn.execute("select * from tool_results where response_id = ? order by id", (rid,)):
            text = r["output"]
            if r.get("exception"):
                text = f"{text or ''}\n[exception] {r['exception']}".strip()
            out.append(message("tool", text, tool_call_id=r["tool_call_id"], name=r["name"]))
        return out

    def tools(self, rid: str) -> str | None:
        """Definitions of the tools offered to response ``rid`` as JSON text; None when there are none."""
        if not self.has_tools:
            return None
        q = ("select t.name, t.description, t.input_schema from tool_responses tr join tools t on t.id = tr.tool_id "
             "where tr.response_id = ? order by t.id")
        return _tool_defs(list(self.conn.execute(q, (rid,))))

    def rows(self) -> Iterator[tuple[dict, str | None]]:
        """Every ``responses`` row with its conversation's name (None when none), by conversation, time and id."""
        conv = "conversations" in self.tables
        q = ("select r.*, c.name as _conversation_name from responses r left join conversations c "
             "on c.id = r.conversation_id" if conv else "select r.*, null as _conversation_name from responses r")
        q += " order by r.conversation_id, r.datetime_utc, r.id"
        for r in self.conn.execute(q):
            yield r, r["_conversation_name"]


def legacy_records(legacy: _Legacy, turn_ids: set[str], source: Source | None = None
                   ) -> Iterator[dict | Quarantined | Skipped]:
    """Yield one item per row of the legacy ``responses`` table, in conversation order.

    Each conversation's earlier turns make the messages when ``prompt_json`` has none; a response whose id is in
    ``turn_ids`` is ``Skipped`` (it is stored from the turns table).
    """
    state = {"history": [], "conv": object()}
    cols = legacy.cols | {"_conversation_name"}

    def item(loc: str, pair: tuple[dict, str | None]) -> dict | Skipped:
        row, conv_name = pair
        rid = str(row["id"])
        conv_id = row["conversation_id"] if "conversation_id" in cols else None
        if conv_id != state["conv"] or conv_id is None:
            state["history"], state["conv"] = [], conv_id
        history: list[dict] = state["history"]
        prompt, system = legacy.prompt_text(row)
        calls = legacy.calls(rid)
        results = legacy.results(rid)
        response = row["response"]
        turn = results + ([message("user", prompt)] if prompt else [])
        assistant = message("assistant", response, calls)
        if rid in turn_ids:
            history += turn + [assistant]
            return Skipped(loc, f"response {rid} is also logged in the turns table (stored from turns:{rid})")
        fields = _common(row, cols)
        pj = maybe_json(row["prompt_json"]) if "prompt_json" in cols else None
        if isinstance(pj, dict) and isinstance(pj.get("messages"), list) and pj["messages"]:
            psys, msgs = conversation(pj)
            system = system or psys
            fields["attributes"]["messages_source"] = "prompt_json"
            fields["request_raw"] = row["prompt_json"]
            fields["request_is_exact"] = False  # the messages sent, not the whole request body
        else:
            msgs = history + turn
            fields["attributes"]["messages_source"] = "reconstructed" if history else "prompt"
        if conv_name:
            fields["attributes"]["conversation_name"] = str(conv_name)
        fields.update({
            "system_prompt": system if system else None,
            "messages": msgs,
            "prompt_text": last_user_text(msgs) or prompt,
            "response_text": response,
            "tool_calls": calls,
            "tool_definitions": legacy.tools(rid),
            "conversation_id": as_str(conv_id),
            "source_locator": loc,
            "trace_id": f"llm:{rid}",
        })
        if calls and fields.get("stop_reason") is None:
            fields["stop_reason"] = "tool_use"
        history += turn + [assistant]
        rec = coerce_fields(fields)
        rec["_raw"] = None
        return rec

    rows = ((f"responses:{row['id']}", (row, conv_name)) for row, conv_name in legacy.rows())
    return each_record(source, rows, item, raw=lambda pair: _row_text(pair[0]))


def _row_text(row: dict) -> str:
    return json.dumps(dict(row), default=str)


# ---------------------------------------------------------------- turns / messages / parts


class _Store:
    """Reads messages and their parts from the content-addressed tables, with a bounded cache."""

    def __init__(self, conn: sqlite3.Connection, tables: set[str]):
        self.conn = conn
        self.has_frag = {"part_fragments", "fragments"} <= tables
        self.cache: dict[str, list[dict]] = {}
        self.frag_cache: dict[int, str] = {}

    def chain(self, tip: str) -> list[dict]:
        """Messages from the root to ``tip`` (inclusive), in order."""
        q = ("with recursive chain(hash, parent_hash, role, depth) as ("
             " select hash, parent_hash, role, 0 from messages where hash = ?"
             " union all select m.hash, m.parent_hash, m.role, c.depth + 1 from messages m"
             " join chain c on m.hash = c.parent_hash where c.depth < 100000)"
             " select hash, parent_hash, role from chain order by depth desc")
        return list(self.conn.execute(q, (tip,)))

    def _fragment(self, fid: Any) -> str:
        key = as_int(fid)
        if key is None:
            return ""
        if key not in self.frag_cache:
            r = self.conn.execute("select content from fragments where id = ?", (key,)).fetchone()
            self.frag_cache[key] = (r["content"] or "") if r else ""
        return self.frag_cache[key]

    def _part_text(self, p: dict, payload: dict) -> str | None:
        if p["text"] is not None:
            return p["text"]
        ref = payload.get("text_ref")
        if isinstance(ref, list):
            out = []
            for seg in ref:
                if isinstance(seg, dict) and "fragment" in seg:
                    out.append(self._fragment(seg["fragment"]))
                elif isinstance(seg, dict) and isinstance(seg.get("literal"), str):
                    out.append(seg["literal"])
            return "".join(out)
        return as_str(first(payload.get("text"), payload.get("content"))) if payload else None

    def messages(self, h: str, role: str) -> list[dict]:
        """Normalised message(s) of one stored message (tool results split out as role 'tool')."""
        if h in self.cache:
            return self.cache[h]
        texts: list[str] = []
        calls: list[dict] = []
        results: list[dict] = []
        for p in self.conn.execute("select * from parts where message_hash = ? order by position", (h,)):
            ptype = p["type"] or "text"
            payload = as_dict(p["payload"])
            if ptype == "text":
                t = self._part_text(p, payload)
                if t is not None:
                    texts.append(t)
            elif ptype == "tool_call":
                calls.append(tool_call(first(payload.get("tool_call_id"), payload.get("id"), payload.get("call_id")),
                                       first(p["tool_name"], payload.get("name")),
                                       first(payload.get("arguments"), payload.get("input"), payload.get("args"))))
            elif ptype == "tool_result":
                out = first(p["text"], payload.get("output"), payload.get("content"), payload.get("result"))
                if payload.get("exception"):
                    out = f"{out or ''}\n[exception] {payload['exception']}".strip()
                results.append(message("tool", as_str(out),
                                       tool_call_id=as_str(first(payload.get("tool_call_id"), payload.get("id"))),
                                       name=as_str(first(p["tool_name"], payload.get("name")))))
            # reasoning, attachments and other part types carry no prompt/response text
        # plugins (llm-anthropic) log stray whitespace-only text parts beside the real text: not content
        texts = [t for t in texts if t.strip()] or texts
        msgs = list(results)
        if texts or calls or not results:
            msgs.append(message(role or "user", "\n".join(texts) if texts else None, calls))
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[h] = msgs
        return msgs


def turn_records(conn: sqlite3.Connection, tables: set[str], source: Source | None = None
                 ) -> Iterator[dict | Quarantined | Skipped]:
    """Yield one item per row of the ``turns`` table: the trace rebuilt from its message chain (up to the tip, split at
    the parent), or ``Quarantined`` when the chain cannot be read.
    """
    store = _Store(conn, tables)
    cols = _columns(conn, "turns") | {"_thread_name"}
    has_tools = {"turn_tools", "tools"} <= tables
    q = ("select t.*, th.name as _thread_name from turns t left join threads th on th.id = t.thread_id"
         if "threads" in tables else "select t.*, null as _thread_name from turns t")
    complete = {"messages", "parts"} <= tables

    def item(loc: str, row: dict) -> dict:
        tid = str(row["id"])
        if not complete:
            raise RecordError("the database has a turns table but no messages/parts tables to read it from")
        tip, parent = row["tip_message_hash"], row["parent_message_hash"]
        if not tip:
            raise RecordError("turn has no tip_message_hash")
        chain = store.chain(tip)
        if not chain or chain[-1]["hash"] != tip:
            raise RecordError(f"tip message {tip} is not in the messages table")
        hashes = [m["hash"] for m in chain]
        if parent is None:
            cut = 0
        elif parent in hashes:
            cut = hashes.index(parent) + 1
        else:
            raise RecordError(f"parent_message_hash {parent} is not on the chain to the tip {tip}")
        inp: list[dict] = []
        for m in chain[:cut]:
            inp.extend(store.messages(m["hash"], m["role"]))
        outp: list[dict] = []
        for m in chain[cut:]:
            outp.extend(store.messages(m["hash"], m["role"]))
        system = "\n\n".join(m["text"] for m in inp if m["role"] == "system" and m["text"]) or None
        msgs = [m for m in inp if m["role"] != "system"]
        answer = [m for m in outp if m["role"] == "assistant"]
        calls = [c for m in answer for c in m["tool_calls"]]
        texts = [m["text"] for m in answer if m["text"] is not None]
        fields = _common(row, cols)
        if row["_thread_name"]:
            fields["attributes"]["conversation_name"] = str(row["_thread_name"])
        tools = None
        if has_tools:
            tools = _tool_defs(list(conn.execute(
                "select t.name, t.description, t.input_schema from turn_tools tt join tools t on t.id = tt.tool_id "
                "where tt.turn_id = ? order by t.id", (tid,))))
        fields.update({
            "system_prompt": system,
            "messages": msgs,
            "prompt_text": last_user_text(msgs),
            "response_text": "\n\n".join(texts) if texts else ("" if calls or answer else None),
            "tool_calls": calls,
            "tool_definitions": tools,
            "conversation_id": as_str(row["thread_id"]) if "thread_id" in cols else None,
            "source_locator": loc,
            "trace_id": f"llm:{tid}",
        })
        if fields["response_raw"] is not None:
            fields["attributes"]["response_json_condensed"] = "true"  # condense-json references, not the bytes
        if calls and fields.get("stop_reason") is None:
            fields["stop_reason"] = "tool_use"
        rec = coerce_fields(fields)
        rec["_raw"] = None
        return rec

    rows = ((f"turns:{row['id']}", row) for row in conn.execute(q + " order by t.datetime_utc, t.id"))
    return each_record(source, rows, item, raw=_row_text)


# ---------------------------------------------------------------- format


class SimonwLlm:
    """The ``simonw_llm`` format: the ``llm`` CLI's ``logs.db`` SQLite database, read by path."""

    name = "simonw_llm"
    description = "simonw/llm logs.db (SQLite): legacy responses table and threads/turns/messages/parts"

    def sniff(self, head: bytes, path: str) -> float:
        """Confidence 0..1 that ``head`` is an ``llm`` logs database: 0.95 for SQLite whose schema names ``responses``
        and ``conversations`` or ``turns`` and ``threads``, 0.5 for any SQLite file named ``logs*.db``, else 0.
        """
        if not head.startswith(MAGIC):
            return 0.0
        names = {m.group(1) for m in _TABLE.finditer(head)}
        if ({b"responses", b"conversations"} <= names) or ({b"turns", b"threads"} <= names):
            return 0.95
        base = os.path.basename(path).lower()
        return 0.5 if base.startswith("logs") and base.endswith(".db") else 0.0

    def parse(self, source: Source) -> Iterator[dict | Quarantined | Skipped]:
        """Yield the items of the turns table, then of the legacy responses table (responses also in turns skipped).

        Raises ``FormatError`` for stdin, a compressed file or a database without either table; a database that
        breaks part-way ends with one ``Quarantined`` item for the rest.
        """
        path = source.path
        if path == "-":
            raise FormatError("simonw_llm: a SQLite database cannot be read from stdin; pass the path of logs.db")
        # SQLite needs random access: an object-storage URL is read from a temporary local copy
        with local_copy(path) as local:
            with open(local, "rb") as f:
                if f.read(len(MAGIC)) != MAGIC:
                    raise FormatError(f"{path}: not an uncompressed SQLite file; SQLite needs random access, "
                                      "so decompress it first")
            conn = open_readonly(local)
            try:
                tables = _tables(conn)
                if "responses" not in tables and "turns" not in tables:
                    raise FormatError(f"{path}: SQLite database without llm's 'responses' or 'turns' table "
                                      f"(tables: {', '.join(sorted(tables)) or 'none'})")
                turn_ids: set[str] = set()
                if "turns" in tables and "responses" in tables:
                    turn_ids = {str(r["id"]) for r in conn.execute("select id from turns")}
                try:
                    if "turns" in tables:
                        yield from turn_records(conn, tables, source)
                    if "responses" in tables:
                        yield from legacy_records(_Legacy(conn, tables), turn_ids, source)
                except sqlite3.DatabaseError as e:
                    source.records += 1  # the rest of the database, as a cut-short stream's tail
                    yield Quarantined("database", f"reading the database failed part-way (corrupt file?): {e}; "
                                      "rows after this point could not be read", None)
            finally:
                conn.close()


FORMATS = [SimonwLlm()]
