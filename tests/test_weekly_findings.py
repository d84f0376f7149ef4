"""Weekly findings for the TUI (``tracelens.weekly.weekly_findings``): from a saved report, or from ``run_weekly``."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.test_tui_data import NOW, build_tui_store
from tracelens.extras import NotAvailable
from tracelens.weekly import load_findings_report, weekly_findings

UTC = dt.UTC


def T(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_tui_store(tmp_path_factory.mktemp("weekly"))


def test_findings_from_a_report_file(tmp_path):
    doc = {"windows": {"current": {"start": "2026-11-16T00:00:00Z", "end": "2026-11-23T00:00:00Z", "n": 10}},
           "findings": [{"kind": "refusal_rate", "segment": "app=support", "direction": "up", "severity": "alert",
                         "significant": True, "summary": "up", "first_seen": "2026-11-20T09:00:00Z",
                         "evidence": ["msg_complaint"]}]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    wf = load_findings_report(p)
    assert [f.evidence for f in wf.findings] == [("msg_complaint",)]
    assert wf.findings[0].first_seen == T("2026-11-20 09:00")
    with pytest.raises(NotAvailable):
        load_findings_report(tmp_path / "missing.json")


def test_weekly_findings_calls_the_weekly_entry_point_without_embedding(store, monkeypatch):
    import types

    import tracelens.weekly
    from tracelens.analysis.findings import Finding

    f = Finding(kind="refusal_rate", segment="app=support", direction="up", baseline_value=0.0, current_value=0.1,
                effect=0.1, ci_low=0.0, ci_high=0.2, p_value=0.01, q_value=0.02, significant=True, severity="alert",
                first_seen=None, summary="up", evidence=("msg_complaint",))
    window = types.SimpleNamespace(start=T("2026-11-16 00:00"), end=T("2026-11-23 00:00"), n=39)
    calls = []

    def fake_run_weekly(store_, week=None, now=None, embed=True, progress=None, model=None):
        calls.append((store_, week, now, embed))
        progress("loaded")
        return types.SimpleNamespace(findings=(f,), current=window, baseline=window, notes=("a note",))

    monkeypatch.setattr(tracelens.weekly, "run_weekly", fake_run_weekly)
    said = []
    wf = weekly_findings(store, now=NOW, progress=said.append, week="2026-W47")
    assert calls == [(store, "2026-W47", NOW, "stored")] and said == ["loaded"]
    assert wf.findings == [f] and wf.notes == ["a note"] and "2026-11-16 → 2026-11-23 (39 traces)" in wf.window


def test_the_tui_shows_the_findings_tracelens_weekly_shows(tmp_path):
    """Once `tracelens weekly` has embedded and clustered a week, the TUI's quick path (stored embeddings, nothing
    computed) gives the same findings, topic findings included, and never says embeddings were skipped."""
    from click.testing import CliRunner

    from tracelens.cli.main import cli
    from tracelens.ingest.pipeline import ingest
    from tracelens.samples import Config, write_sample
    from tracelens.store import Store

    cfg = Config(weeks=2, per_day=60, compress="none")
    write_sample(tmp_path / "logs", cfg)
    store = Store(tmp_path / "store", create=True)
    assert not ingest(store, [str(tmp_path / "logs")], workers=0).errors
    week = f"{cfg.end.isocalendar().year}-W{cfg.end.isocalendar().week:02d}"
    r = CliRunner().invoke(cli, ["weekly", "--store", str(store.root), "--week", week, "--model", "fake",
                                 "--json", "--fail-on", "never"])
    assert r.exit_code == 0, r.output
    cli_findings = {(f["kind"], f["segment"], f["severity"]) for f in json.loads(r.stdout)["findings"]}
    assert any(k == "refusal_rate" and s.startswith("cluster=") for k, s, _ in cli_findings)  # topic findings
    wf = weekly_findings(store, week=week, model="fake")
    assert {(f.kind, f.segment, f.severity) for f in wf.findings} == cli_findings
    assert not any("--no-embed" in n for n in wf.notes)
