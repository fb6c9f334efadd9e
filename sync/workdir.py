"""A private folder per `sync run` for its bulk files (they hold hashed PII), deleted
afterwards; the folders of runs that died (SIGKILL, power loss) are deleted by the next run,
those of live runs (of this project or any other on the machine) are left alone."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("sync.run")


LOCK_NAME = ".in-use"


def _lock_is_free(path: Path) -> bool:
    """True when no live process holds the flock on `path` (the kernel drops it on death)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False  # being created or moved right now, or not ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _delete_abandoned(parent: Path) -> None:
    """Delete the folders of runs that died (SIGKILL, power loss): the kernel released their
    lock. Folders of live runs, of this project or any other on the machine, stay."""
    for entry in parent.iterdir():
        if entry.is_dir():
            if _lock_is_free(entry / LOCK_NAME):
                log.info("deleting bulk files left by an interrupted run")
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.endswith(".lock") and _lock_is_free(entry):
            entry.unlink(missing_ok=True)  # a run that died before making its folder


@contextmanager
def private_workdir(run_id: str) -> Iterator[Path]:
    """A 0700 folder for this run's bulk files (they hold hashed PII), deleted afterwards.

    The run holds an exclusive lock on a file in it for its whole life, so the next run can
    tell an abandoned folder (lock free: delete it) from a live one (leave it).
    """
    root = Path(os.environ.get("SYNC_WORK_DIR") or tempfile.gettempdir()).resolve()
    parent = root / f"cio-bing-sync-{os.getuid()}"
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(parent, 0o700)
    work = parent / run_id
    # lock first, then move the locked file in: a cleaner never sees an unlocked .in-use
    staging = parent / f".{run_id}.lock"
    fd = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    work.mkdir(mode=0o700)
    os.rename(staging, work / LOCK_NAME)
    try:
        _delete_abandoned(parent)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)
