"""The importer registry and format sniffing.

Importers live one per module in ``tracelens.ingest.formats`` (every module
there is loaded); each module exposes ``FORMATS`` (a list of Format objects).
Sniffing asks every importer how sure it is about the first bytes of a file
and takes the most confident; ties go to the earlier, more specific entry.
When none but a generic importer is sure, the first lines are set aside one
at a time (up to ``SNIFF_SKIP_LINES``) and the rest asked again, so that
one broken or foreign first line (a NUL, invalid UTF-8, JSON nested 100,000
deep, a stray ``{}``, a record with wrong types) does not make a log file
unknown or generic: its records are then read, and that line is quarantined
like any other bad line.
"""

from __future__ import annotations

import importlib

from tracelens.ingest.base import Format, FormatError


def _load() -> dict[str, Format]:
    import pkgutil

    from tracelens.ingest import formats

    out: dict[str, Format] = {}
    for info in sorted(pkgutil.iter_modules(formats.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        m = importlib.import_module(f"tracelens.ingest.formats.{info.name}")
        for f in getattr(m, "FORMATS", []):
            if f.name in out:
                raise RuntimeError(f"two importers named {f.name!r}")
            out[f.name] = f
    return out


FORMATS: dict[str, Format] = _load()

MIN_CONFIDENCE = 0.3


def get_format(name: str) -> Format:
    """The importer named ``name``; raises ``FormatError`` listing the known formats when there is none."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}") from None


SNIFF_SKIP_LINES = 8
# Generic importers sniff at most this (every specific format wins over them).
GENERIC_CONFIDENCE = 0.35


def sniff_format(head: bytes, path: str) -> Format | None:
    """The importer most confident about ``head`` (see the module docstring), or None.

    When only a generic importer (or none) is sure of the first line, the
    lines after it are asked too: a damaged first record of a specific
    format must not make the file generic rows.
    """
    text = head.lstrip(b" \t\r\n")
    if text[:1] in (b"{", b"["):
        head = text  # blank lines before JSON: sniffers look at the first line
    best, score = _most_confident(head, path)
    rest = head
    for _ in range(SNIFF_SKIP_LINES):
        if score > GENERIC_CONFIDENCE:
            break
        nl = rest.find(b"\n")
        if nl < 0 or not rest[nl + 1 :].strip():
            break
        rest = rest[nl + 1 :]
        fmt, s = _most_confident(rest, path)
        if fmt is not None and (s > GENERIC_CONFIDENCE or best is None):
            best, score = fmt, s
    return best


def _most_confident(head: bytes, path: str) -> tuple[Format | None, float]:
    best = None
    best_score = MIN_CONFIDENCE
    for fmt in FORMATS.values():
        try:
            score = fmt.sniff(head, path)
        except Exception:  # a sniffer must never break ingest
            score = 0.0
        if score > best_score:
            best, best_score = fmt, score
    return best, best_score


def formats_markdown(doc_pages: set[str]) -> str:
    """The table of docs/formats.md; ``doc_pages`` are the page names under docs/formats/."""
    rows = []
    for name, f in sorted(FORMATS.items()):
        module = type(f).__module__.rsplit(".", 1)[1]
        page = name if name in doc_pages else module if module in doc_pages else None
        link = f"[{page}.md](formats/{page}.md)" if page else ""
        rows.append(f"| `{name}` | {f.description.replace('|', '/')} | {link} |")
    return "| format | what it reads | field mapping |\n|---|---|---|\n" + "\n".join(rows) + "\n"
