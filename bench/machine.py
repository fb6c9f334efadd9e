"""What a benchmark was measured on (bench/benchmark.py): CPUs, memory, kernel, Python and
the versions of the engines, how RSS was read, and the commit with the files changed beside
it, so a figure can be compared with another machine's or another commit's."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

from measure import ROOT, TIME_BIN


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
