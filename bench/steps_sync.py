"""Benchmark step 4 (bench/benchmark.py): `sync run` into a fresh stand-in (first run: all
adds), again with no change, and after churn of every audience table; with the built audiences
as they are, or with one audience table inflated by random hashes (the "1M-member audience").
The stand-in runs as its own process, its CPU and peak RSS reported apart from the sync's."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from measure import ROOT, Run, StandInProcess, _audience_sizes, _copy_warehouse, _tool, measure

if TYPE_CHECKING:
    from benchmark import Context


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
