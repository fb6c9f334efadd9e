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
import contextlib
import gc
import json
import os
import platform
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
TIME_BIN = Path("/usr/bin/time")
MB = 1_000_000  # RSS is reported in MB (10^6 bytes), as the targets are written
AUDIENCE_PREFIX = "audience_"
LIST_ID = 810_000_123  # any positive id, for the upload-file comparison

# The brief's targets (targets, not assertions).
TARGETS = {
    "full_build_s": 30.0,
    "full_build_vs_reference": 2.0,
    "incremental_s": 10.0,
    "dbt_peak_mb": 3000.0,
    "sync_first_s": 15.0,
    "sync_first_mb": 500.0,
    "sync_nochange_s": 3.0,
    "sync_churn_s": 5.0,
    "files_speedup": 10.0,
}

# Fallback when GNU time is missing: run the command in a fresh child and write its rusage
# in GNU time's -v format, so one parser serves both.
_RUSAGE_WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"User time (seconds): {ru.ru_utime}\\n")
    f.write(f"System time (seconds): {ru.ru_stime}\\n")
    f.write(f"Maximum resident set size (kbytes): {ru.ru_maxrss}\\n")
sys.exit(rc if rc >= 0 else 128 - rc)
"""


# ------------------------------------------------------------------------------------------
# measuring one subprocess


@dataclass
class Run:
    """One measured subprocess."""

    label: str
    rc: int | None  # None: timed out (killed)
    wall_s: float
    cpu_s: float | None
    peak_rss_mb: float | None
    stdout: str = ""
    stderr_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _parse_rusage(text: str) -> tuple[float | None, float | None]:
    """(user + system CPU s, peak RSS MB) from GNU time -v output."""
    found = {}
    for key, pattern in (
        ("user", r"User time \(seconds\): ([0-9.]+)"),
        ("sys", r"System time \(seconds\): ([0-9.]+)"),
        ("rss", r"Maximum resident set size \(kbytes\): ([0-9]+)"),
    ):
        m = re.search(pattern, text)
        found[key] = float(m.group(1)) if m else None
    cpu = (
        found["user"] + found["sys"]
        if found["user"] is not None and found["sys"] is not None
        else None
    )
    rss = found["rss"] * 1024 / MB if found["rss"] is not None else None
    return cpu, rss


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group this benchmark started for `proc` (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)


def measure(
    label: str,
    cmd: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    workdir: Path,
    cwd: Path = ROOT,
) -> Run:
    """Run `cmd` as a measured subprocess: wall time (here), CPU and peak RSS (its rusage)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    rusage_file = workdir / f"{stem}.rusage"
    out_file, err_file = workdir / f"{stem}.stdout", workdir / f"{stem}.stderr"
    if TIME_BIN.exists():
        argv = [str(TIME_BIN), "-v", "-o", str(rusage_file), *cmd]
    else:
        argv = [sys.executable, "-c", _RUSAGE_WRAPPER, str(rusage_file), *cmd]
    with out_file.open("wb") as out, err_file.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True
        )
        try:
            rc: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = None
        wall = time.perf_counter() - started
    cpu, rss = _parse_rusage(rusage_file.read_text()) if rusage_file.exists() else (None, None)
    stdout = out_file.read_text(errors="replace")
    stderr = err_file.read_text(errors="replace")
    run = Run(label, rc, wall, cpu, rss, stdout, _tail(stderr) if rc != 0 else "")
    state = "ok" if run.ok else ("TIMEOUT" if rc is None else f"rc={rc}")
    rss_text = f"{rss:,.0f} MB" if rss is not None else "? MB"
    print(f"  {label}: {wall:.2f} s, peak {rss_text} [{state}]", file=sys.stderr, flush=True)
    if not run.ok:
        print(_tail(stderr + "\n" + stdout, 15), file=sys.stderr)
    return run


# ------------------------------------------------------------------------------------------
# the stand-in, as its own process


class StandInProcess:
    """`sync-standin --port 0 --quiet` in its own process; CPU and peak RSS read from /proc."""

    def __init__(
        self, workdir: Path, env: dict[str, str], timeout: float = 30, args: Sequence[str] = ()
    ):
        self.err_path = workdir / "standin.stderr"
        self._err = self.err_path.open("wb")
        self.proc = subprocess.Popen(
            [_tool("sync-standin"), "--port", "0", "--quiet", *args],
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=env,
            start_new_session=True,
        )
        self.url = self._read_url(timeout)
        self.peak_resettable = True

    def _read_url(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(
                    "sync-standin printed no URL: " + self.err_path.read_text(errors="replace")
                )
            if sel.select(min(left, 0.5)):
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                buf += chunk
        sel.close()
        return buf.split(b"\n", 1)[0].decode().strip()

    @property
    def _proc(self) -> Path:
        return Path(f"/proc/{self.proc.pid}")

    def cpu_s(self) -> float | None:
        try:
            fields = (self._proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    def peak_rss_mb(self) -> float | None:
        return _proc_status_mb(self._proc, "VmHWM")

    def reset_peak(self) -> None:
        """Start a new peak-RSS window; where that is impossible the peak is the lifetime's."""
        if not _reset_peak(self._proc):
            self.peak_resettable = False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._err.close()


# ------------------------------------------------------------------------------------------
# helpers


def _proc_status_mb(proc: Path, key: str) -> float | None:
    """A kB figure of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current) in MB."""
    try:
        m = re.search(rf"{key}:\s+(\d+) kB", (proc / "status").read_text())
    except OSError:
        return None
    return int(m.group(1)) * 1024 / MB if m else None


def _reset_peak(proc: Path) -> bool:
    """Restart the process's peak-RSS (VmHWM) window: Linux, writing 5 to clear_refs."""
    try:
        (proc / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (activate the project's .venv)")
    return found


def _parse_iso(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _spread(values: Sequence[float | None]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None]
    return (min(vals), max(vals)) if vals else None


def _copy_warehouse(src: Path, dst: Path) -> None:
    """Copy a built warehouse folder: the DuckDB file (+ WAL), profiles and dbt target."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    for name in ("profiles", "target"):
        if (src / name).exists():
            shutil.copytree(src / name, dst / name, dirs_exist_ok=True)


def _duckdb_rows(sql: str, database: str = ":memory:") -> list[tuple[Any, ...]]:
    import duckdb

    con = duckdb.connect(database, read_only=database != ":memory:")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def bing_audiences(target: Path) -> dict[str, str]:
    """The audience tables the sync reads: models of the build's manifest with meta.bing,
    as {model name: quoted schema.table}."""
    manifest = json.loads((target / "manifest.json").read_text())
    found = {}
    for node in manifest.get("nodes", {}).values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if node.get("resource_type") == "model" and meta.get("bing"):
            table = node.get("alias") or node["name"]
            found[node["name"]] = f'"{node["schema"]}"."{table}"'
    return dict(sorted(found.items()))


def _audience_sizes(database: Path, tables: dict[str, str]) -> dict[str, int]:
    if not tables:
        return {}
    union = " union all ".join(f"select '{n}', count(*) from {q}" for n, q in tables.items())
    return {name: int(n) for name, n in _duckdb_rows(union, str(database))}


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


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _fig(values: Sequence[float | None], digits: int = 2) -> str:
    """Median, with (min-max) when there are several values."""
    med = _median(values)
    if med is None:
        return "—"
    spread = _spread(values)
    vals = [v for v in values if v is not None]
    if spread and len(vals) > 1:
        return f"{med:,.{digits}f} ({spread[0]:,.{digits}f}-{spread[1]:,.{digits}f})"
    return f"{med:,.{digits}f}"


def _verdict(checks: Sequence[tuple[float | None, float]]) -> str:
    if any(v is None for v, _ in checks):
        return "—"
    return "yes" if all(v <= bound for v, bound in checks) else "**no**"


def _failed(runs: Sequence[Run]) -> str:
    bad = [r for r in runs if not r.ok]
    if not bad:
        return ""
    return (
        " **FAILED: " + ", ".join("timeout" if r.rc is None else f"rc {r.rc}" for r in bad) + "**"
    )


def _at_least(value: float | None, bound: float) -> str:
    if value is None:
        return "—"
    return "yes" if value >= bound else "**no**"


def render(ctx: Context, mach: dict[str, Any], load: tuple[str, str]) -> tuple[str, dict]:
    t = TARGETS
    r = ctx.results
    d = ctx.data
    summary: dict[str, Any] = {}
    lines = [
        f"# Benchmark: {d['people']:,} people, {ctx.args.repeats} repeat(s)",
        "",
        f"- Machine: {mach['nproc']} CPU(s) ({mach['cpu_model']}), {mach['ram_gib']} GiB RAM, "
        f"Linux {mach['kernel']}, Python {mach['python']}, "
        + ", ".join(f"{k} {v}" for k, v in mach["versions"].items())
        + ".",
        "- **Shared, noisy machine**: other work runs beside this benchmark, so figures move "
        f"between runs. Load average (1/5/15 min) at start {load[0]}, at end {load[1]}.",
        f"- Data (bench/generate.py, seed {d['seed']}, as_of {d['as_of']}): {d['people']:,} "
        f"people, {d['base_tracks_rows']:,} track rows, {d['base_identifies_rows']:,} identify "
        f"rows; next-hour batch {d['next_hour_tracks_rows']:,} track rows, "
        f"{d['next_hour_identifies_rows']:,} identify rows (incremental build: as_of "
        f"{ctx.next_as_of}).",
        "- Each figure: median over the repeats (min-max in brackets), one subprocess per "
        "measurement; wall s measured around it (start-up included), CPU s (user + system) and "
        f"peak RSS from its rusage ({mach['rusage_via']}). MB = 10^6 bytes. Targets are "
        "targets, not assertions.",
    ]
    full = r.get("full_build", [])
    sizes = next((x.extra["audience_sizes"] for x in full if "audience_sizes" in x.extra), {})
    if sizes:
        lines.append(
            f"- Audiences at as_of (dbt): {sum(sizes.values()):,} hashes in {len(sizes)} tables "
            "("
            + ", ".join(f"{k.removeprefix(AUDIENCE_PREFIX)} {v:,}" for k, v in sizes.items())
            + ")."
        )
        ref_emails = next(
            (x.extra.get("emails_per_audience") for x in r.get("reference", []) if x.ok), None
        )
        if ref_emails:
            diff = {
                k: (sizes.get(k), ref_emails.get(k))
                for k in sorted(set(sizes) | set(ref_emails))
                if sizes.get(k) != ref_emails.get(k)
            }
            lines.append(
                "- Cross-check of audience sizes, dbt vs reference: "
                + ("equal." if not diff else f"**differ** (dbt, reference): {diff}.")
            )
    big = (r.get("sync_1m") or {}).get("info", {})
    if big:
        lines.append(
            f"- 1M-member sync scenario: {big.get('big_table')} inflated with "
            f"{ctx.args.big_audience_rows:,} random hashes to {big.get('big_table_size', 0):,} "
            f"members ({sum(big.get('audience_sizes', {}).values()):,} hashes in all lists)."
        )
    for step, error in ctx.errors.items():
        lines.append(f"- **Step {step} failed**: {error}")
    lines += [
        "",
        "| # | measurement | wall s | CPU s | peak RSS MB | stand-in CPU s | "
        "stand-in peak RSS MB | target | met | notes |",
        "|---|---|--:|--:|--:|--:|--:|---|---|---|",
    ]

    def row(
        num: str,
        name: str,
        runs: Sequence[Run],
        target: str,
        bounds: Sequence[tuple[str, float]],
        notes: str = "",
        wall: Callable[[Run], float | None] = lambda x: x.wall_s,
        rss: Callable[[Run], float | None] = lambda x: x.peak_rss_mb,
        checks: Sequence[tuple[float | None, float]] = (),
    ) -> dict[str, float | None]:
        """One table line; `bounds` are (median key, upper bound); `checks` (value, upper
        bound) pairs computed elsewhere. Returns the medians."""
        ok = [x for x in runs if x.ok]
        si_cpu = [x.extra.get("standin_cpu_s") for x in ok]
        si_rss = [x.extra.get("standin_peak_rss_mb") for x in ok]
        has_si = any(v is not None for v in si_cpu)
        med = {
            "wall_s": _median([wall(x) for x in ok]),
            "cpu_s": _median([x.cpu_s for x in ok]),
            "peak_rss_mb": _median([rss(x) for x in ok]),
            "standin_cpu_s": _median(si_cpu),
            "standin_peak_rss_mb": _median(si_rss),
        }
        summary[num] = {"measurement": name, **med, "failed": len(runs) - len(ok)}
        tests = [(med[k], b) for k, b in bounds] + list(checks)
        met = _verdict(tests) if tests else ""
        lines.append(
            f"| {num} | {name}{_failed(runs)} | {_fig([wall(x) for x in ok])} "
            f"| {_fig([x.cpu_s for x in ok], 1)} | {_fig([rss(x) for x in ok], 0)} "
            f"| {_fig(si_cpu) if has_si else ''} | {_fig(si_rss, 0) if has_si else ''} "
            f"| {target} | {met} | {notes} |"
        )
        return med

    def dbt_notes(runs: Sequence[Run]) -> str:
        ok = [x for x in runs if x.ok]
        execution = _median([x.extra.get("dbt_execution_s") for x in ok])
        results = "; ".join(sorted({x.extra.get("dbt", "") for x in ok}))
        return f"dbt's own node execution {_fmt(execution)} s (rest: start-up, parse); {results}"

    ref = r.get("reference", [])
    ref_wall = _median([x.wall_s for x in ref if x.ok])
    full_wall = _median([x.wall_s for x in full if x.ok])
    ratio_build = full_wall / ref_wall if full_wall and ref_wall else None
    gb = t["dbt_peak_mb"] / 1000
    if "reference" in r:
        compute = _median([x.extra.get("compute_s") for x in ref if x.ok])
        row(
            "1",
            "reference (bench/reference.py), base data: the floor",
            ref,
            "",
            [],
            f"compute in-process {_fmt(compute)} s; same DuckDB threads / memory_limit as "
            "the profile; file database",
        )
    if "full_build" in r:
        row(
            "2",
            "dbt build, full (as typed: unit tests, models, data tests), fresh DuckDB file",
            full,
            f"≤ {t['full_build_s']:.0f} s, ≤ {t['full_build_vs_reference']:.0f}x ref., "
            f"≤ {gb:.0f} GB",
            [("wall_s", t["full_build_s"]), ("peak_rss_mb", t["dbt_peak_mb"])],
            dbt_notes(full),
            checks=[(ratio_build, t["full_build_vs_reference"])] if "reference" in r else [],
        )
    if "incremental" in r:
        inc = r["incremental"]
        row(
            "3",
            "dbt build, incremental: next-hour batch on a copy of (2)",
            inc,
            f"≤ {t['incremental_s']:.0f} s, ≤ {gb:.0f} GB",
            [("wall_s", t["incremental_s"]), ("peak_rss_mb", t["dbt_peak_mb"])],
            dbt_notes(inc),
        )

    for key, letters, what in (
        ("sync_audiences", "abc", "sync, real audiences"),
        ("sync_1m", "def", "sync, 1M-member list"),
    ):
        block = r.get(key)
        if not block:
            continue
        churned = sum(block["info"].get("churned", {}).values())
        for letter, phase, name, target, bounds in (
            (
                letters[0],
                "first",
                "first run into a fresh stand-in (all adds)",
                f"≤ {t['sync_first_s']:.0f} s, ≤ {t['sync_first_mb']:.0f} MB",
                [("wall_s", t["sync_first_s"]), ("peak_rss_mb", t["sync_first_mb"])],
            ),
            (
                letters[1],
                "nochange",
                "run with no change",
                f"≤ {t['sync_nochange_s']:.0f} s",
                [("wall_s", t["sync_nochange_s"])],
            ),
            (
                letters[2],
                "churn",
                f"run after {ctx.args.churn:.0%} churn of every table",
                f"≤ {t['sync_churn_s']:.0f} s",
                [("wall_s", t["sync_churn_s"])],
            ),
        ):
            runs = block.get(phase, [])
            ok = [x for x in runs if x.ok]
            notes = ""
            if ok:
                counts = ok[0].extra.get("sync", {})
                notes = (
                    f"{counts.get('audience_rows', 0):,} rows; sent "
                    f"{counts.get('sent_adds', 0):,} adds, {counts.get('sent_removes', 0):,} "
                    f"removes; {counts.get('lists', 0)} lists"
                )
                if phase == "churn":
                    notes += f" ({churned:,} hashes replaced)"
            row(f"4{letter}", f"{what}: {name}", runs, target, bounds, notes)

    files = r.get("files", {})
    rates = {
        impl: _median([x.extra.get("rows_per_s") for x in files.get(impl, []) if x.ok])
        for impl in ("fast", "sdk")
    }
    speedup = rates["fast"] / rates["sdk"] if rates["fast"] and rates["sdk"] else None
    if files:
        n = ctx.args.file_rows
        for letter, impl, name in (
            ("a", "fast", "sync.bulkfile.write_member_files (polars, short layout)"),
            ("b", "sdk", "SDK: BulkCustomerListItem entities + BulkFileWriter"),
        ):
            runs = files.get(impl, [])
            ok = [x for x in runs if x.ok]
            size = _median([x.extra.get("bytes") for x in ok])
            nfiles = ok[0].extra.get("files") if ok else 0
            before = _median([x.extra.get("rss_before_write_mb") for x in ok])
            row(
                f"5{letter}",
                f"upload files for {n:,} adds: {name}",
                runs,
                f"≥ {t['files_speedup']:.0f}x SDK rows/s" if impl == "fast" else "",
                [],
                f"{_fmt(rates[impl], 0)} rows/s; {nfiles} file(s), {_fmt((size or 0) / MB, 0)} "
                "MB; wall s: the write, timed in the child; RSS: peak during the write "
                f"(input frame resident: {_fmt(before, 0)} MB); CPU s: the whole child",
                wall=lambda x: x.extra.get("seconds"),
                rss=lambda x: x.extra.get("write_peak_rss_mb") or x.peak_rss_mb,
                # at least: -speedup <= -target
                checks=[(-speedup if speedup else None, -t["files_speedup"])]
                if impl == "fast"
                else [],
            )

    lines += ["", "| ratio | value | target | met |", "|---|--:|---|---|"]
    if "reference" in r and "full_build" in r:
        lines.append(
            f"| dbt full build / reference (median wall) | {_fmt(ratio_build)}x "
            f"| ≤ {t['full_build_vs_reference']:.0f}x "
            f"| {_verdict([(ratio_build, t['full_build_vs_reference'])])} |"
        )
    if files:
        lines.append(
            f"| upload-file writing, fast / SDK (rows/s) | {_fmt(speedup, 1)}x "
            f"| ≥ {t['files_speedup']:.0f}x | {_at_least(speedup, t['files_speedup'])} |"
        )
    sync_runs = [
        x
        for k in ("sync_audiences", "sync_1m")
        for p in ("first", "nochange", "churn")
        for x in (r.get(k) or {}).get(p, [])
    ]
    if sync_runs:
        lifetime = any(x.extra.get("standin_peak_is_lifetime") for x in sync_runs)
        lines += [
            "",
            "Sync rows: wall s, CPU s and peak RSS are the `sync run` process's own (`--json "
            "--max-remove-share 1`, SYNC_POLL_INTERVAL_MS=50); the stand-in (`sync-standin`, its "
            "own process, playing Microsoft) is reported apart: the CPU s it used and its peak "
            "RSS during that run"
            + (" (lifetime peak: /proc clear_refs unavailable)." if lifetime else "."),
        ]
    summary["ratios"] = {"full_build_vs_reference": ratio_build, "files_fast_vs_sdk": speedup}
    raw = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(ctx.args).items()},
        "machine": mach,
        "load_average": {"start": load[0], "end": load[1]},
        "data": d,
        "as_of": ctx.as_of,
        "next_as_of": ctx.next_as_of,
        "globs": {
            "base_tracks": ctx.base_tracks,
            "base_identifies": ctx.base_identifies,
            "all_tracks": ctx.all_tracks,
            "all_identifies": ctx.all_identifies,
        },
        "targets": TARGETS,
        "summary": summary,
        "step_errors": ctx.errors,
        "results": _jsonable(r),
    }
    return "\n".join(lines) + "\n", raw


def _jsonable(value: Any) -> Any:
    if isinstance(value, Run):
        return asdict(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


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
