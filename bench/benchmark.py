"""End-to-end benchmark: reference floor, dbt builds, sync runs and upload-file writing.

    python bench/benchmark.py --people 1000000 --repeats 3 [--data-dir bench/data] [--out bench/out]

On seeded data from bench/generate.py (generated when missing, base and --next-hour batch),
every figure is a separate subprocess, so its peak RSS is its own (GNU /usr/bin/time -v when
present, else a fresh wrapper child reading getrusage(RUSAGE_CHILDREN)); medians over --repeats:

1. bench/reference.py on the base data (plain DuckDB: the floor);
2. a full `dbt build` (as a user types it, unit tests included) into a fresh DuckDB file per repeat;
3. an incremental `dbt build` on a copy of that warehouse after the next-hour batch (globs over
   base + next_hour, as_of one hour later);
4. `sync run` into a fresh stand-in (first run: all adds), again with no change, and after 5%
   churn of every audience table; once with the real audiences and once with 1M random hashes
   added to one audience table (the "1M-member audience"). The stand-in (`sync-standin`) runs as
   its own process: its CPU and peak RSS are reported apart from the sync's;
5. writing the upload files for 1M adds: sync.bulkfile (polars) vs the SDK's entities +
   BulkFileWriter, each in a fresh child process, timed in-process.

Prints a Markdown table and writes it with the raw JSON to --out. Targets are printed next to
the figures; they are targets, not assertions (the exit code is 0 unless a step failed).

This script is the command line: it makes the data when missing, runs the chosen steps
(steps_dbt.py for 1-3, steps_sync.py for 4, steps_files.py for 5) on one shared Context, and
writes the report (render.py, with machine.py's description of the machine); measure.py
measures each subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from machine import machine
from measure import BENCH, ROOT, Run, _duckdb_rows, _iso, _parse_iso
from render import render
from steps_dbt import step_full_build, step_incremental, step_reference
from steps_files import step_files, worker_files
from steps_sync import step_sync

# ------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class Context:
    """What the steps share: the options, the scratch folder, the data's globs and as_of, the
    full build the later steps start from, and the results and errors for the report."""

    args: argparse.Namespace
    work: Path
    env: dict[str, str]
    as_of: str
    next_as_of: str
    base_tracks: str
    base_identifies: str
    all_tracks: str
    all_identifies: str
    data: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    built: Path | None = None  # a full build kept for the incremental and sync steps
    audiences: dict[str, str] = field(default_factory=dict)  # model -> table, from its manifest
    errors: dict[str, str] = field(default_factory=dict)  # step -> exception

    @property
    def timeout(self) -> float:
        """Seconds a step's subprocess may take before it is killed."""
        return float(self.args.timeout)


def ensure_data(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Seeded base + next-hour Parquet files for --people/--seed/--as-of (generated if missing)."""
    folder = args.data_dir.resolve() / f"people-{args.people}-seed-{args.seed}"
    meta_path = folder / "meta.json"
    wanted = {"people": args.people, "seed": args.seed, "as_of": args.as_of}
    meta: dict[str, Any] = {}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    if {k: meta.get(k) for k in wanted} != wanted:
        print(f"generating data in {folder}", file=sys.stderr, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        common = ["--people", str(args.people), "--as-of", args.as_of, "--seed", str(args.seed)]
        # beyond a million people the base data is made a million at a time (memory)
        chunked = ["--chunk-people", "1000000"] if args.people > 1_000_000 else []
        for sub, extra in (("base", chunked), ("next_hour", ["--next-hour"])):
            cmd = [sys.executable, str(BENCH / "generate.py"), *common, *extra]
            subprocess.run(
                [*cmd, "--out", str(folder / sub)], check=True, timeout=args.timeout, cwd=ROOT
            )
        meta = dict(wanted)
        for sub in ("base", "next_hour"):
            for kind in ("tracks", "identifies"):
                glob = str(folder / sub / kind / "*.parquet")
                meta[f"{sub}_{kind}_rows"] = _duckdb_rows(
                    f"select count(*) from read_parquet('{glob}')"
                )[0][0]
        meta_path.write_text(json.dumps(meta, indent=2))
    return folder, meta


# ------------------------------------------------------------------------------------------


STEPS: dict[str, Callable[[Context], None]] = {
    "reference": step_reference,
    "full": step_full_build,
    "incremental": step_incremental,
    "sync": lambda ctx: step_sync(ctx, "audiences"),
    "sync1m": lambda ctx: step_sync(ctx, "1m"),
    "files": step_files,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark the reference, dbt builds, sync runs and upload-file writing.",
        epilog="example: python bench/benchmark.py --people 1000000 --repeats 3",
    )
    parser.add_argument("--people", type=int, default=1_000_000, help="generated people")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--data-dir", type=Path, default=BENCH / "data", help="data in people-N-seed-S/ below"
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH / "out", help="report (.md, .json) and scratch"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--as-of", default="2026-11-28T12:00:00Z", help="T of the base data")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated subset of {','.join(STEPS)} (incremental and sync need full)",
    )
    parser.add_argument("--churn", type=float, default=0.05, help="share replaced per table")
    parser.add_argument(
        "--big-audience", default="audience_ltv_high", help="table inflated for sync1m"
    )
    parser.add_argument(
        "--big-audience-rows", type=int, default=1_000_000, help="random hashes added (sync1m)"
    )
    parser.add_argument(
        "--file-rows", type=int, default=1_000_000, help="adds written by the files step"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds, per subprocess (killed after)"
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    parser.add_argument("--worker-files", choices=["fast", "sdk"], help=argparse.SUPPRESS)
    parser.add_argument("--hashes", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker_files:
        return worker_files(args.worker_files, args.file_rows, args.out, args.hashes)

    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {sorted(unknown)}")
    if {"incremental", "sync", "sync1m"} & set(steps) and "full" not in steps:
        parser.error("incremental and sync steps need the full step")

    load_start = Path("/proc/loadavg").read_text().split()[:3]
    mach = machine()
    folder, data = ensure_data(args)
    as_of = _iso(_parse_iso(args.as_of))
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=args.out.resolve()))
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    ctx = Context(
        args=args,
        work=work,
        env=env,
        as_of=as_of,
        next_as_of=_iso(_parse_iso(args.as_of) + timedelta(hours=1)),
        base_tracks=str(folder / "base" / "tracks" / "*.parquet"),
        base_identifies=str(folder / "base" / "identifies" / "*.parquet"),
        # one glob over base/ and next_hour/ (the next-hour files have distinct names)
        all_tracks=str(folder / "*" / "tracks" / "*.parquet"),
        all_identifies=str(folder / "*" / "identifies" / "*.parquet"),
        data=data,
    )
    print(f"scratch folder {work}", file=sys.stderr)
    try:
        for step in STEPS:
            if step in steps:
                try:
                    STEPS[step](ctx)
                except Exception as exc:  # record, report, go on with the other steps
                    ctx.errors[step] = f"{type(exc).__name__}: {exc}"
                    print(f"  step {step} failed: {ctx.errors[step]}", file=sys.stderr)
    finally:
        load_end = Path("/proc/loadavg").read_text().split()[:3]
        table, raw = render(ctx, mach, (" ".join(load_start), " ".join(load_end)))
        stem = args.out / f"benchmark-people-{args.people}"
        stem.with_suffix(".md").write_text(table)
        stem.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str) + "\n")
        if args.keep_work:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(table)
    print(f"written: {stem}.md, {stem}.json", file=sys.stderr)
    failed = [
        x for v in ctx.results.values() for x in _flatten(v) if isinstance(x, Run) and not x.ok
    ]
    return 1 if failed or ctx.errors else 0


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [y for v in value.values() for y in _flatten(v)]
    if isinstance(value, list):
        return [y for v in value for y in _flatten(v)]
    return [value]


if __name__ == "__main__":
    sys.exit(main())
