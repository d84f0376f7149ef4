"""What the read and ingest commands print for a person: ids whole, files told apart, ambiguity named."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tests.conftest import anthropic_line
from tracelens.cli.main import cli


def _ingest(tmp_path, files: dict[str, list[str]], columns: int = 100):
    store = tmp_path / "store"
    paths = []
    for name, lines in files.items():
        p = tmp_path / "logs" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n")
        paths.append(str(p))
    r = CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, ["ingest", "--store", str(store), "--no-progress", *paths])
    return store, r


def _long_id_line(i: int, rid: str) -> str:
    rec = json.loads(anthropic_line(i))
    rec["response"]["id"] = rid
    return json.dumps(rec)


def test_search_shows_whole_ids(tmp_path):
    ids = ["msg_01aEF9K52EKwsYPMKR2dbx8f", "msg_01aEF9K52EKwsYPMKR2dbx9g"]  # the same first 20 characters
    store, r = _ingest(tmp_path, {"a.jsonl": [_long_id_line(i, rid) for i, rid in enumerate(ids)]})
    assert r.exit_code == 0, r.output
    out = CliRunner(env={"COLUMNS": "160"}).invoke(cli, ["search", "--store", str(store)]).stdout
    for rid in ids:
        assert rid in out


def test_ingest_table_names_files_relative_to_their_common_folder(tmp_path):
    deep = "a-very-long-folder-name-that-would-fill-the-column/" * 2
    _, r = _ingest(tmp_path, {f"{deep}week-46.jsonl": [anthropic_line(1)], f"{deep}week-47.jsonl": [anthropic_line(2)]})
    assert r.exit_code == 0, r.output
    assert "week-46.jsonl" in r.stdout and "week-47.jsonl" in r.stdout
    assert "file (in " in r.stdout


def test_an_ambiguous_prefix_names_the_matches(tmp_path):
    ids = ["msg_01aEF9K52EKwsYPMKR2dbx8f", "msg_01aEF9K52EKwsYPMKR2dbx9g"]
    store, _ = _ingest(tmp_path, {"a.jsonl": [_long_id_line(i, rid) for i, rid in enumerate(ids)]})
    r = CliRunner().invoke(cli, ["show", "--store", str(store), "msg_01aEF9"])
    assert r.exit_code == 1
    assert f"2 traces match 'msg_01aEF9': {ids[0]}, {ids[1]}" in r.stderr
    r = CliRunner().invoke(cli, ["show", "--store", str(store), "msg_01aEF9K52EKwsYPMKR2dbx8"])
    assert r.exit_code == 0 and ids[0] in r.stdout
    r = CliRunner().invoke(cli, ["show", "--store", str(store), "nope"])
    assert r.exit_code == 1 and "no trace 'nope'" in r.stderr


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    store = tmp_path / "store"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "--no-progress", str(empty)])
    assert r.exit_code == 0, r.output
    assert "is empty: nothing to read" in r.stderr and "unknown format" not in r.stderr
    assert not store.exists()  # nothing stored: no empty store left behind


def test_an_empty_folder_warns_and_fails_without_creating_a_store(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    store = tmp_path / "store"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "--no-progress", str(folder)])
    assert r.exit_code == 1 and "no files to ingest" in r.stderr
    assert not store.exists()


def test_a_failed_ingest_leaves_no_store_but_never_removes_an_existing_one(tmp_path):
    store = tmp_path / "store"
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "--no-progress", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 1 and "no such file" in r.stderr
    assert not store.exists()
    _, r = _ingest(tmp_path, {"a.jsonl": [anthropic_line(1)]})
    assert r.exit_code == 0
    r = CliRunner().invoke(cli, ["ingest", "--store", str(store), "--no-progress", str(tmp_path / "missing.jsonl")])
    assert r.exit_code == 1 and (store / "STORE.json").exists()
    r = CliRunner().invoke(cli, ["search", "--store", str(store), "--json"])
    assert len(json.loads(r.stdout)) == 1


def test_store_at_the_top_level_applies_to_the_command(tmp_path, monkeypatch):
    from tracelens.cli import main as cli_main
    from tracelens.store import STORE_ENV

    assert cli_main.STORE_ENV == STORE_ENV
    monkeypatch.setenv(STORE_ENV, str(tmp_path / "from-env"))  # the top-level option beats an inherited variable
    log = tmp_path / "a.jsonl"
    log.write_text(anthropic_line(1) + "\n")
    store = tmp_path / "top"
    r = CliRunner().invoke(cli, ["--store", str(store), "ingest", "--no-progress", str(log)])
    assert r.exit_code == 0, r.output
    assert (store / "STORE.json").exists() and not (tmp_path / "from-env").exists()
    r = CliRunner().invoke(cli, ["--store", str(store), "search", "--json"])
    assert len(json.loads(r.stdout)) == 1
    # a command's own --store wins over the top-level one
    r = CliRunner().invoke(cli, ["--store", str(tmp_path / "nowhere"), "search", "--store", str(store), "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 1
    import os

    assert os.environ[STORE_ENV] == str(tmp_path / "from-env")  # restored after the command


def test_the_demo_ends_with_commands_that_parse(tmp_path):
    """The demo's closing advice names real commands and options (parsed by the CLI itself, not run)."""
    import shlex
    from pathlib import Path

    import click

    from tracelens.demo import next_steps

    text = next_steps(Path(".demo/store"), Path(".demo/weekly.html"), Path(".demo/weekly.md"))
    lines = [ln.split("#")[0].strip().removeprefix(".venv/bin/") for ln in text.splitlines()
             if ln.strip().startswith(("tracelens ", ".venv/bin/tracelens "))]
    assert [shlex.split(ln)[1] for ln in lines] == ["tui", "ingest", "weekly", "tui", "eval", "eval"]
    root = click.Context(cli, info_name="tracelens")
    for ln in lines:
        name, *args = shlex.split(ln)[1:]
        cli.get_command(root, name).make_context(name, args, parent=root)  # raises on an unknown option


def test_weekly_with_nothing_to_compare_says_so_and_exits_4(tmp_path):
    """An empty week (or store) is "no data", never "no significant change": sources unknown, exit 4 even with
    --fail-on never."""
    _, r = _ingest(tmp_path, {"a.jsonl": [anthropic_line(i) for i in range(5)]})  # 2026-11-18 (W47)
    store = tmp_path / "store"
    for args in (["--week", "2030-W10"], ["--week", "2026-W48"], ["--week", "2026-W47"]):
        r = CliRunner().invoke(cli, ["weekly", "--store", str(store), "--no-embed", "--fail-on", "never",
                                     "--format", "markdown", *args])
        assert r.exit_code == 4, (args, r.output)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("- ")]
        assert lines[0].startswith("- No data: the current window") or "the baseline window" in lines[0], lines
        assert "No significant change" not in r.stdout
        js = CliRunner().invoke(cli, ["weekly", "--store", str(store), "--no-embed", "--json", *args])
        assert js.exit_code == 4
        assert {v["status"] for v in json.loads(js.stdout)["variance_sources"]} == {"unknown"}


def test_search_text_looks_in_prompt_and_response_unless_asked_like_the_tui(tmp_path):
    """One text match for the CLI and the TUI: a word only in the system prompt matches nothing by default."""
    import polars as pl

    from tracelens.query import FindQuery, build_filters, search_lazy
    from tracelens.storeopen import open_store

    lines = [anthropic_line(0, system="Handle refund questions politely.", prompt="Where is my parcel?"),
             anthropic_line(1, prompt="I want a REFUND now"),
             anthropic_line(2, text="Your refund is on its way.")]
    store, _ = _ingest(tmp_path, {"a.jsonl": lines})

    def ids(*args):
        r = CliRunner().invoke(cli, ["search", "--store", str(store), "--json", "--text", "refund", *args])
        assert r.exit_code == 0, r.output
        return sorted(x["trace_id"] for x in json.loads(r.stdout))

    default, everywhere = ids(), ids("--in", "all")
    assert len(default) == 2 and len(everywhere) == 3
    assert ids("--in", "system") == sorted(set(everywhere) - set(default))
    assert ids("--in", "prompt,response") == default
    f, extra, _ = build_filters(FindQuery(text="refund"))
    lf = search_lazy(open_store(store), f, columns=None)
    tui = sorted(lf.filter(pl.all_horizontal(extra)).collect()["trace_id"].to_list())
    assert tui == default
    bad = CliRunner().invoke(cli, ["search", "--store", str(store), "--text", "x", "--in", "title"])
    assert bad.exit_code == 2 and "title is not one of" in bad.output


def test_a_change_that_rounds_away_reads_unchanged():
    from tracelens.analysis import fmt

    assert fmt.moved("1.3%", "1.3%", False) == "unchanged at 1.3%"
    assert fmt.moved("1.3%", "1.3%", True, "13/1,000", "14/1,040") == "unchanged at 1.3% (13/1,000, then 14/1,040)"
    assert fmt.moved("1.3%", "2.6%", True, "13/1,000", "26/1,000") == "rose from 1.3% (13/1,000) to 2.6% (26/1,000)"
    assert fmt.moved("412", "380", False, unit="tokens") == "fell from 412 to 380 tokens"


def test_search_with_nothing_in_its_window_says_so(tmp_path):
    store, _ = _ingest(tmp_path, {"a.jsonl": [anthropic_line(1)]})  # 2026-11-18 15:00 UTC
    r = CliRunner().invoke(cli, ["search", "--store", str(store), "--since", "2030-01-01", "--until", "2030-01-02"])
    assert r.exit_code == 0 and r.stdout == ""
    # --until names a day: the window ends when that day does
    assert "no traces match from 2030-01-01 00:00 to 2030-01-03 00:00 (end excluded) UTC" in r.stderr
    r = CliRunner().invoke(cli, ["search", "--store", str(store), "--user", "nobody"])
    assert r.stdout == "" and "no traces match" in r.stderr
