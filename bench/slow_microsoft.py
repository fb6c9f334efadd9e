"""A first sync of a 1M-member audience against Microsoft's pace, scaled down in time.

    python bench/slow_microsoft.py [--rows 1000000] [--scale 60]

Microsoft processes about 10k rows a minute; the stand-in here takes 60/--scale seconds per
10k rows, and everything timed by the schedule is divided by the same factor: `sync run`
starts every 3600/scale seconds (an hourly schedule) and waits --upload-timeout 600/scale
seconds per upload. The demo warehouse is built by `dbt build`, then audience_ltv_high gets
--rows random hashes. Runs go on until every list is in sync; each run is a measured
subprocess (wall time, peak RSS). Printed: per run its time, peak RSS, files sent and
results collected; then the files the stand-in received against the uploads the state
recorded (each file sent once), and whether Microsoft's list equals the audience.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import ROOT, StandInProcess, _duckdb_rows, _tool, bing_audiences, measure
from steps_sync import _inflate


def build_demo(work: Path, env: dict[str, str]) -> None:
    (work / "profiles").mkdir(parents=True)
    shutil.copy(ROOT / "profiles.yml.example", work / "profiles" / "profiles.yml")
    subprocess.run(
        [_tool("dbt"), "build", "--quiet", "--project-dir", str(ROOT),
         "--profiles-dir", str(work / "profiles"), "--target-path", str(work / "target"),
         "--log-path", str(work / "logs")],
        check=True, env=env, cwd=ROOT,
    )  # fmt: skip


def control(url: str, route: str) -> dict:
    base = url.split("/Api/")[0]
    with urllib.request.urlopen(f"{base}/_standin/{route}", timeout=600) as response:
        return json.load(response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="random hashes added")
    parser.add_argument("--scale", type=float, default=60.0, help="time compression factor")
    parser.add_argument("--max-runs", type=int, default=12)
    args = parser.parse_args()
    if not 1 <= args.scale <= 600:
        parser.error("--scale must be 1-600 (sync run waits at least 1 s per upload)")
    per_10k = 60.0 / args.scale
    interval, wait = 3600.0 / args.scale, 600.0 / args.scale
    work = Path(tempfile.mkdtemp(prefix="slow-microsoft-"))
    database = work / "warehouse.duckdb"
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "CIO_DUCKDB_PATH": str(database),
        "DBT_PROFILES_DIR": str(work / "profiles"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    try:
        build_demo(work, env)
        tables = bing_audiences(work / "target")
        table, size = _inflate(database, tables, "audience_ltv_high", args.rows)
        print(f"{table}: {size:,} rows; Microsoft at {per_10k:g} s per 10k rows (1/{args.scale:g}"
              f"); a run every {interval:g} s, each waiting up to {wait:g} s per upload")  # fmt: skip
        standin = StandInProcess(
            work, env, args=["--processing-seconds-per-10k-rows", str(per_10k)]
        )
        (work / "sync-work").mkdir()
        run_env = {
            **env,
            "BING_DEVELOPER_TOKEN": "bench", "BING_CUSTOMER_ID": "1", "BING_ACCOUNT_ID": "1",
            "BING_ACCESS_TOKEN": "bench", "BING_BULK_SERVICE_URL": standin.url,
            "SYNC_POLL_INTERVAL_MS": "500", "SYNC_WORK_DIR": str(work / "sync-work"),
        }  # fmt: skip
        cmd = [_tool("sync"), "-q", "run", "--json", "--upload-timeout", str(wait),
               "--project-dir", str(ROOT), "--target-path", str(work / "target")]  # fmt: skip
        started = time.monotonic()
        try:
            for n in range(1, args.max_runs + 1):
                slot = started + (n - 1) * interval
                time.sleep(max(0.0, slot - time.monotonic()))
                run = measure(f"run-{n}", cmd, env=run_env, timeout=3600, workdir=work / "logs")
                if not run.stdout.strip():
                    print(f"run {n} printed no JSON (exit {run.rc}):\n{run.stderr_tail}")
                    return 1
                doc = json.loads(run.stdout)
                ltv = next(x for x in doc["lists"] if x["audience"] == table)
                print(f"run {n} at t={slot - started:5.0f} s: {run.wall_s:6.1f} s, peak RSS "
                      f"{run.peak_rss_mb:5.0f} MB, exit {run.rc}; {table}: {ltv['status']}, "
                      f"sent {ltv['sent_adds']:,}, confirmed {ltv['confirmed_adds']:,}, "
                      f"in flight {sum(u['rows'] for u in ltv['in_flight']):,}")  # fmt: skip
                if run.rc != 0 or all(x["status"] == "in_sync" for x in doc["lists"]):
                    break
            files = control(standin.url, "calls")["calls"].count("UploadFile")
            lists = control(standin.url, "lists")["lists"]
        finally:
            standin.stop()
        uploads = _duckdb_rows("select count(*), sum(rows) from sync_state.uploads", str(database))[
            0
        ]
        members = _duckdb_rows(
            f"select count(*) from sync_state.members m join sync_state.lists l "
            f"using (list_id) where l.audience = '{table}'", str(database),
        )[0][0]  # fmt: skip
        at_microsoft = max(len(x["members"]) for x in lists.values())
        print(f"runs: {n}; files received by the stand-in: {files} ({len(lists)} list creates "
              f"+ {files - len(lists)} member files); member uploads recorded: {uploads[0]} "
              f"({uploads[1]:,} rows); {table}: {members:,} confirmed in the state, "
              f"{at_microsoft:,} at Microsoft, audience {size:,}")  # fmt: skip
        return 0 if members == at_microsoft == size and files - len(lists) == uploads[0] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
