"""tracelens: evidence for "the model got worse" from production LLM logs.

The package is a headless core (ingest, store, enrich, embed, analysis,
replay) with a thin click CLI (``tracelens.cli``) and a Textual TUI
(``tracelens.tui``) on top. Importing ``tracelens`` imports nothing heavy.
"""

__version__ = "0.1.0"
