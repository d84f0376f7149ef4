"""The trace's metadata: models, stop reason, sampling, tokens, latency, cost, ids."""

from __future__ import annotations

import json
import math

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from tracelens.tui.widgets.text import refusal_text, safe, when


def _num(v, fmt: str = "{:,}") -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return fmt.format(v)


def estimated_cost(trace: dict) -> str | None:
    """List-price cost of the trace's tokens (``replay.pricing.trace_cost``), when the price table knows the model.

    Imports the replay core (and the anthropic SDK with it): call it from a worker.
    """
    try:
        from tracelens.replay.pricing import trace_cost

        cost = trace_cost(trace)
    except Exception:  # a broken price file must not break the trace view
        return None
    return None if cost is None else cost.describe()


def alias_warning(trace: dict) -> str | None:
    """A warning when the request named an alias or another model answered; else None."""
    req, ret = trace.get("model_requested"), trace.get("model_returned")
    if trace.get("model_is_alias"):
        return "alias requested: the provider chose the snapshot"
    if req and ret and req != ret and not ret.startswith(req):
        return "returned model differs from the requested one"
    return None


def metadata_table(trace: dict, cost_estimate: str | None = None) -> Table:
    """The trace's metadata as a key/value grid (values shown literally)."""
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()

    def row(key: str, value, style: str = "") -> None:
        if value is None or value == "":
            return
        t.add_row(key, value if isinstance(value, Text) else safe(value, style))

    row("trace", trace.get("trace_id"))
    row("time", when(trace.get("timestamp")) + " UTC")
    row("user", trace.get("user_id"))
    row("session", trace.get("session_id") or trace.get("conversation_id"))
    row("app", trace.get("app") or trace.get("service"))
    row("provider", trace.get("provider"))
    row("requested", trace.get("model_requested"))
    row("returned", trace.get("model_returned"))
    warn = alias_warning(trace)
    if warn:
        t.add_row("", Text("⚠ " + warn, style="bold yellow"))
    row("stop", trace.get("stop_reason"))
    if trace.get("stop_reason_raw") and trace.get("stop_reason_raw") != trace.get("stop_reason"):
        row("stop (raw)", trace.get("stop_reason_raw"))
    if trace.get("stop_details"):
        try:
            details = json.dumps(json.loads(trace["stop_details"]), ensure_ascii=False)
        except ValueError:
            details = trace["stop_details"]
        row("stop details", details)
    if trace.get("refusal"):
        r = refusal_text(trace.get("refusal"))
        if trace.get("refusal_score") is not None:
            r.append(f"  score {trace['refusal_score']:.2f}", style="dim")
        if trace.get("refusal_source"):
            r.append(f"  {trace['refusal_source']}", style="dim")
        row("refusal", r)
    params = []
    for k in ("temperature", "top_p", "top_k", "max_tokens", "seed"):
        if _num(trace.get(k), "{}") is not None:
            params.append(f"{k}={trace[k]}")
    if trace.get("stop_sequences"):
        params.append("stop_sequences=" + json.dumps(list(trace["stop_sequences"]), ensure_ascii=False))
    row("sampling", ", ".join(params))
    tokens = []
    for label, k in (("in", "input_tokens"), ("out", "output_tokens"), ("cache read", "cache_read_tokens"),
                     ("cache write", "cache_creation_tokens")):
        if _num(trace.get(k)) is not None:
            tokens.append(f"{_num(trace.get(k))} {label}")
    row("tokens", " · ".join(tokens))
    lat = _num(trace.get("latency_ms"), "{:,.0f} ms")
    ttft = _num(trace.get("time_to_first_token_ms"), "{:,.0f} ms")
    row("latency", lat + (f" (first token {ttft})" if ttft else "") if lat else ttft)
    cost = _num(trace.get("cost"), "${:.4f}") or cost_estimate
    row("cost", cost)
    row("tier", trace.get("service_tier"))
    row("status", trace.get("status") if trace.get("status") != "ok" else None, "bold red")
    if trace.get("error_type") or trace.get("error_message"):
        row("error", f"{trace.get('http_status') or ''} {trace.get('error_type') or ''}".strip(), "red")
    row("request id", trace.get("request_id"))
    row("response id", trace.get("response_id"))
    row("prompt hash", trace.get("prompt_hash"))
    row("system hash", trace.get("system_prompt_hash"))
    # the file name is enough here; the full path is in the JSON (c)
    src = str(trace.get("source_file") or "-").rsplit("/", 1)[-1]
    row("source", f"{trace.get('source_format')} {src}:{trace.get('source_locator')}")
    if trace.get("redacted"):
        row("redacted", "text fields were redacted at ingest", "yellow")
    if trace.get("request_is_exact") is False:
        row("request", "reconstructed at ingest (not the exact body)", "yellow")
    return t


class MetadataPanel(Static):
    """Key/value metadata of one trace (values are plain Text)."""

    def show(self, trace: dict, cost_estimate: str | None = None) -> None:
        """Show the metadata of ``trace`` (with the cost line when known)."""
        self.update(metadata_table(trace, cost_estimate))
