"""`--engine ray` gives the local engine's results: ingest, embeddings and drift reports.

One local Ray instance (2 CPUs) is started for the module and shut down after;
the engine joins it. Inputs: the bundled sample logs plus a small generated
corpus (eight ISO weeks of traffic with refusals, spread over several files,
and a file of broken records for the quarantine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.conftest import REPO, anthropic_line
from tracelens.cli.main import cli
from tracelens.storeopen import open_store

ray = pytest.importorskip("ray")
# Ray Data's own module-level deprecation notices (its DataContext), nothing of ours
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")

SRC = str(Path(__file__).resolve().parent.parent / "src")
# Columns that record when a row was ingested (wall time), the only ones allowed to differ.
WALL_TIME = {"traces": ["ingested_at"], "quarantine": ["quarantined_at"]}


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Eight ISO weeks (2026-W40 .. W47) over four files, refusals rising in the last week; one broken file."""
    d = tmp_path_factory.mktemp("corpus")
    for part in range(4):
        lines = []
        for i in range(part * 60, part * 60 + 60):
            day = dt_day(i)
            refused = (day >= 47 and i % 3 == 0) or i % 11 == 0
            lines.append(anthropic_line(
                i, ts=f"2026-{day_iso(i)}T{10 + i % 8:02d}:{i % 60:02d}:00Z",
                text="I can't help with that request." if refused else f"Here is answer {i % 37}.",
                prompt=f"How do I do task {i % 41}?", model="claude-sonnet-4-5" if i % 5 else "claude-haiku-4-5",
                stop="end_turn" if i % 7 else "max_tokens",
            ))
        (d / f"part{part}.jsonl").write_text("\n".join(lines) + "\n")
    bad = ['{"timestamp": "not a time", "request": {}, "response": {}}', "{not json",
           anthropic_line(999, ts="2026-11-20T10:00:00Z").replace('"timestamp": "2026-11-20T10:00:00Z"', '"timestamp": null')]
    (d / "broken.jsonl").write_text("\n".join(bad) + "\n")
    return d


def dt_day(i: int) -> int:
    """ISO week number of record ``i`` (40 .. 47)."""
    return 40 + (i * 7) % 8


def day_iso(i: int) -> str:
    import datetime as dt

    monday = dt.date.fromisocalendar(2026, dt_day(i), 1)
    return (monday + dt.timedelta(days=i % 7)).strftime("%m-%d")


def _ingest(store: Path, paths: list[str], engine: str) -> dict:
    r = CliRunner().invoke(cli, ["ingest", "--engine", engine, "--store", str(store), "--no-progress", "--json",
                                 "--batch-size", "50", *paths])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for f in out["files"]:
        f.pop("seconds")
    return out


def _rows(store: Path, table: str) -> pl.DataFrame:
    df = open_store(store).scan(table).collect().drop(WALL_TIME[table])
    key = "trace_id" if table == "traces" else df.columns
    return df.sort(key)


@pytest.fixture(scope="module")
def stores(ray_cluster, corpus, tmp_path_factory):
    """The sample logs and the corpus ingested by each engine: (local store, ray store, summaries)."""
    d = tmp_path_factory.mktemp("stores")
    paths = [str(REPO / "sample_logs"), str(corpus)]
    local = _ingest(d / "local", paths, "local")
    remote = _ingest(d / "ray", paths, "ray")
    return d / "local", d / "ray", local, remote


def test_ingest_on_ray_stores_what_the_local_engine_stores(stores):
    local_store, ray_store, local, remote = stores
    # the same summary, file for file (the --json document), and every record accounted for
    assert remote == local
    assert local["reconciles"] and local["totals"]["stored"] > 8000 and local["totals"]["quarantined"] >= 3
    # companions were paired in the driver's plan: the batch request files are joined, not ingested alone
    assert any(f["format"].endswith("(joined)") for f in remote["files"])
    for table in ("traces", "quarantine"):
        a, b = _rows(local_store, table), _rows(ray_store, table)
        assert a.height and a.equals(b), table


def test_ingest_on_ray_twice_stores_nothing_new(stores, corpus, tmp_path):
    _, ray_store, _, remote = stores
    copy = tmp_path / "again"
    shutil.copytree(ray_store, copy)
    again = _ingest(copy, [str(corpus)], "ray")
    # the tasks commit against the store's duplicate index: every record is a duplicate the second time
    assert again["totals"]["stored"] == 0 and again["totals"]["duplicates"] == 240


def _vector_files(store: Path) -> list[tuple[str, ...]]:
    """Each vector file's text hashes in stored order (one file per commit chunk), as a sorted list."""
    files = sorted((store / "embeddings").glob("*/part-*.parquet"))
    return sorted(tuple(pq.read_table(f, columns=["text_hash"]).column(0).to_pylist()) for f in files)


def _vectors(store: Path) -> dict[str, np.ndarray]:
    out = {}
    for f in sorted((store / "embeddings").glob("*/part-*.parquet")):
        t = pq.read_table(f)
        for h, v in zip(t.column("text_hash").to_pylist(), t.column("vector").to_pylist(), strict=True):
            # a Delta Lake store keeps each vector as its float16 bytes (Delta has no half-float type)
            out[h] = (np.frombuffer(v, dtype="<f2") if isinstance(v, bytes) else np.asarray(v)).astype(np.float32)
    return out


@pytest.mark.slow
def test_embed_on_ray_stores_the_local_vectors(ray_cluster, corpus, tmp_path):
    """The bundled MiniLM on Ray actors: the same texts, chunks and order in the store, cosine > 0.99999."""
    pytest.importorskip("sentence_transformers")
    from tracelens.embed.run import embed_store
    from tracelens.engines import get_engine

    paths = [str(corpus)]
    _ingest(tmp_path / "a", paths, "local")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    kw = {"columns": ("prompt_text", "response_text"), "commit_every": 32}
    a = embed_store(open_store(tmp_path / "a"), None, **kw)
    engine = get_engine("ray", workers=2)
    b = engine.embed(open_store(tmp_path / "b"), None, **kw)
    engine.close()
    assert ray.is_initialized()  # the module's instance was joined, not shut down
    assert (b.embedded, b.distinct, b.commits) == (a.embedded, a.distinct, a.commits) and a.commits > 2
    assert b.device.startswith("ray: 2 CPU")
    assert _vector_files(tmp_path / "b") == _vector_files(tmp_path / "a")
    va, vb = _vectors(tmp_path / "a"), _vectors(tmp_path / "b")
    cos = [float(va[h] @ vb[h] / np.linalg.norm(va[h]) / np.linalg.norm(vb[h])) for h in va]
    assert min(cos) > 0.99999
    # a second run finds every day complete and starts nothing
    again = engine.embed(open_store(tmp_path / "b"), None, **kw)
    assert again.embedded == 0 and again.skipped_days == a.days


def _report(store: Path, args: list[str]) -> dict:
    r = CliRunner().invoke(cli, [*args, "--store", str(store), "--json", "--fail-on", "never"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize(("command", "counts_on_ray"), [
    (["weekly", "--week", "2026-W47", "--model", "fake"], True),
    (["drift", "--baseline", "2026-W44..2026-W45", "--current", "2026-W47", "--no-embed"], True),
    # a store this small is counted in the driver (COUNT_ON_RAY_BYTES), by the same function
    (["weekly", "--week", "2026-W47", "--no-embed"], False),
])
def test_drift_reports_on_ray_equal_the_local_ones(ray_cluster, corpus, tmp_path, command, counts_on_ray,
                                                   monkeypatch):
    """Each engine on its own copy of the same store, from scratch (labels, fake-model vectors, clusters)."""
    from tracelens.engines import rayengine

    if counts_on_ray:
        monkeypatch.setattr(rayengine, "COUNT_ON_RAY_BYTES", 0)  # the counts on Ray Data, small as the store is
    _ingest(tmp_path / "a", [str(corpus)], "local")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a = _report(tmp_path / "a", command)
    b = _report(tmp_path / "b", [*command, "--engine", "ray"])
    assert a == b
    assert a["trend"] and any(p["n"] for p in a["trend"]) and a["daily"]
    if "--model" in command:  # the fake-model vectors were computed on the Ray actors
        assert _vector_files(tmp_path / "b") and _vectors(tmp_path / "b").keys() == _vectors(tmp_path / "a").keys()


def test_refusal_counts_split_anywhere_sum_to_the_same_series():
    """``refusal_counts`` over any split of the rows, summed, is what one pass gives (what Ray relies on)."""
    import datetime as dt

    from tracelens.analysis.drift import refusal_counts, series_counts

    utc = dt.UTC
    n = 500
    rng = np.random.default_rng(0)
    start = dt.datetime(2026, 9, 28, tzinfo=utc)
    frame = pl.DataFrame({
        "timestamp": [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 56, n)],
        "status": rng.choice(["ok", "error", None], n).tolist(),
        "refusal": rng.choice(["none", "refusal", "partial", None], n).tolist(),
    }).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    windows = ((0, start + dt.timedelta(weeks=6), start + dt.timedelta(weeks=7)),
               (1, start + dt.timedelta(weeks=7), start + dt.timedelta(weeks=8)))
    history = (start, start + dt.timedelta(weeks=8))
    before = start + dt.timedelta(weeks=6, hours=3)
    whole = series_counts(refusal_counts(frame, windows, history, before, start), start)
    parts = pl.concat([refusal_counts(frame.slice(i, 37), windows, history, before, start) for i in range(0, n, 37)])
    split = series_counts(parts, start)
    assert whole.daily.equals(split.daily) and whole.trend.equals(split.trend)
    assert int(whole.daily["n"].sum()) > 0 and set(whole.daily["w0"].to_list()) == {-1, 0, 1}


def test_engine_ray_without_ray_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys\nsys.modules['ray'] = None\n"
            "from tracelens.cli.main import cli\n"
            f"cli(['ingest', '--engine', 'ray', '--store', {str(tmp_path / 's')!r}, {str(REPO / 'sample_logs')!r}],"
            " prog_name='tracelens')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 3, r.stderr
    assert len(lines) == 1 and "pip install 'tracelens[ray]'" in lines[0], r.stderr
    assert not (tmp_path / "s").exists()  # refused before the store was touched


def test_ray_address_needs_engine_ray(tmp_path):
    r = CliRunner().invoke(cli, ["ingest", "--ray-address", "auto", "--store", str(tmp_path / "s"),
                                 str(REPO / "sample_logs")])
    assert r.exit_code == 2 and "--ray-address needs --engine ray" in r.stderr


def test_engine_ray_refuses_stdin(ray_cluster, tmp_path):
    r = CliRunner().invoke(cli, ["ingest", "--engine", "ray", "--store", str(tmp_path / "s"), "-"], input="{}\n")
    assert r.exit_code == 2 and "not stdin" in r.stderr
