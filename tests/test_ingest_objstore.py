"""Ingest from object storage: URL inputs read from a local S3 server (moto on 127.0.0.1), streamed.

What is checked: the same rows as from local files (sample logs, .gz, .zst, damaged lines, a truncated
object), glob semantics equal to ``pathlib.Path.glob``, that an object is read in bounded range requests
while it is being ingested (a counting proxy between the client and the server sees every request), the
one-line failures of unusable locations through the CLI, and a mid-stream failure reported for its file
while the run goes on.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("obstore")
pytest.importorskip("moto")
zstandard = pytest.importorskip("zstandard")

from click.testing import CliRunner  # noqa: E402

from tests.conftest import REPO, anthropic_line  # noqa: E402
from tracelens.cli.main import cli  # noqa: E402
from tracelens.ingest import remote  # noqa: E402
from tracelens.ingest.pipeline import ingest  # noqa: E402
from tracelens.store import Store  # noqa: E402
from tracelens.storeopen import open_store  # noqa: E402

SAMPLES = REPO / "sample_logs"


def _upload(server, bucket: str, root: Path, prefix: str) -> None:
    s3 = server.client()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            s3.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(root).as_posix()}")


def _match_mtimes(server, bucket: str, root: Path, prefix: str) -> None:
    """Give each local file its object's modification time: readers that fall back on a file's time (batch
    results without one) then see the same time from both places."""
    s3 = server.client()
    for p in root.rglob("*"):
        if p.is_file():
            t = s3.head_object(Bucket=bucket, Key=f"{prefix}/{p.relative_to(root).as_posix()}")["LastModified"]
            os.utime(p, (t.timestamp(), t.timestamp()))


def _rows(store: Store, table: str, drop: tuple[str, ...]):
    """The rows of ``table`` without the columns that differ by design, in a canonical order."""
    import polars as pl

    df = store.scan(table).collect()
    df = df.drop([c for c in drop if c in df.columns])
    keys = [c for c, t in df.schema.items() if t in (pl.String, pl.Int64, pl.Float64, pl.Datetime("us", "UTC"))]
    return df.sort(keys, nulls_last=True)


def _same_rows(a: Store, b: Store) -> tuple[int, int]:
    from polars.testing import assert_frame_equal

    ta = _rows(a, "traces", ("source_file", "ingested_at"))
    tb = _rows(b, "traces", ("source_file", "ingested_at"))
    assert_frame_equal(ta, tb)
    qa = _rows(a, "quarantine", ("source_file", "quarantine_id", "quarantined_at"))
    qb = _rows(b, "quarantine", ("source_file", "quarantine_id", "quarantined_at"))
    assert_frame_equal(qa, qb)
    return ta.height, qa.height


@pytest.fixture
def logs_tree(tmp_path):
    """The bundled sample logs plus damaged and compressed inputs: bad lines, a .zst, a truncated .gz."""
    root = tmp_path / "logs"
    shutil.copytree(SAMPLES, root)
    extra = root / "extra"
    extra.mkdir()
    lines = [anthropic_line(i, ts=f"2026-11-18T15:{i:02d}:00Z") for i in range(40)]
    (extra / "damaged.jsonl").write_text("\n".join([*lines[:5], '{"not": json', *lines[5:10], "\x00oops"]) + "\n")
    (extra / "z.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(("\n".join(lines[10:30]) + "\n").encode()))
    cut = gzip.compress(("\n".join(lines[30:]) + "\n").encode())
    (extra / "cut.jsonl.gz").write_bytes(cut[: len(cut) * 2 // 3])
    return root


def test_same_rows_as_local_files(s3_env, logs_tree, tmp_path):
    """A directory URL and a glob URL store exactly what the local directory and glob store."""
    bucket = s3_env.bucket()
    _upload(s3_env, bucket, logs_tree, "exports")
    _match_mtimes(s3_env, bucket, logs_tree, "exports")

    local = Store(tmp_path / "local", create=True)
    url = Store(tmp_path / "url", create=True)
    # refusal labels off: they are computed from the stored text, which is compared whole
    s_local = ingest(local, [str(logs_tree)], enricher=False)
    s_url = ingest(url, [f"s3://{bucket}/exports/"], enricher=False)
    assert not s_local.errors and not s_url.errors
    assert [f.path.replace(str(logs_tree), f"s3://{bucket}/exports") for f in s_local.files] == \
        [f.path for f in s_url.files]
    assert [(f.format, f.records, f.read, f.stored, f.quarantined, f.bytes) for f in s_local.files] == \
        [(f.format, f.records, f.read, f.stored, f.quarantined, f.bytes) for f in s_url.files]
    traces, quarantined = _same_rows(local, url)
    assert traces > 8000 and quarantined >= 3  # the production weeks, the damaged lines and the cut tail
    q = url.scan("quarantine").collect()
    assert set(q["source_file"].str.split("/").list.get(2)) == {bucket}
    assert any("input ends unexpectedly" in r for r in q["reason"])

    # globs: *, ** and a character class pick the same files locally and on the bucket
    for pattern in ("*.jsonl", "**/d*.jsonl", "extra/*.json[l].*", "production/anthropic-2026-W4[!2-6].jsonl.gz"):
        a = Store(tmp_path / f"gl-{len(pattern)}-a", create=True)
        b = Store(tmp_path / f"gl-{len(pattern)}-b", create=True)
        sa = ingest(a, [str(logs_tree / pattern)], enricher=False)
        sb = ingest(b, [f"s3://{bucket}/exports/{pattern}"], enricher=False)
        assert [Path(f.path).name for f in sa.files] == [f.path.rsplit("/", 1)[1] for f in sb.files], pattern
        assert sa.files, pattern
        _same_rows(a, b)


@pytest.mark.parametrize(
    "pattern",
    ["*.jsonl", "*", "a/*", "**/*.jsonl", "**/x?.jsonl", "a/**/b/*", "[ab]/*.json*", "[!a]*/*", "a/**", ".h*/*",
     "**/.h*", "a/b/c.jsonl", "*/*/*"],
)
def test_glob_semantics_are_pathlib_glob(tmp_path, pattern):
    keys = ["x1.jsonl", "x2.json", "a/y.jsonl", "a/b/c.jsonl", "a/b/d/e.jsonl", "b/z.jsonl", ".h/q.jsonl",
            "c/.hidden.jsonl", "a/x9.jsonl"]
    for k in keys:
        (tmp_path / k).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / k).write_text("{}\n")
    want = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(pattern) if p.is_file())
    got = sorted(k for k in keys if remote.glob_match(pattern, k))
    assert got == want


def test_file_urls_and_glob_listing_prefix(tmp_path, anthropic_file):
    """file:// URLs go through the same object-storage path; only the literal directories are listed."""
    (tmp_path / "d").mkdir()
    anthropic_file(12, name="d/log-1.jsonl")
    anthropic_file(3, name="d/other.jsonl")
    store = Store(tmp_path / "s", create=True)
    s = ingest(store, [f"file://{tmp_path}/d/log-*.jsonl"])
    assert [(f.path, f.stored) for f in s.files] == [(f"file://{tmp_path}/d/log-1.jsonl", 12)]
    assert remote.literal_prefix("logs/2026-11/*/x-*.gz") == "logs/2026-11"
    assert remote.literal_prefix("*.gz") == ""


def _big_gzip(path: Path, n: int) -> None:
    """A gzip JSONL of ``n`` records whose text does not compress much (random tokens): ~370 bytes each."""
    rng = os.urandom
    with gzip.open(path, "wt") as f:
        for i in range(n):
            f.write(anthropic_line(i, text=rng(300).hex(), ts=f"2026-11-18T{i % 24:02d}:00:00Z") + "\n")


def test_object_is_streamed_in_bounded_ranges(s3_env, tmp_path, monkeypatch):
    """While a multi-MB gzip object is ingested, the client never holds or asks for the whole of it.

    A counting proxy sees each request: every GET of the object carries a Range no larger than the reader's
    buffer, and when the first batch is committed, only a small part of the object has come over the
    wire. A full download (one GET without Range, or reading before parsing) fails both.
    """
    from tests.s3server import CountingProxy

    monkeypatch.setattr(remote, "OBJECT_BUFFER", 256 * 1024)
    bucket = s3_env.bucket()
    src = tmp_path / "big.jsonl.gz"
    _big_gzip(src, 12000)
    size = src.stat().st_size
    assert size > 4_000_000
    s3_env.client().upload_file(str(src), bucket, "big/big.jsonl.gz")
    proxy = CountingProxy(s3_env.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    seen: list[int] = []
    try:
        summary = ingest(Store(tmp_path / "s", create=True), [f"s3://{bucket}/big/big.jsonl.gz"], batch_size=500,
                         progress=lambda res: seen.append(proxy.received), workers=0)
    finally:
        proxy.close()
    assert not summary.errors and summary.files[0].stored == 12000
    gets = [(t, r) for m, t, r in proxy.requests if m == "GET" and t.endswith("/big/big.jsonl.gz")]
    assert len(gets) >= size // (256 * 1024)
    for _, rng in gets:
        assert rng is not None, "a GET without Range reads the whole object"
        start, end = (int(x) for x in rng.split("=", 1)[1].split("-"))
        assert end - start + 1 <= 256 * 1024
    assert seen[0] < size / 3, (seen[0], size)  # the first commit came long before the object was read


def test_parallel_workers_same_rows(s3_env, tmp_path, anthropic_file):
    """The chunked path with worker processes: chunks are cut from the stream here, so a URL needs no
    re-opening in the workers, and the rows equal a serial ingest of the local file."""
    bucket = s3_env.bucket()
    src = anthropic_file(3000, name="many.jsonl")
    s3_env.client().upload_file(str(src), bucket, "w/many.jsonl")
    a = Store(tmp_path / "a", create=True)
    b = Store(tmp_path / "b", create=True)
    ingest(a, [str(src)], batch_size=200, workers=0)
    s = ingest(b, [f"s3://{bucket}/w/many.jsonl"], batch_size=200, workers=2)
    assert s.files[0].stored == 3000
    _same_rows(a, b)


def test_object_failing_mid_stream_is_a_file_error(s3_env, tmp_path, monkeypatch):
    """An object deleted while it is read: what came before is kept, the rest is one quarantine row, the file
    is reported (non-zero exit) and the next object is still ingested."""
    monkeypatch.setattr(remote, "OBJECT_BUFFER", 128 * 1024)
    bucket = s3_env.bucket()
    src = tmp_path / "a.jsonl"
    src.write_text("\n".join(anthropic_line(i, text="x" * 2000) for i in range(3000)) + "\n")
    s3 = s3_env.client()
    s3.upload_file(str(src), bucket, "m/a.jsonl")
    (tmp_path / "b.jsonl").write_text(anthropic_line(99999) + "\n")
    s3.upload_file(str(tmp_path / "b.jsonl"), bucket, "m/b.jsonl")

    def delete_first(res):
        if res.path.endswith("/a.jsonl"):
            s3.delete_object(Bucket=bucket, Key="m/a.jsonl")

    store = Store(tmp_path / "s", create=True)
    summary = ingest(store, [f"s3://{bucket}/m/*.jsonl"], batch_size=100, progress=delete_first, workers=0)
    a, b = summary.files
    assert a.error and a.path in a.error and "no such object" in a.error and "\n" not in a.error
    assert 100 <= a.stored < 3000 and a.quarantined == 1 and a.reconciles
    assert b.error is None and b.stored == 1
    q = store.scan("quarantine").collect()
    assert "input ends unexpectedly" in q["reason"][0] and q["source_file"][0] == f"s3://{bucket}/m/a.jsonl"


# ---------------------------------------------------------------- the CLI's one-line failures


def _cli(args, env=None, timeout=10.0):
    start = time.monotonic()
    r = CliRunner().invoke(cli, args, env=env)
    took = time.monotonic() - start
    assert took < timeout, took
    return r


def _one_line_error(r, *words):
    assert r.exit_code != 0, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err


def test_cli_no_match_is_the_local_message(s3_env, tmp_path):
    bucket = s3_env.bucket()
    s3_env.client().put_object(Bucket=bucket, Key="logs/a.jsonl", Body=anthropic_line(1).encode())
    r_url = _cli(["ingest", "--store", str(tmp_path / "s"), f"s3://{bucket}/logs/2026-*.jsonl.gz"])
    r_loc = _cli(["ingest", "--store", str(tmp_path / "s"), str(tmp_path / "2026-*.jsonl.gz")])
    _one_line_error(r_url, "no files to ingest")
    assert r_url.stderr.replace(f"s3://{bucket}/logs", "X") == r_loc.stderr.replace(str(tmp_path), "X")
    assert not (tmp_path / "s").exists()


def test_cli_ingests_url_glob(s3_env, tmp_path, anthropic_file):
    bucket = s3_env.bucket()
    s3_env.client().upload_file(str(anthropic_file(7)), bucket, "logs/2026-11-01.jsonl")
    r = _cli(["ingest", "--json", "--store", str(tmp_path / "s"), f"s3://{bucket}/logs/2026-11-*.jsonl"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["files"][0]["path"] == f"s3://{bucket}/logs/2026-11-01.jsonl"
    assert out["files"][0]["stored"] == 7


def test_cli_missing_bucket(s3_env, tmp_path):
    r = _cli(["ingest", "--store", str(tmp_path / "s"), "s3://no-such-bucket-anywhere/logs/*.jsonl"])
    _one_line_error(r, "does not exist")
    assert not (tmp_path / "s").exists()


def test_cli_unreachable_endpoint(s3_env, tmp_path, monkeypatch):
    from tests.s3server import free_port

    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    r = _cli(["ingest", "--store", str(tmp_path / "s"), "s3://bkt/logs/"], env=env)
    _one_line_error(r, "endpoint unreachable")


def test_cli_missing_credentials(s3_env, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_PROFILE": None,
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    r = _cli(["ingest", "--store", str(tmp_path / "s"), "s3://bkt/logs/x.jsonl"], env=env)
    _one_line_error(r, "no AWS credentials")


def test_cli_missing_object_is_a_file_error(s3_env, tmp_path, anthropic_file):
    bucket = s3_env.bucket()
    s3_env.client().upload_file(str(anthropic_file(2)), bucket, "logs/a.jsonl")
    r = _cli(["ingest", "--store", str(tmp_path / "s"), f"s3://{bucket}/logs/a.jsonl", f"s3://{bucket}/logs/gone.jsonl"])
    assert r.exit_code == 1
    assert f"error: s3://{bucket}/logs/gone.jsonl: no such object" in r.stderr
    assert open_store(tmp_path / "s").scan("traces").collect().height == 2


def test_cli_denied_read_is_one_line(tmp_path):
    """Listing allowed, reading objects denied (moto enforcing IAM): refused before anything is ingested."""
    from tests.s3server import S3Server

    with S3Server.denying("s3:GetObject", "private", {"logs/a.jsonl": anthropic_line(1).encode()}) as (_, env):
        r = _cli(["ingest", "--store", str(tmp_path / "s"), "s3://private/logs/*.jsonl"], env=env)
        _one_line_error(r, "access denied", "s3://private/logs")
        assert not (tmp_path / "s").exists()


def test_cli_table_names_urls_relative_to_their_prefix():
    from tracelens.cli.ingest import relative_names

    assert relative_names(["s3://b/logs/a.jsonl", "s3://b/logs/x/c.jsonl"]) == (["a.jsonl", "x/c.jsonl"], "s3://b/logs")
    assert relative_names(["s3://b/a.jsonl", "s3://c/a.jsonl"])[1] is None  # two buckets
    assert relative_names(["s3://b/a.jsonl", "/tmp/a.jsonl"])[1] is None  # an object and a file
