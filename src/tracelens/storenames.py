"""Names of a store that need no I/O library: the default directory, its environment variable, the marker file.

Kept apart from ``tracelens.storefiles`` (which loads pyarrow and polars) so
that the CLI can name its ``--store`` default without loading either.
"""

DEFAULT_STORE = "tracelens-store"
STORE_ENV = "TRACELENS_STORE"
MARKER = "STORE.json"
