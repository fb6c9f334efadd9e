"""The customer lists the stand-in's Microsoft holds: their records and ids, changed as the
Microsoft Advertising UI would change them, and mirrored to a JSON state file so a stand-in
started again (another process, a demo) still has them."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import bulkcsv
from .bulkcsv import ListRecord

FIRST_LIST_ID = 810_000_001

#: One change Microsoft applied to a list: ("create" | "add" | "remove", list id, hashes).
Change = tuple[str, int, frozenset[str]]


class ListStore:
    """The lists by id. Guarded by the stand-in's one lock (shared, so an upload applied to
    the lists and the upload's own status change together)."""

    def __init__(self, lock: threading.RLock, state_file: Path | None) -> None:
        self.lock = lock
        self._state_file = state_file
        #: The records, by list id (bulk uploads apply to them in place).
        self.records: dict[int, ListRecord] = {}
        self._next_id = FIRST_LIST_ID
        if state_file is not None and state_file.exists():
            self._load()

    def new_id(self) -> int:
        """The next free list id (Microsoft's ids only grow)."""
        with self.lock:
            list_id = self._next_id
            self._next_id += 1
            return list_id

    def copy(self) -> dict[int, dict[str, Any]]:
        """``{list_id: {"name", "membership_duration", "description", "scope", "members"}}``,
        every value a copy, so a test can hold it while uploads go on."""
        with self.lock:
            return {
                list_id: {
                    "name": r.name,
                    "membership_duration": r.membership_duration,
                    "description": r.description,
                    "scope": r.scope,
                    "members": set(r.members),
                }
                for list_id, r in sorted(self.records.items())
            }

    def members(self) -> dict[int, set[str]]:
        """Each list's members now (a copy), to tell later what an upload changed."""
        with self.lock:
            return {i: set(r.members) for i, r in self.records.items()}

    def changes(self, before: dict[int, set[str]]) -> list[Change]:
        """What happened since `before` (see :meth:`members`): lists created, hashes added
        and removed per list."""
        out: list[Change] = []
        with self.lock:
            for list_id, record in self.records.items():
                old = before.get(list_id)
                if old is None:
                    out.append(("create", list_id, frozenset()))
                    continue
                if added := record.members - old:
                    out.append(("add", list_id, frozenset(added)))
                if removed := old - record.members:
                    out.append(("remove", list_id, frozenset(removed)))
        return out

    def add(
        self,
        name: str,
        membership_duration: int | None,
        members: Iterable[str],
        list_id: int | None,
        description: str,
    ) -> int:
        """A new list (with the id asked for, or the next one); returns its id."""
        with self.lock:
            if list_id is None:
                list_id = self.new_id()
            elif list_id in self.records:
                raise ValueError("a list with this id already exists")
            else:
                self._next_id = max(self._next_id, list_id + 1)
            self.records[list_id] = ListRecord(
                list_id=list_id,
                name=name,
                description=description,
                membership_duration=membership_duration,
                members=set(members),
                modified=bulkcsv.now_text(),
            )
            self.persist()
        return list_id

    def edit(self, list_id: int, name: str | None, membership_duration: int | None) -> None:
        """A list renamed or given another membership duration (None: left as it is)."""
        with self.lock:
            record = self.records.get(list_id)
            if record is None:
                raise ValueError(f"no list {list_id}")
            if name is not None:
                record.name = name
            if membership_duration is not None:
                record.membership_duration = membership_duration
            record.modified = bulkcsv.now_text()
            self.persist()

    def delete(self, list_id: int) -> None:
        """A list gone with its members."""
        with self.lock:
            if self.records.pop(list_id, None) is None:
                raise ValueError(f"no list {list_id}")
            self.persist()

    def clear(self) -> None:
        """Every list forgotten and the ids started again (the stand-in's reset)."""
        with self.lock:
            self.records.clear()
            self._next_id = FIRST_LIST_ID
            self.persist()

    def persist(self) -> None:
        """Write the lists to the state file, if any, atomically (a stand-in killed while
        writing keeps the previous file)."""
        if self._state_file is None:
            return
        with self.lock:
            data = {
                "version": 1,
                "next_id": self._next_id,
                "lists": {str(i): r.to_json() for i, r in sorted(self.records.items())},
            }
            target = self._state_file
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def _load(self) -> None:
        assert self._state_file is not None
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        self.records = {
            int(i): ListRecord.from_json(int(i), rec) for i, rec in data.get("lists", {}).items()
        }
        self._next_id = max(
            int(data.get("next_id", FIRST_LIST_ID)), max(self.records, default=0) + 1
        )
