"""Measuring one benchmark figure: a subprocess's wall time, CPU and peak RSS (GNU time -v,
or getrusage of a fresh child), the stand-in as its own measured process, medians, and the
warehouse helpers the steps share."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
