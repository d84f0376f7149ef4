"""The committed JSON Schema files equal what the code generates."""

import json

from tests.conftest import REPO
from tracelens.schema import FIELD_NAMES, TRACE_SCHEMA, dump_schema, schema_files


def test_committed_schema_files_match_generator():
    for name, obj in schema_files().items():
        path = REPO / "schemas" / name
        assert path.exists(), f"schemas/{name} missing: run `python -m tracelens.schema schemas`"
        assert path.read_text() == dump_schema(obj), f"schemas/{name} is stale: run `python -m tracelens.schema schemas`"


def test_schema_covers_every_column():
    js = json.loads((REPO / "schemas" / "trace.schema.json").read_text())
    assert list(js["properties"]) == list(FIELD_NAMES) == TRACE_SCHEMA.names
    for required in ("trace_id", "timestamp", "request_raw", "response_raw", "model_returned", "stop_reason_raw"):
        assert required in js["properties"]


def test_docs_column_table_is_current():
    from tracelens.schema import fields_markdown

    doc = (REPO / "docs" / "schema.md").read_text()
    block = doc.split("-->\n", 1)[1].split("<!-- END FIELDS -->")[0]
    assert block == fields_markdown(), "docs/schema.md column table is stale: regenerate it from fields_markdown()"


def test_docs_format_table_is_current_and_every_format_is_documented():
    from tracelens.ingest.registry import FORMATS, formats_markdown

    pages = {p.stem for p in (REPO / "docs" / "formats").glob("*.md")}
    doc = (REPO / "docs" / "formats.md").read_text()
    block = doc.split("formats_markdown) -->\n", 1)[1].split("<!-- END FORMATS -->")[0]
    assert block == formats_markdown(pages), "docs/formats.md table is stale: regenerate with formats_markdown()"
    undocumented = [n for n in FORMATS if f"`{n}` |" in block and block.split(f"`{n}` |")[1].split("\n")[0].endswith("|  |")]
    assert not undocumented, f"formats without a docs/formats/*.md page: {undocumented}"
