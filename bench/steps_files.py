"""Benchmark step 5 (bench/benchmark.py): writing the upload files for 1M adds, sync.bulkfile
(polars) against the SDK's entities + BulkFileWriter, each in a fresh child process (the
hidden `benchmark.py --worker-files`), timed in-process with the peak RSS of the write alone."""

from __future__ import annotations

import gc
import json
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from measure import BENCH, LIST_ID, ROOT, Run, _duckdb_rows, _proc_status_mb, _reset_peak, measure

if TYPE_CHECKING:
    from benchmark import Context


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
                sys.executable, str(BENCH / "benchmark.py"),
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
