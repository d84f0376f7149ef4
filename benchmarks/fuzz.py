"""Fuzz benchmark: ingest hundreds of generated hostile files and count what went wrong.

Usage (one command, from the repository root)::

    python benchmarks/fuzz.py [--n 500] [--seed 0] [--timeout 60] [--update-docs]

The files come from :mod:`tracelens.testing.hostile` (every format
``tracelens formats`` lists; truncations, garbage, BOMs and UTF-16/32, NULs,
invalid UTF-8, 100k-deep JSON, wrong types, multi-megabyte lines, broken
gzip/zstd streams), each with the number of physical records it holds. Before
generating, secret-shaped words (API keys of several providers, AWS keys,
tokens) are mixed into the word list the generator writes prompts and
responses from, so every format carries secrets in free text.

Each file is ingested on its own, into a fresh store, by a worker process
(``force_format`` = its format; then once more with the format sniffed, for the
files that are recognisable without it). Counted per file:

* traceback: ``ingest`` raised (it must not, whatever the input);
* hang: no answer within ``--timeout`` seconds (the worker is killed);
* unaccounted: ``records`` differs from the physical records the file holds,
  or ``read != stored + duplicates + quarantined + skipped``, or fewer than
  the intact records were stored;
* secret: any planted secret found in any stored table (traces, quarantine:
  every cell, nested values included) or in any other file of the store.

Last, the CLI is run once over the whole directory (``tracelens ingest DIR
--json``): it must exit without a traceback and report every file, one bad
file never stopping the others. Results are printed as a markdown table (with
the machine); ``--update-docs`` also writes them between the markers in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import tracelens  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(ROOT / "src"))

from machine import cpu_model  # noqa: E402  (benchmarks/, the script's own folder)

DOC = ROOT / "docs" / "benchmarks.md"
START = "<!-- fuzz-benchmark:start -->"
END = "<!-- fuzz-benchmark:end -->"

# Secret shapes planted as words of the generated texts (fake values of the documented formats).
SECRETS = (
    "sk-ant-api03-Zq3vN8xY2kLm5Pw7Rt9Uc1Hb4Jd6Fg0Se8Ai2Ko5Lp7Mq9Nr1Ts3Uv5Wx7Yz9Ab1Cd3Ef5Gh7Ij9Kl1Mn3Op5Qr7St9Uv-AbCdEfAA",
    "sk-proj-Tq8Wz1Xc4Vb7Nm0Lk3Jh6Gf9Ds2Ap5Oi8Uy1Tr4Ew7Qa0Sz3Xd6Cf9Vg2Bh5Nj8Mk1Lo4Ip7Uh0Ty3Gr6Fe9Dw2Sq5Az",
    "AKIAZ7QX3VN5LM2KP8RT",
    "ASIAY4WB6TC9HJ1DF5GE",
    "ghp_R7tY2uI9oP4aS6dF1gH3jK8lZ5xC0vB2nM7q",
    "xoxb-2748193650-1837264509-Qw8Er2Ty6Ui0Op4As7Df3Gh",
    "sk_live_51HqT8vLk2Xw9Nz4Rp7Ms3Yd6Bf1Gc5Jh8Ka2",
    "AIzaSyD4x9Kq2Lm7Np3Rs8Tv1Wx6Yz0Ab5Cd3Ef",
    "glpat-Xk7Rm2Qp9Tw4Zs8Vn3Yb",
    "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",
)


# ---------------------------------------------------------------- the worker


def _cells_text(path: Path) -> str:
    """Every cell of a Parquet file as one string (nested values included)."""
    import pyarrow.parquet as pq

    return json.dumps(pq.read_table(path).to_pylist(), default=str, ensure_ascii=False)


def _leaked(store_dir: Path) -> list[str]:
    """Planted secrets found anywhere in the store: decoded Parquet cells and the raw bytes of other files."""
    found = set()
    for p in store_dir.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            try:
                text = _cells_text(p)
            except Exception:  # an unreadable file is doctor's business; its raw bytes are still searched
                text = p.read_bytes().decode("utf-8", "replace")
        else:
            text = p.read_bytes().decode("utf-8", "replace")
        found.update(s for s in SECRETS if s in text)
    return sorted(found)


def _worker(conn) -> None:
    from tracelens.ingest.pipeline import ingest
    from tracelens.store import Store

    while True:
        task = conn.recv()
        if task is None:
            return
        path, fmt, store_dir = task
        try:
            st = Store(store_dir, create=True)
            res = ingest(st, [path], force_format=fmt, enricher=True, workers=1)
            f = res.files[0]
            out = {k: getattr(f, k) for k in ("records", "read", "stored", "duplicates", "quarantined", "skipped")}
            out["error"] = f.error
            out["leaked"] = _leaked(Path(store_dir))
            conn.send(("ok", out))
        except BaseException:  # noqa: BLE001 - the benchmark counts exactly this
            conn.send(("traceback", traceback.format_exc()))
        finally:
            shutil.rmtree(store_dir, ignore_errors=True)


class Runner:
    """One worker process; a hang kills it and starts another."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()

    def run(self, path: str, fmt: str | None, store_dir: str) -> tuple[str, object]:
        self.conn.send((path, fmt, store_dir))
        if self.conn.poll(self.timeout):
            try:
                return self.conn.recv()
            except EOFError:
                self._restart()
                return ("traceback", "worker died")
        self._restart()
        return ("hang", None)

    def _restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self._start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


# ---------------------------------------------------------------- the run



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="Number of hostile files.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="Seconds per file before it counts as a hang.")
    ap.add_argument("--no-sniff", action="store_true", help="Only the forced-format pass.")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args(argv)

    from tracelens.testing import hostile

    hostile.WORDS = tuple(hostile.WORDS) + SECRETS  # every generated text can now carry secrets
    work = Path(tempfile.mkdtemp(prefix="tracelens-fuzz-"))
    t0 = time.perf_counter()
    files = hostile.hostile_files(work / "in", args.n, args.seed)
    gen_s = time.perf_counter() - t0
    planted = sum(1 for f in files if any(s.encode() in f.path.read_bytes() for s in SECRETS))
    runner = Runner(args.timeout)
    problems: dict[str, list[str]] = defaultdict(list)
    per_format: dict[str, Counter] = defaultdict(Counter)
    leaked_all: set[str] = set()
    t1 = time.perf_counter()
    passes = [("forced", True)] + ([] if args.no_sniff else [("sniffed", False)])
    n_runs = 0
    for pass_name, forced in passes:
        for i, f in enumerate(files):
            if not forced and f.kind in getattr(hostile, "UNSNIFFABLE", ()):
                continue
            n_runs += 1
            status, out = runner.run(str(f.path), f.fmt if forced else None, str(work / f"store-{pass_name}-{i}"))
            c = per_format[f.fmt]
            c["runs"] += 1
            label = f"{pass_name} {f.path.name}"
            if status == "hang":
                c["hangs"] += 1
                problems["hang"].append(label)
                continue
            if status == "traceback":
                c["tracebacks"] += 1
                problems["traceback"].append(f"{label}: {str(out).strip().splitlines()[-1]}")
                continue
            r = out
            c["records"] += r["records"]
            c["stored"] += r["stored"]
            c["quarantined"] += r["quarantined"]
            if r["leaked"]:
                c["secrets"] += len(r["leaked"])
                leaked_all.update(r["leaked"])
                problems["secret"].append(f"{label}: {', '.join(s[:12] + '…' for s in r['leaked'])}")
            bad = []
            if r["read"] != r["stored"] + r["duplicates"] + r["quarantined"] + r["skipped"]:
                bad.append(f"read {r['read']} != stored+dup+quar+skipped")
            if forced and r["records"] != f.records:
                bad.append(f"records {r['records']} != {f.records} in the file")
            if forced and r["stored"] < f.min_stored:
                bad.append(f"stored {r['stored']} < {f.min_stored} intact")
            if bad:
                c["unaccounted"] += 1
                problems["unaccounted"].append(f"{label}: {'; '.join(bad)} ({f.kind})")
    runner.close()
    ingest_s = time.perf_counter() - t1

    # The CLI over the whole directory: every file reported, no traceback, one bad file never stops the others.
    cli_store = work / "cli-store"
    t2 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tracelens.cli.main", "ingest", str(work / "in"), "--store", str(cli_store), "--json",
         "--no-progress"],
        capture_output=True, text=True, timeout=max(600.0, args.timeout * 10),
    )
    cli_s = time.perf_counter() - t2
    cli_ok = "Traceback" not in proc.stderr and proc.returncode in (0, 1)
    try:
        reported = {Path(x["path"]).name for x in json.loads(proc.stdout)["files"]}
    except (ValueError, KeyError, TypeError):
        reported = set()
    missing_cli = sorted({f.path.name for f in files} - reported)
    cli_leaked = _leaked(cli_store) if cli_store.exists() else []
    if not cli_ok:
        problems["cli"].append(f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    if missing_cli:
        problems["cli"].append(f"{len(missing_cli)} file(s) missing from the summary, e.g. {missing_cli[:3]}")
    if cli_leaked:
        problems["secret"].append(f"CLI store: {len(cli_leaked)} planted secret(s)")
        leaked_all.update(cli_leaked)
    shutil.rmtree(work, ignore_errors=True)

    totals = Counter()
    for c in per_format.values():
        totals.update(c)
    kinds = sorted({f.kind for f in files})
    lines = [
        f"{len(files)} hostile files (seed {args.seed}; {len(per_format)} formats, {len(kinds)} kinds of damage; "
        f"{planted} of them carry planted secrets), {n_runs} ingests "
        f"({' + '.join(p for p, _ in passes)}), then `tracelens ingest DIR` once over all of them.",
        "",
        "| format | ingests | records | stored | quarantined | tracebacks | hangs | unaccounted | secrets kept |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fmt in sorted(per_format):
        c = per_format[fmt]
        lines.append(f"| {fmt} | {c['runs']} | {c['records']:,} | {c['stored']:,} | {c['quarantined']:,} | "
                     f"{c['tracebacks']} | {c['hangs']} | {c['unaccounted']} | {c['secrets']} |")
    c = totals
    lines.append(f"| **all** | {c['runs']} | {c['records']:,} | {c['stored']:,} | {c['quarantined']:,} | "
                 f"**{c['tracebacks']}** | **{c['hangs']}** | **{c['unaccounted']}** | **{c['secrets']}** |")
    lines += [
        "",
        f"CLI over the directory: exit {proc.returncode}, {'no traceback' if cli_ok else 'TRACEBACK'}, "
        f"{len(reported)}/{len(files)} files reported, {len(cli_leaked)} planted secrets kept ({cli_s:.0f} s).",
        "",
        f"Generation {gen_s:.1f} s, per-file ingests {ingest_s:.0f} s. Machine: {cpu_model()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end.",
    ]
    table = "\n".join(lines)
    print(table)
    for kind, items in sorted(problems.items()):
        print(f"\n{kind}: {len(items)}", file=sys.stderr)
        for it in items[:20]:
            print(f"  {it}", file=sys.stderr)
    if args.update_docs:
        doc = DOC.read_text()
        block = f"{START}\n{table}\n{END}"
        if START in doc:
            doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip() + "\n\n## Fuzz (hostile inputs, `benchmarks/fuzz.py`)\n\n" + block + "\n"
        DOC.write_text(doc)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
