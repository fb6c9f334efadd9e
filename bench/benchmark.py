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
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from measure import (
    AUDIENCE_PREFIX,
    BENCH,
    LIST_ID,
    ROOT,
    TIME_BIN,
    Run,
    StandInProcess,
    _audience_sizes,
    _copy_warehouse,
    _duckdb_rows,
    _iso,
    _parse_iso,
    _proc_status_mb,
    _reset_peak,
    _tool,
    bing_audiences,
    measure,
)
from render import render

# ------------------------------------------------------------------------------------------
# the benchmark


@dataclass
class Context:
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
    variables = {
        "customerio_tracks": ctx.base_tracks,
        "customerio_identifies": ctx.base_identifies,
        "as_of": ctx.as_of,
    }
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
    variables = {
        "customerio_tracks": ctx.all_tracks,
        "customerio_identifies": ctx.all_identifies,
        "as_of": ctx.next_as_of,
    }
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


def _inflate(
    database: Path, tables: dict[str, str], table: str | None, rows: int
) -> tuple[str, int]:
    """Add `rows` random hashes to one audience table (`table`, else the largest); returns
    (table, its new size). New rows copy an existing audience row with another hash."""
    import duckdb

    sizes = _audience_sizes(database, tables)
    donor = max(sizes, key=lambda n: sizes[n])
    if sizes[donor] == 0:
        raise RuntimeError("every audience table is empty: no row to copy")
    target = table if table in sizes else donor
    con = duckdb.connect(str(database))
    try:
        con.execute(
            f"""
            insert into {tables[target]} by name
            select d.* replace (sha256(gen_random_uuid()::varchar) as email_sha256)
            from (select * from {tables[donor]} limit 1) as d cross join range({int(rows)}) as r(i)
            """
        )
        size = con.execute(f"select count(*) from {tables[target]}").fetchone()[0]
    finally:
        con.close()
    return target, int(size)


def _churn(database: Path, tables: dict[str, str], share: float) -> dict[str, int]:
    """Replace `share` of the hashes of every audience table by new random 64-hex values."""
    import duckdb

    sizes = _audience_sizes(database, tables)
    changed = {}
    con = duckdb.connect(str(database))
    try:
        for table, n in sizes.items():
            k = round(n * share)
            if k:
                con.execute(
                    f"""
                    update {tables[table]}
                    set email_sha256 = sha256(gen_random_uuid()::varchar)
                    where rowid in (select rowid from {tables[table]} order by random() limit {k})
                    """
                )
            changed[table] = k
    finally:
        con.close()
    return changed


def _sync_counts(stdout: str) -> dict[str, Any]:
    try:
        doc = json.loads(stdout)
    except ValueError:
        return {"parsed": False}
    lists = doc.get("lists", [])
    return {
        "lists": len(lists),
        "audience_rows": sum(x.get("audience_rows") or 0 for x in lists),
        "sent_adds": sum(x.get("sent_adds") or 0 for x in lists),
        "sent_removes": sum(x.get("sent_removes") or 0 for x in lists),
        "confirmed_adds": sum(x.get("confirmed_adds") or 0 for x in lists),
        "confirmed_removes": sum(x.get("confirmed_removes") or 0 for x in lists),
        "rejected": sum(x.get("rejected") or 0 for x in lists),
        "statuses": sorted({str(x.get("status")) for x in lists}),
        "per_list": {
            x.get("audience"): {
                k: x.get(k)
                for k in ("audience_rows", "sent_adds", "sent_removes", "status", "seconds")
            }
            for x in lists
        },
    }


def step_sync(ctx: Context, scenario: str) -> None:
    """scenario "audiences": the built audiences as they are; "1m": plus 1M random hashes."""
    title = "real audiences" if scenario == "audiences" else "1M-member audience"
    print(f"4. sync runs ({title})", file=sys.stderr, flush=True)
    if ctx.built is None:
        print("  skipped: no successful full build", file=sys.stderr)
        return
    phases: dict[str, list[Run]] = {"first": [], "nochange": [], "churn": []}
    info: dict[str, Any] = {}
    for i in range(ctx.args.repeats):
        wd = ctx.work / f"sync-{scenario}-{i}"
        _copy_warehouse(ctx.built, wd)
        database = wd / "warehouse.duckdb"
        if scenario == "1m":
            table, size = _inflate(
                database, ctx.audiences, ctx.args.big_audience, ctx.args.big_audience_rows
            )
            info.update(big_table=table, big_table_size=size)
        info["audience_sizes"] = _audience_sizes(database, ctx.audiences)
        (wd / "sync-work").mkdir()
        standin = StandInProcess(wd, ctx.env)
        try:
            env = {
                **ctx.env,
                "CIO_DUCKDB_PATH": str(database),
                "DBT_PROFILES_DIR": str(wd / "profiles"),
                "BING_DEVELOPER_TOKEN": "bench-developer-token",
                "BING_CUSTOMER_ID": "1234",
                "BING_ACCOUNT_ID": "5678",
                "BING_ACCESS_TOKEN": "bench-access-token",
                "BING_BULK_SERVICE_URL": standin.url,
                "SYNC_POLL_INTERVAL_MS": "50",
                "SYNC_WORK_DIR": str(wd / "sync-work"),
            }
            cmd = [
                _tool("sync"), "run", "--json",
                "--project-dir", str(ROOT),
                "--profiles-dir", str(wd / "profiles"),
                "--target-path", str(wd / "target"),
                "--max-remove-share", "1",
                # the models may be edited while this runs; the manifest is the build's own
                "--allow-stale-manifest",
            ]  # fmt: skip
            for phase in phases:
                if phase == "churn":
                    info["churned"] = _churn(database, ctx.audiences, ctx.args.churn)
                standin.reset_peak()
                cpu0 = standin.cpu_s()
                run = measure(
                    f"sync-{scenario}-{phase}-{i}",
                    cmd,
                    env=env,
                    timeout=ctx.timeout,
                    workdir=ctx.work / "logs",
                )
                cpu1 = standin.cpu_s()
                run.extra["standin_cpu_s"] = (
                    cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
                )
                run.extra["standin_peak_rss_mb"] = standin.peak_rss_mb()
                run.extra["standin_peak_is_lifetime"] = not standin.peak_resettable
                run.extra["sync"] = _sync_counts(run.stdout)
                run.stdout = ""
                phases[phase].append(run)
                if not run.ok:
                    break
        finally:
            standin.stop()
        shutil.rmtree(wd, ignore_errors=True)
    ctx.results[f"sync_{scenario}"] = {"info": info, **phases}


def step_files(ctx: Context) -> None:
    rows = ctx.args.file_rows
    print(f"5. upload files for {rows:,} adds: fast path vs SDK", file=sys.stderr, flush=True)
    out: dict[str, list[Run]] = {"fast": [], "sdk": []}
    hashes = ctx.work / "hashes.parquet"
    _duckdb_rows(
        f"copy (select sha256('bench-' || i::varchar) as email_sha256 from range({int(rows)}) "
        f"as r(i)) to '{hashes}' (format parquet)"
    )
    for i in range(ctx.args.repeats):
        for impl in out:
            wd = ctx.work / f"files-{impl}-{i}"
            wd.mkdir(parents=True)
            cmd = [
                sys.executable, str(Path(__file__).resolve()),
                "--worker-files", impl, "--file-rows", str(rows), "--out", str(wd),
                "--hashes", str(hashes),
            ]  # fmt: skip
            run = measure(
                f"files-{impl}-{i}",
                cmd,
                env=ctx.env,
                timeout=ctx.timeout,
                workdir=ctx.work / "logs",
            )
            if run.ok:
                run.extra.update(json.loads(run.stdout.strip().splitlines()[-1]))
            run.stdout = ""
            out[impl].append(run)
            shutil.rmtree(wd, ignore_errors=True)
    ctx.results["files"] = out


def worker_files(impl: str, rows: int, out: Path, hashes: Path) -> int:
    """Child process of step 5: write the upload files for `rows` adds; print timings as JSON."""
    import polars as pl

    sys.path.insert(0, str(ROOT))
    frame = pl.read_parquet(hashes)  # untimed: `rows` distinct 64-hex values
    if frame.height != rows:
        raise SystemExit(f"{hashes} holds {frame.height} rows, not {rows}")
    gc.collect()
    # peak RSS of the write alone: restart the high-water mark here (Linux clear_refs)
    windowed = _reset_peak(Path("/proc/self"))
    before_mb = _proc_status_mb(Path("/proc/self"), "VmRSS")
    if impl == "fast":
        from sync import bulkfile

        started = time.perf_counter()
        paths = bulkfile.write_member_files(out, LIST_ID, "Add", frame, max_rows=1_000_000)
        seconds = time.perf_counter() - started
    else:
        from bingads.service_client import _CAMPAIGN_OBJECT_FACTORY_V13
        from bingads.v13.bulk import BulkFileWriter
        from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem

        path = out / "members-sdk.csv"
        started = time.perf_counter()
        customer_list = _CAMPAIGN_OBJECT_FACTORY_V13.create("CustomerList")
        customer_list.Id = LIST_ID
        with BulkFileWriter(str(path)) as writer:
            writer.write_entity(BulkCustomerList(customer_list=customer_list, action_type="Add"))
            for text in frame.get_column("email_sha256").to_list():
                writer.write_entity(
                    BulkCustomerListItem(parent_id=LIST_ID, sub_type="Email", text=text)
                )
        seconds = time.perf_counter() - started
        paths = [path]
    peak_mb = _proc_status_mb(Path("/proc/self"), "VmHWM")
    size = sum(p.stat().st_size for p in paths)
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "rows_per_s": rows / seconds if seconds else None,
                "files": len(paths),
                "bytes": size,
                "rss_before_write_mb": before_mb,
                "write_peak_rss_mb": peak_mb if windowed else None,
            }
        )
    )
    return 0


# ------------------------------------------------------------------------------------------
# report


def machine() -> dict[str, Any]:
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip())
    except (OSError, ValueError):
        nproc = len(os.sched_getaffinity(0))
    versions = {}
    for pkg in ("duckdb", "dbt-core", "dbt-duckdb", "polars", "bingads"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "nproc": nproc,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "rusage_via": str(TIME_BIN) if TIME_BIN.exists() else "getrusage(RUSAGE_CHILDREN)",
        "git": _git_state(),
    }


def _git_state() -> dict[str, Any]:
    """The commit measured and the files changed beside it (the models may be mid-edit)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    return {"head": git("rev-parse", "HEAD"), "changed": git("status", "--porcelain").splitlines()}


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
