"""Re-enrichment over a store is idempotent, atomic per partition, and versioned."""

from click.testing import CliRunner

from tracelens.cli.main import cli
from tracelens.enrich.apply import refresh_refusals
from tracelens.enrich.refusal import DETECTOR_VERSION
from tracelens.ingest.pipeline import ingest


def test_refresh_labels_unlabelled_rows_once(store, anthropic_file):
    path = anthropic_file(6, ts="2026-11-18T10:00:00Z", text="I'm sorry, but I can't help with that request.")
    ingest(store, [str(path)], enricher=False)
    assert store.scan().collect()["refusal"].null_count() == 6
    res = refresh_refusals(store)
    assert (res.partitions_rewritten, res.rows_rewritten, res.changed_labels) == (1, 6, 6)
    df = store.scan().collect()
    assert set(df["refusal_version"]) == {DETECTOR_VERSION}
    assert set(df["refusal"]) == {"full"}
    assert len(store.data_files()) == 1  # the latest version lists the rewritten file only, not a duplicate
    again = refresh_refusals(store)
    assert again.partitions_rewritten == 0


def test_enrich_cli_json(store, anthropic_file):
    ingest(store, [str(anthropic_file(3))], enricher=False)
    r = CliRunner().invoke(cli, ["enrich", "--store", str(store.root), "--json"])
    assert r.exit_code == 0, r.output
    assert '"partitions_rewritten": 1' in r.output
