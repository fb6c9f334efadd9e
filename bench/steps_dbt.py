"""Benchmark steps 1-3 (bench/benchmark.py): the reference floor (bench/reference.py, plain
DuckDB) on the base data, a full `dbt build` into a fresh warehouse per repeat, and an
incremental `dbt build` on a copy of that warehouse after the next-hour batch; each figure a
measured subprocess, dbt's own summary and execution time kept beside it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from measure import (
    AUDIENCE_PREFIX,
    BENCH,
    ROOT,
    Run,
    _audience_sizes,
    _copy_warehouse,
    _tool,
    bing_audiences,
    measure,
)

if TYPE_CHECKING:
    from benchmark import Context


def _dbt_cmd(build: Path, variables: dict[str, str], command: str = "build") -> list[str]:
    return [
        _tool("dbt"), command,
        "--project-dir", str(ROOT),
        "--profiles-dir", str(build / "profiles"),
        "--target-path", str(build / "target"),
        "--log-path", str(build / "logs"),
        "--no-use-colors",
        "--vars", json.dumps(variables),
    ]  # fmt: skip


def _source_vars(tracks: str, identifies: str, as_of: str) -> dict[str, str]:
    """The dbt vars that point the project's sources at the generated files and set T."""
    return {"customerio_tracks": tracks, "customerio_identifies": identifies, "as_of": as_of}


def _dbt_summary(stdout: str) -> str:
    m = re.findall(r"Done\. (PASS=.*)", stdout)
    return m[-1].strip() if m else ""


def _dbt_execution_s(stdout: str) -> float | None:
    """dbt's own "Finished running ... (12.34s)": node execution, without startup and parse."""
    m = re.findall(r"Finished running .*\(([0-9.]+)s\)", stdout)
    return float(m[-1]) if m else None


def step_reference(ctx: Context) -> None:
    print("1. reference (plain DuckDB)", file=sys.stderr, flush=True)
    runs = []
    for i in range(ctx.args.repeats):
        wd = ctx.work / f"reference-{i}"
        wd.mkdir(parents=True)
        cmd = [
            sys.executable, str(BENCH / "reference.py"),
            "--tracks", ctx.base_tracks, "--identifies", ctx.base_identifies,
            "--as-of", ctx.as_of,
            "--database", str(wd / "floor.duckdb"),
            "--threads", ctx.env.get("CIO_DUCKDB_THREADS", "2"),
            "--memory-limit", ctx.env.get("CIO_DUCKDB_MEMORY_LIMIT", "4GB"),
        ]  # fmt: skip
        run = measure(
            f"reference-{i}", cmd, env=ctx.env, timeout=ctx.timeout, workdir=ctx.work / "logs"
        )
        emails = {}
        for line in run.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] not in ("state", "(any)"):
                emails[AUDIENCE_PREFIX + parts[0]] = int(parts[2].replace(",", ""))
        run.extra["emails_per_audience"] = emails
        m = re.search(
            r"compute ([0-9.]+) s", (ctx.work / "logs" / f"reference-{i}.stderr").read_text()
        )
        run.extra["compute_s"] = float(m.group(1)) if m else None
        runs.append(run)
        shutil.rmtree(wd, ignore_errors=True)
    ctx.results["reference"] = runs


def _measure_dbt(ctx: Context, name: str, build: Path, variables: dict[str, str]) -> Run:
    """One `dbt build` into `build`'s warehouse, measured, with dbt's own summary kept."""
    env = {**ctx.env, "CIO_DUCKDB_PATH": str(build / "warehouse.duckdb")}
    run = measure(
        name, _dbt_cmd(build, variables), env=env, timeout=ctx.timeout, workdir=ctx.work / "logs"
    )
    run.extra["dbt"] = _dbt_summary(run.stdout)
    run.extra["dbt_execution_s"] = _dbt_execution_s(run.stdout)
    run.stdout = ""
    return run


def step_full_build(ctx: Context) -> None:
    print("2. dbt build, full", file=sys.stderr, flush=True)
    variables = _source_vars(ctx.base_tracks, ctx.base_identifies, ctx.as_of)
    runs = []
    for i in range(ctx.args.repeats):
        build = ctx.work / f"full-{i}"
        (build / "profiles").mkdir(parents=True)
        shutil.copy(ROOT / "profiles.yml.example", build / "profiles" / "profiles.yml")
        run = _measure_dbt(ctx, f"dbt-full-{i}", build, variables)
        runs.append(run)
        if run.ok and ctx.built is None:
            ctx.built = build
            ctx.audiences = bing_audiences(build / "target")
            run.extra["audience_sizes"] = _audience_sizes(build / "warehouse.duckdb", ctx.audiences)
        else:
            shutil.rmtree(build, ignore_errors=True)
    ctx.results["full_build"] = runs


def step_incremental(ctx: Context) -> None:
    print("3. dbt build, incremental after the next-hour batch", file=sys.stderr, flush=True)
    if ctx.built is None:
        print("  skipped: no successful full build", file=sys.stderr)
        return
    variables = _source_vars(ctx.all_tracks, ctx.all_identifies, ctx.next_as_of)
    runs = []
    for i in range(ctx.args.repeats):
        build = ctx.work / f"incremental-{i}"
        _copy_warehouse(ctx.built, build)
        # An hourly schedule keeps target/ and passes the same vars every hour, so dbt's
        # partial parsing skips the parse; here as_of changes, so parse first, untimed.
        env = {**ctx.env, "CIO_DUCKDB_PATH": str(build / "warehouse.duckdb")}
        subprocess.run(
            _dbt_cmd(build, variables, "parse"), env=env, check=True, capture_output=True
        )
        run = _measure_dbt(ctx, f"dbt-incremental-{i}", build, variables)
        if run.ok and i == 0:
            run.extra["audience_sizes"] = _audience_sizes(build / "warehouse.duckdb", ctx.audiences)
        runs.append(run)
        shutil.rmtree(build, ignore_errors=True)
    ctx.results["incremental"] = runs
