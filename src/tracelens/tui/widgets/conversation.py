"""The whole conversation of one trace: system prompt, messages, tool calls and results, the response."""

from __future__ import annotations

import json

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Collapsible, Static

from tracelens.context import RefusalExplanation
from tracelens.tui.widgets.text import safe

ROLE_STYLE = {
    "system": "bold magenta",
    "user": "bold cyan",
    "assistant": "bold green",
    "tool": "bold yellow",
    "response": "bold green",
}


def _pretty_args(arguments: str | None) -> str:
    if not arguments:
        return ""
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, indent=2)
    except ValueError:
        return arguments


def _tool_calls(t: Text, calls: list[dict] | None) -> None:
    for c in calls or []:
        t.append("\n→ tool call ", style="bold yellow")
        t.append_text(safe(c.get("name") or "?", "yellow"))
        if c.get("id"):
            t.append("  id ", style="dim")
            t.append_text(safe(c.get("id"), "dim"))
        args = _pretty_args(c.get("arguments"))
        if args:
            t.append("\n")
            t.append_text(safe(args, "yellow"))


def heading(label: str, role: str, extra: Text | None = None) -> Text:
    """A block heading (role label and optional extra), styled per role."""
    t = Text(label.upper(), style=ROLE_STYLE.get(role, "bold"))
    if extra is not None:
        t.append("  ")
        t.append_text(extra)
    t.append("\n")
    return t


def message_text(m: dict) -> Text:
    """One message of the conversation: its role, tool-result ids, text and tool calls."""
    role = str(m.get("role") or "?")
    extra = None
    if m.get("tool_call_id") or m.get("name"):
        extra = Text(style="dim")
        if m.get("name"):
            extra.append_text(safe(m.get("name"), "dim"))
        if m.get("tool_call_id"):
            extra.append(" result of ")
            extra.append_text(safe(m.get("tool_call_id"), "dim"))
    label = "TOOL RESULT" if role == "tool" else role.upper()
    t = safe(label, ROLE_STYLE.get(role, "bold"))  # the role comes from the log too
    if extra is not None:
        t.append("  ")
        t.append_text(extra)
    t.append("\n")
    t.append_text(safe(m.get("text") or ("" if m.get("tool_calls") else "(empty)")))
    _tool_calls(t, m.get("tool_calls"))
    return t


def response_text(trace: dict, why: RefusalExplanation | None) -> Text:
    """The response with its stop reason, error, tool calls and refusal evidence highlighted."""
    stop = trace.get("stop_reason") or "?"
    extra = Text(f"stop: {stop}", style="dim")
    if trace.get("status") == "error":
        extra.append("  error ", style="bold red")
        extra.append_text(safe(trace.get("error_type") or "", "red"))
    t = heading("response", "response", extra)
    body = safe(trace.get("response_text") or "")
    if why is not None:
        for a, b in why.spans:
            body.stylize("bold black on yellow", a, b)
    if not body.plain:
        body = Text("(no text)", style="dim")
    t.append_text(body)
    _tool_calls(t, trace.get("tool_calls"))
    if trace.get("error_message"):
        t.append("\n")
        t.append_text(safe(trace.get("error_message"), "red"))
    return t


def refusal_text_block(why: RefusalExplanation) -> Text:
    """Why the trace is labelled a refusal, with the evidence."""
    style = "bold red" if why.label == "full" else "bold yellow"
    t = Text(f"⚑ refusal: {why.label}", style=style)
    t.append("\n")
    t.append(why.explanation)
    if why.evidence:
        t.append("\nevidence: ", style="bold")
        t.append_text(safe(why.evidence))
        if why.spans:
            t.append("  (highlighted in the response)", style="dim")
    return t


class Conversation(VerticalScroll):
    """Renders a trace as a column of blocks; nothing in it is markup."""

    DEFAULT_CSS = """
    Conversation { height: 1fr; }
    Conversation > Static { margin: 0 0 1 0; padding: 0 1; border-left: thick $panel; }
    Conversation > .system { border-left: thick magenta; }
    Conversation > Collapsible.system { margin: 0 0 1 0; padding: 0; border: none; border-left: thick magenta;
                                        background: transparent; }
    Conversation > Collapsible.system > Contents { padding: 0 1; }
    Conversation > .user { border-left: thick $accent; }
    Conversation > .assistant { border-left: thick $success; }
    Conversation > .tool { border-left: thick $warning; }
    Conversation > .response { border-left: thick $success; background: $boost; }
    Conversation > .refusal { border-left: thick $error; }
    """

    def show(self, trace: dict, why: RefusalExplanation | None) -> None:
        """Replace the blocks with those of ``trace``."""
        self.remove_children()
        self.mount_all(blocks(trace, why))


# A longer system prompt starts folded so that the user's message and the response are on screen.
FOLD_SYSTEM_LINES = 6


def blocks(trace: dict, why: RefusalExplanation | None) -> list[Widget]:
    """One widget per part of the conversation, in order."""
    out: list[Widget] = []
    system = trace.get("system_prompt")
    if system:
        lines = system.count("\n") + 1
        if lines > FOLD_SYSTEM_LINES:
            title = f"SYSTEM PROMPT · {lines} lines, {len(system):,} characters"  # numbers only: never log text
            out.append(Collapsible(Static(safe(system), markup=False), title=title, collapsed=True,
                                   classes="system", id="system-prompt"))
        else:
            t = heading("system prompt", "system")
            t.append_text(safe(system))
            out.append(Static(t, classes="system", markup=False))
    for m in trace.get("messages") or []:
        role = str(m.get("role") or "")
        cls = role if role in ("user", "assistant", "tool", "system") else "other"
        out.append(Static(message_text(m), classes=cls, markup=False))
    out.append(Static(response_text(trace, why), classes="response", id="response", markup=False))
    if why is not None:
        out.append(Static(refusal_text_block(why), classes="refusal", id="refusal", markup=False))
    return out
