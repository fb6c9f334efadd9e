"""The life of one member upload file, as rows of `sync_state.uploads`.

    recorded --(file POSTed)--> sent --(result collected and committed)--> committed
        |                         |
        |                         +--(Microsoft: Failed / unknown request)--> failed
        +--(Microsoft never got the file: PendingFileUpload)--> abandoned

`recorded` is written, with the file's hashes in `pending` (tagged with the upload id), in one
transaction after Microsoft handed out the request id and before the file is sent. So
whatever happens next (the run's wait ends, the process is killed, the machine goes away), a
later run knows the upload by its request id and collects its result instead of sending the
file again. `recorded` and `sent` are "in flight": their hashes are left out of every new
upload of the list (a newer opposite change waits for the older one's result), and no new
upload of the same list and action starts while one is in flight. `failed` and `abandoned`
leave their hashes in `pending`, uncertain, so the next plan sends them again in whichever
direction the audience needs. The commit of a result (members, row errors, counters) and
the move to `committed` are one transaction (`State.commit_upload`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from sync.project import Audience
from sync.state import State, utcnow
from sync.state_schema import IN_FLIGHT_SQL


@dataclass(frozen=True)
class InFlight:
    """An upload an earlier run (or this one) left at Microsoft, still to be collected."""

    upload_id: str
    run_id: str
    list_id: int
    action: str
    rows: int
    request_id: str
    tracking_id: str | None
    state: str
    recorded_at: datetime

    def age(self) -> timedelta:
        return utcnow() - self.recorded_at


class Uploads:
    """The transitions of the upload state machine, each one durable when it returns."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.wh = state.wh
        self.s = state.s

    def record(
        self,
        *,
        run_id: str,
        audience: Audience,
        list_id: int,
        action: str,
        hashes: pl.Series,
        request_id: str,
        tracking_id: str | None,
    ) -> str:
        """-> recorded: the upload and its hashes (in `pending`), before the file is sent.
        A request id of this list already recorded (Microsoft's retry of the same file after
        a Failed status) is closed as failed first."""
        upload_id = uuid.uuid4().hex
        now = utcnow()
        frame = hashes.to_frame("email_sha256")
        with self.wh.transaction():
            with self.wh.frame("_resending", frame):  # a retry of the same file: close the old
                self.wh.execute(
                    f"""update {self.s}.uploads set state = 'failed', finished_at = ?
                    where list_id = ? and run_id = ? and state in {IN_FLIGHT_SQL}
                    and upload_id in (
                        select upload_id from {self.s}.pending where list_id = ?
                        and email_sha256 in (select email_sha256 from _resending)
                    )""",
                    [now, list_id, run_id, list_id],
                )
            self.state.mark_pending(run_id, list_id, action, frame, upload_id)
            self.wh.execute(
                f"""insert into {self.s}.uploads (upload_id, run_id, audience, list_id, action,
                    rows, request_id, tracking_id, state, recorded_at)
                values (?, ?, ?, ?, ?, ?, ?, ?, 'recorded', ?)""",
                [upload_id, run_id, audience.name, list_id, action, hashes.len(), request_id,
                 tracking_id, now],
            )  # fmt: skip
        return upload_id

    def sent(self, request_id: str) -> None:
        """recorded -> sent: Microsoft has the file."""
        self.wh.execute(
            f"update {self.s}.uploads set state = 'sent', sent_at = ? "
            "where request_id = ? and state = 'recorded'",
            [utcnow(), request_id],
        )

    def close(
        self,
        upload: InFlight,
        state: str,
        error: dict[str, object] | None = None,
    ) -> None:
        """-> failed | abandoned: nothing of it counts; its hashes stay uncertain in
        `pending` (resent by the next plan)."""
        e = error or {}
        self.wh.execute(
            f"""update {self.s}.uploads set state = ?, finished_at = ?, error_code = ?,
                error_name = ?, error_message = ?
            where upload_id = ?""",
            [state, utcnow(), e.get("code"), e.get("name"), e.get("message"), upload.upload_id],
        )
        self.wh.execute(
            f"update {self.s}.pending set upload_id = null where upload_id = ?",
            [upload.upload_id],
        )

    def in_flight(self, list_id: int) -> list[InFlight]:
        """The list's uploads not collected yet, oldest first."""
        rows = self.wh.fetch(
            f"""select upload_id, run_id, list_id, action, rows, request_id, tracking_id, state,
                recorded_at
            from {self.s}.uploads where list_id = ? and state in {IN_FLIGHT_SQL}
            order by recorded_at""",
            [list_id],
        )
        return [InFlight(**row) for row in rows.iter_rows(named=True)]

    def rows(self, request_id: str) -> int:
        """How many hashes the upload of `request_id` carries."""
        rows = self.wh.scalar(
            f"select rows from {self.s}.uploads where request_id = ?", [request_id]
        )
        return int(rows or 0)

    def hashes(self, upload: InFlight) -> pl.Series:
        return self.wh.fetch(
            f"select email_sha256 from {self.s}.pending where upload_id = ?",
            [upload.upload_id],
        ).get_column("email_sha256")

    def summary(self, list_id: int | None) -> list[dict[str, object]]:
        """In-flight uploads of a list for `status`: action, rows, request id, age."""
        if list_id is None:
            return []
        return [
            {
                "action": u.action,
                "rows": u.rows,
                "request_id": u.request_id,
                "state": u.state,
                "age_seconds": round(u.age().total_seconds(), 1),
            }
            for u in self.in_flight(list_id)
        ]
