"""Stores and inputs on Google Cloud Storage (``gs://``) and Azure Blob Storage (``az://``), against local servers.

Azure is Azurite, Microsoft's emulator (tests/azureserver.py; .ci/run installs it with npm). GCS is
tests/gcsserver.py, the XML API subset the object_store crate speaks, preconditions included. Each test runs for
both: a store written through the CLI reads back as a local store does (stats and the weekly report, vectors and
topic clusters included), two writer processes with overlapping inputs store each trace once, a missing credential,
a dead endpoint and a missing bucket are one line within seconds, and inputs are listed and read from globs.

Locally the Azure tests skip when Azurite is not installed; under CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import REPO, anthropic_line, cli_line, without_names
from tracelens import objstore
from tracelens.cli.main import cli

pytest.importorskip("deltalake")
pytest.importorskip("obstore")

SAMPLE = REPO / "sample_logs" / "anthropic_log.jsonl"
_CLOUD_VARS = ("GOOGLE_", "AZURE_", "AZURITE_", "STORAGE_EMULATOR_HOST")


@pytest.fixture(scope="module")
def gcs_server():
    from tests.gcsserver import GCSServer

    server = GCSServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def azurite_server():
    from tests.azureserver import AzuriteServer

    binary = AzuriteServer.find()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Azurite is not installed: .ci/run installs it under .node/ with npm")
        pytest.skip("Azurite not installed (npm install --prefix .node azurite); under CI these tests run")
    server = AzuriteServer.start(binary)
    yield server
    server.stop()


class Cloud:
    """One emulated service: its scheme, the environment pointing at it, and fresh buckets (containers)."""

    def __init__(self, scheme: str, server):
        self.scheme = scheme
        self.server = server

    def env(self) -> dict[str, str]:
        return self.server.env()

    def bucket(self) -> str:
        return self.server.bucket() if self.scheme == "gs" else self.server.container()

    def url(self, path: str = "store") -> str:
        return f"{self.scheme}://{self.bucket()}/{path}"


@pytest.fixture(params=["gs", "az"])
def cloud(request, monkeypatch):
    server = request.getfixturevalue("gcs_server" if request.param == "gs" else "azurite_server")
    for key in list(os.environ):
        if key.startswith(_CLOUD_VARS):
            monkeypatch.delenv(key)
    c = Cloud(request.param, server)
    for key, value in c.env().items():
        monkeypatch.setenv(key, value)
    return c


def _run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _json(args: list[str], ok=(0,)) -> dict:
    r = _run([*args, "--json"])
    assert r.exit_code in ok, r.output
    return json.loads(r.stdout)



def _lines(path: Path, ids: range) -> Path:
    path.write_text("".join(anthropic_line(i) + "\n" for i in ids))
    return path


# ---------------------------------------------------------------------------------------------------- options


def test_storage_emulator_host_becomes_an_object_store_credential(monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    opts = objstore.storage_options(objstore.parse("gs://b/p"))
    key = json.loads(opts["google_service_account_key"])
    assert key["gcs_base_url"] == "http://127.0.0.1:4443" and key["disable_oauth"] is True
    assert opts["allow_http"] == "true"
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    assert objstore.storage_options(objstore.parse("gs://b/p")) == {}  # real GCS: object_store's own chain


def test_azure_options_from_a_connection_string_and_the_cli_variables(monkeypatch):
    for key in list(os.environ):
        if key.startswith(_CLOUD_VARS):
            monkeypatch.delenv(key)
    loc = objstore.parse("az://c/p")
    assert "no Azure storage account" in objstore.credentials_problem(loc, objstore.storage_options(loc))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5==;EndpointSuffix=core.windows.net")
    opts = objstore.storage_options(loc)
    assert opts == {"azure_storage_account_name": "acct", "azure_storage_account_key": "a2V5==",
                    "azure_storage_endpoint": "https://acct.blob.core.windows.net"}
    assert objstore.credentials_problem(loc, opts) is None
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "other")  # the Azure CLI's names win over the connection string
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=x")
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    assert objstore.storage_options(loc) == {"azure_storage_account_name": "other", "azure_storage_sas_key": "sv=1&sig=x"}
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT")
    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    opts = objstore.storage_options(loc)
    assert opts["azure_storage_account_name"] == objstore.AZURITE_ACCOUNT
    assert opts["azure_storage_use_emulator"] == "true" and opts["allow_http"] == "true"


def test_gcs_without_any_credential_off_google_cloud_is_one_line_before_any_request(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(_CLOUD_VARS):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud application default credentials
    monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
    product = tmp_path / "product_name"
    product.write_text("Standard PC (Q35 + ICH9, 2009)\n")
    monkeypatch.setattr(objstore, "_GCE_PRODUCT_FILE", str(product))
    loc = objstore.parse("gs://bucket/p")
    with pytest.raises(objstore.ObjectStoreError, match="no Google Cloud credentials for gs://bucket/p"):
        objstore.preflight(loc, write=False)
    # on Google Cloud the metadata server may hold them: no verdict before asking it
    product.write_text("Google Compute Engine\n")
    assert objstore.credentials_problem(loc, {}) is None
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text("{}")
    product.write_text("Standard PC\n")
    assert objstore.credentials_problem(loc, {}) is None


# ---------------------------------------------------------------------------------------------------- stores


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """A local store of the sample logs, and its stats and weekly report (the reference)."""
    from tracelens.samples.generator import main as generate

    base = tmp_path_factory.mktemp("ref")
    logs = base / "logs"
    generate(["--out", str(logs), "--weeks", "2", "--per-day", "6"])
    root = str(base / "store")
    assert _run(["ingest", "--store", root, "--no-progress", str(logs), str(SAMPLE)]).exit_code == 0
    return logs, root, _json(["stats", "--store", root]), _json(["weekly", "--store", root, "--model", "fake"],
                                                                ok=(0, 1))


def test_store_reads_back_as_the_local_store(cloud, local_reference):
    logs, root, stats, weekly = local_reference
    url = cloud.url()
    r = _run(["ingest", "--store", url, "--no-progress", str(logs), str(SAMPLE)])
    assert r.exit_code == 0, r.output
    names = (url, root)
    assert without_names(_json(["stats", "--store", url]), names) == without_names(stats, names)
    got = _json(["weekly", "--store", url, "--model", "fake"], ok=(0, 1))
    assert got["cluster_shares"], "topic clusters fitted and stored on the bucket"
    assert without_names(got, names) == without_names(weekly, names)
    # what the weekly job kept there: the vectors and the cluster model, reused by a second run
    from tracelens import cluster as cl
    from tracelens.embed.vectors import list_models
    from tracelens.storeopen import open_store

    store = open_store(url)
    assert [m["model_id"] for m in list_models(store)] and cl.current_model(store, "fake") is not None
    assert without_names(_json(["weekly", "--store", url, "--model", "fake"], ok=(0, 1)), names) == without_names(got, names)
    # a second ingest of the same files stores nothing
    again = _json(["ingest", "--store", url, "--no-progress", str(logs), str(SAMPLE)])
    assert again["totals"]["stored"] == 0 and again["totals"]["duplicates"] > 0


def test_migrate_a_local_store_into_the_bucket(cloud, local_reference):
    """Tables, vectors and topic clusters (the reference store's weekly job made them) copied and reconciled."""
    _, root, stats, _ = local_reference
    url = cloud.url()
    out = _json(["store", "migrate", root, url])
    assert out["reconciles"] is True
    tables = {t["table"]: t for t in out["tables"]}
    assert any(t.startswith("embeddings/") and tables[t]["written"] > 0 for t in tables)
    assert tables["clusters"]["written"] == 1 and tables["clusters/CURRENT.json"]["written"] == 1
    assert without_names(_json(["stats", "--store", url]), (url, root)) == without_names(stats, (url, root))
    assert all(t["written"] == 0 for t in _json(["store", "migrate", root, url])["tables"])


def test_two_writer_processes_with_overlapping_inputs(cloud, tmp_path):
    from tracelens.deltastore import DeltaStore

    url = cloud.url()
    a = _lines(tmp_path / "a.jsonl", range(0, 40))
    b = _lines(tmp_path / "b.jsonl", range(20, 60))
    DeltaStore(url, create=True)
    code = ("import sys\nfrom tracelens.storeopen import open_store\nfrom tracelens.ingest.pipeline import ingest\n"
            f"r = ingest(open_store({url!r}, create=True), sys.argv[1:], batch_size=10, enricher=False, workers=0)\n"
            "print(r.total('stored'), r.total('duplicates'))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(x), str(y)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for x, y in ((a, b), (b, a))]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        outs.append(tuple(int(x) for x in out.split()))
    ids = DeltaStore(url).scan().select("trace_id").collect()["trace_id"].to_list()
    assert len(ids) == 60 == len(set(ids))
    assert sum(s for s, _ in outs) == 60 and sum(s + d for s, d in outs) == 160



def test_missing_credentials_unreachable_endpoint_missing_bucket_are_one_line(cloud, tmp_path):
    from tests.s3server import free_port

    src = _lines(tmp_path / "a.jsonl", range(2))
    dead = f"127.0.0.1:{free_port()}"
    if cloud.scheme == "gs":
        cases = {"endpoint unreachable": {"STORAGE_EMULATOR_HOST": f"http://{dead}"},
                 # no credential: refused before any request off Google Cloud, else the metadata server fails
                 "no Google Cloud credentials|credentials unavailable": {"STORAGE_EMULATOR_HOST": "", "HOME": str(tmp_path),
                                             "GCE_METADATA_HOST": dead}}
    else:
        acct = objstore.AZURITE_ACCOUNT
        cases = {
            "no Azure storage account": {"AZURE_STORAGE_CONNECTION_STRING": ""},
            "endpoint unreachable": {"AZURE_STORAGE_CONNECTION_STRING":
                                     f"AccountName={acct};AccountKey={objstore.AZURITE_KEY};BlobEndpoint=http://{dead}/{acct}"},
            "credentials rejected": {"AZURE_STORAGE_CONNECTION_STRING": cloud.env()["AZURE_STORAGE_CONNECTION_STRING"]
                                     .replace(objstore.AZURITE_KEY, "d3Jvbmcta2V5LXdyb25nLWtleQ==")},
        }
    cases["does not exist"] = {}
    for expected, env in cases.items():
        bucket = "no-such-bucket" if expected == "does not exist" else cloud.bucket()
        rc, err, took = cli_line(["ingest", "--store", f"{cloud.scheme}://{bucket}/s", "--no-progress", str(src)],
                                  env)
        assert rc != 0 and any(e in err for e in expected.split("|")), (expected, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert took < 20, (expected, took)


def test_inputs_read_from_globs(cloud, tmp_path):
    import obstore

    bucket = cloud.bucket()
    client = objstore.connect(objstore.parse(f"{cloud.scheme}://{bucket}"))
    obstore.put(client, "logs/2026/a.jsonl", _lines(tmp_path / "a.jsonl", range(0, 15)).read_bytes())
    obstore.put(client, "logs/2026/sub/b.jsonl", _lines(tmp_path / "b.jsonl", range(15, 25)).read_bytes())
    obstore.put(client, "logs/2026/notes.txt", b"not a log")
    store = str(tmp_path / "store")
    out = _json(["ingest", "--store", store, "--no-progress", f"{cloud.scheme}://{bucket}/logs/**/*.jsonl"])
    assert out["totals"]["stored"] == 25 and len(out["files"]) == 2
    # the same objects by directory URL: all already stored
    out = _json(["ingest", "--store", store, "--no-progress", f"{cloud.scheme}://{bucket}/logs/2026/"])
    assert out["totals"]["stored"] == 0 and out["totals"]["duplicates"] == 25


def test_azure_emulator_variables(azurite_server, monkeypatch, tmp_path):
    """object_store's own way to name Azurite: ``AZURE_STORAGE_USE_EMULATOR`` and ``AZURITE_BLOB_STORAGE_URL``."""
    for key in list(os.environ):
        if key.startswith(_CLOUD_VARS):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", f"http://127.0.0.1:{azurite_server.port}")
    url = f"az://{azurite_server.container()}/s"
    out = _json(["ingest", "--store", url, "--no-progress", str(_lines(tmp_path / "a.jsonl", range(5)))])
    assert out["totals"]["stored"] == 5
