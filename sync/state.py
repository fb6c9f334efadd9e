"""The sync's memory, kept in the warehouse (scheduled jobs run on throwaway machines).

Tables in their own schema (declared as dbt sources, so analysts can report on them):
`lists` (audience -> Bing list, and whether its members at Microsoft are unknown to the
sync: `needs_replace`, set when a list is adopted, cleared when a Replace commits),
`members` (each hash Bing confirmed, when, by which run),
`pending` (hashes sent whose result is not known yet), `runs` (one row per run and list),
`row_errors` (rows Microsoft rejected: one row per list and hash, with how many runs it was
rejected on, `parked_at` once it is no longer retried, `resolved_at` once Microsoft took it
after all: kept, so the report can count each run's rejections), and `oauth_tokens` (Microsoft's
rotated refresh token, where the next run finds it; read and written by sync/tokens.py).

The invariants: `members` only ever holds what a Microsoft result file confirmed; each
upload's outcome is committed in one transaction; and a hash is written to `pending` before
it is sent and leaves it only when Microsoft confirms it, so a hash whose fate is unknown
(the run died, or Microsoft rejected the row) is "uncertain" whatever the action was: the
next run sends it again in whichever direction the audience needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from sync import state_schema
from sync.errors import SyncError
from sync.project import Audience
from sync.warehouse import Warehouse, quote_ident

#: Runs a rejected row is sent on before it is parked (`sync run --max-row-attempts`).
DEFAULT_MAX_ROW_ATTEMPTS = 3


def utcnow() -> datetime:
    """Naive UTC now, the timestamp convention of every state table."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Delta:
    """What a list needs, computed in the warehouse."""

    audience_rows: int
    members: int
    maybe_members: int  # members, plus hashes sent whose outcome is unknown (maybe at Microsoft)
    adds: int
    removes: int
    refresh: int
    bad_hashes: int
    parked: int = 0  # rejected on too many runs: no longer sent (sync status lists them)
    in_flight: int = 0  # in an upload Microsoft is still processing: left alone until collected


class State:
    """Reads and writes the state tables through the warehouse module."""

    def __init__(self, wh: Warehouse, schema: str) -> None:
        self.wh = wh
        self.schema = schema
        self.s = quote_ident(schema)
        #: {renamed audience: the model name its list is stored under}, set by carry_over()
        self.renamed: dict[str, str] = {}

    def ensure(self) -> None:
        """The state tables created or migrated (`sync run`)."""
        state_schema.create(self.wh, self.schema)

    def readable(self) -> None:
        """The state readable, nothing written (`plan`, `status`, `report`)."""
        state_schema.readable(self.wh, self.schema)

    # ------------------------------------------------------------------ lists
    def _stored_as(self, audience: Audience) -> str:
        return self.renamed.get(audience.name, audience.name)

    def carry_over(self, audiences: list[Audience], *, write: bool) -> list[dict[str, Any]]:
        """Audience models renamed in the dbt project keep their lists: an enabled audience
        with no list of its own whose list name is that of a list stored for a model no
        longer in the project takes that list over, with its members (nothing re-sent).
        `sync run` rewrites the state (`write`); `plan` only reads it as if."""
        names = [a.name for a in audiences]
        stored = self.wh.fetch(f"select audience, list_name, list_id from {self.s}.lists")
        own = set(stored["audience"].to_list())
        gone = stored.filter(~pl.col("audience").is_in(names))
        by_name = {r["list_name"]: r for r in gone.to_dicts()}
        moves = [
            {"audience": a.name, "from": by_name[a.list_name]["audience"],
             "list_name": a.list_name, "list_id": by_name[a.list_name]["list_id"]}
            for a in audiences
            if a.enabled and a.name not in own and a.list_name in by_name
        ]  # fmt: skip
        for move in moves:
            if write:
                with self.wh.transaction():
                    for table in ("lists", "uploads"):
                        self.wh.execute(
                            f"update {self.s}.{table} set audience = ? where audience = ?",
                            [move["audience"], move["from"]],
                        )
            else:
                self.renamed[move["audience"]] = move["from"]
        return moves

    def list_id(self, audience: Audience) -> int | None:
        return self.wh.scalar(
            f"select list_id from {self.s}.lists where audience = ? order by updated_at desc limit 1",
            [self._stored_as(audience)],
        )

    def stored_list_name(self, audience: Audience, list_id: int) -> str | None:
        """The list name the YAML had when the sync last saved this list."""
        return self.wh.scalar(
            f"select list_name from {self.s}.lists where audience = ? and list_id = ?",
            [self._stored_as(audience), list_id],
        )

    def needs_replace(self, audience: Audience, list_id: int) -> bool:
        """True when the sync does not know who is on the list at Microsoft: adopted (found
        by name, or pinned) and not yet replaced with the audience, or never seen at all."""
        known = self.wh.scalar(
            f"select needs_replace from {self.s}.lists where audience = ? and list_id = ?",
            [self._stored_as(audience), list_id],
        )
        return True if known is None else bool(known)

    def created_by_own_run(self, audience: Audience, run_id: str) -> bool:
        """Whether `run_id` is a run of this audience in this state: a list whose
        description names it was created by this warehouse's sync (and is empty, if the run
        died before it stored the id: nothing is sent to a list before that)."""
        return bool(
            self.wh.scalar(
                f"select count(*) from {self.s}.runs where run_id = ? and audience = ?",
                [run_id, audience.name],
            )
        )

    def save_list(self, audience: Audience, list_id: int, needs_replace: bool = False) -> None:
        now = utcnow()
        with self.wh.transaction():
            self.wh.execute(f"delete from {self.s}.lists where audience = ?", [audience.name])
            self.wh.execute(
                f"insert into {self.s}.lists values (?, ?, ?, ?, ?, ?, ?)",
                [audience.name, list_id, audience.list_name, audience.role, now, now,
                 needs_replace],
            )  # fmt: skip

    def forget_list(self, audience: Audience, list_id: int) -> None:
        """A list deleted at Microsoft: its members, pending hashes and row errors went with
        it, so the audience starts over on a new list."""
        with self.wh.transaction():
            for table in ("members", "pending", "row_errors"):
                self.wh.execute(f"delete from {self.s}.{table} where list_id = ?", [list_id])
            self.wh.execute(f"delete from {self.s}.lists where audience = ?", [audience.name])

    # ------------------------------------------------------------------ deltas
    def _status_sql(self, relation: str) -> str:
        """CTEs shared by planning and sending, computed in the warehouse in one pass:
        `status` has one row per hash in the audience, the confirmed `members` or `pending`
        (sent by a run that did not learn the outcome, so maybe applied), with
        `in_audience`, `is_member` and `surely_present` (a member with no pending row and not
        due for a refresh). Adds = in the audience and not surely present; removes = not in
        the audience (a member, or maybe one). A hash parked in `row_errors` for the direction
        it needs is left out of the outbox (it is not retried); in the other direction (the
        audience changed) it starts over. Parameters: list_id (x2), refresh cutoff (x2),
        list_id.
        """
        return f"""
            audience as (
                select distinct email_sha256 from {relation} where email_sha256 is not null
            ),
            members as (
                select email_sha256, confirmed_at from {self.s}.members where list_id = ?
            ),
            pending as (
                select distinct email_sha256 from {self.s}.pending where list_id = ?
            ),
            in_flight as (
                select p.email_sha256 from {self.s}.pending as p
                inner join {self.s}.uploads as u on p.upload_id = u.upload_id
                where p.list_id = ? and u.state in {state_schema.IN_FLIGHT_SQL}
            ),
            known as (
                select
                    coalesce(m.email_sha256, p.email_sha256) as email_sha256,
                    m.email_sha256 is not null as is_member,
                    m.email_sha256 is not null and p.email_sha256 is null
                    and (cast(? as timestamp) is null or m.confirmed_at >= ?) as surely_present
                from members m
                full outer join pending p on m.email_sha256 = p.email_sha256
            ),
            status as (
                select
                    coalesce(a.email_sha256, k.email_sha256) as email_sha256,
                    a.email_sha256 is not null as in_audience,
                    k.email_sha256 is not null as is_known,
                    coalesce(k.is_member, false) as is_member,
                    coalesce(k.surely_present, false) as surely_present
                from audience a
                full outer join known k on a.email_sha256 = k.email_sha256
            ),
            parked as (
                select email_sha256, action = 'Add' as is_add from {self.s}.row_errors
                where list_id = ? and parked_at is not null and resolved_at is null
            ),
            wanted as (
                select email_sha256, in_audience as is_add, is_member from status
                where (in_audience and not surely_present) or not in_audience
            ),
            outbox as (
                select * from wanted as w
                where not exists (
                    select 1 from parked as p
                    where p.email_sha256 = w.email_sha256 and p.is_add = w.is_add
                )
                and not exists (select 1 from in_flight as f where f.email_sha256 = w.email_sha256)
            )"""

    def _refresh_cutoff(self, audience: Audience) -> datetime | None:
        """Members confirmed before this are re-added: Microsoft drops them when the
        membership duration runs out, silently, so the sync refreshes them a margin early."""
        days = audience.membership_duration_days
        if days <= 0:
            return None
        margin = max(1.0, days * 0.2)
        return utcnow() - timedelta(days=max(0.0, days - margin))

    def _params(self, audience: Audience, list_id: int | None) -> list[Any]:
        cutoff = self._refresh_cutoff(audience)
        return [list_id, list_id, list_id, cutoff, cutoff, list_id]

    def delta(self, audience: Audience, relation: str, list_id: int | None) -> Delta:
        """Counts of adds, removes and refreshes, computed where the data is."""
        row = self.wh.fetch(
            f"""
            with {self._status_sql(relation)}
            select
                sum(case when in_audience then 1 else 0 end) as audience_rows,
                sum(case when is_member then 1 else 0 end) as members,
                sum(case when is_known then 1 else 0 end) as maybe_members,
                (select count(*) from outbox where is_add and not is_member) as adds,
                (select count(*) from outbox where not is_add) as removes,
                (select count(*) from outbox where is_add and is_member) as refresh,
                (select count(*) from {relation}
                    where email_sha256 is null or not {self.wh.is_sha256_hex("email_sha256")}
                ) as bad_hashes,
                (select count(*) from wanted) - (select count(*) from outbox)
                    - (select count(*) from in_flight) as parked,
                (select count(*) from in_flight) as in_flight
            from status
            """,
            self._params(audience, list_id),
        ).row(0, named=True)
        return Delta(**{k: int(v or 0) for k, v in row.items()})

    def outbox(
        self, audience: Audience, relation: str, list_id: int | None
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(removes, adds): hashes not in the audience that are, or may be, at Microsoft
        (members, or sent by an interrupted run); hashes in the audience that are not surely
        there (new, due for a refresh, or removed by an interrupted run that may have gone
        through). One query for both."""
        out = self.wh.fetch(
            f"with {self._status_sql(relation)} select email_sha256, is_add from outbox",
            self._params(audience, list_id),
        )
        removes = out.filter(~pl.col("is_add")).select("email_sha256")
        adds = out.filter(pl.col("is_add")).select("email_sha256")
        return removes, adds

    def mark_pending(
        self,
        run_id: str,
        list_id: int,
        action: str,
        hashes: pl.DataFrame,
        upload_id: str | None = None,
    ) -> None:
        """Record hashes about to be sent (of upload `upload_id`), committed before the file
        is sent."""
        with self.wh.transaction(), self.wh.frame("_sending", hashes):
            self.delete_listed("pending", list_id, "_sending")
            self.wh.execute(
                f"insert into {self.s}.pending (list_id, email_sha256, action, run_id, upload_id) "
                "select ?, email_sha256, ?, ?, ? from _sending",
                [list_id, action, run_id, upload_id],
            )

    def delete_listed(self, table: str, list_id: int, frame: str) -> None:
        """Delete the list's rows of `table` whose hash is in the registered `frame`; skipped
        when the list has none (a first upload), which spares a hash table of its size."""
        if self.wh.scalar(f"select count(*) from {self.s}.{table} where list_id = ?", [list_id]):
            self.wh.execute(
                f"delete from {self.s}.{table} where list_id = ? "
                f"and email_sha256 in (select email_sha256 from {frame})",
                [list_id],
            )

    # ------------------------------------------------------------------ commits
    def commit_upload(
        self,
        *,
        run_id: str,
        audience: Audience,
        list_id: int,
        action: str,
        sent: pl.DataFrame,
        rejected: pl.DataFrame,
        request_id: str | None,
        max_row_attempts: int = DEFAULT_MAX_ROW_ATTEMPTS,
    ) -> int:
        """One upload's result, in one transaction: confirmed rows change `members` (and are
        resolved in `row_errors`: their fate is known), rejected rows are counted in `row_errors`
        (one row per list and hash; the `max_row_attempts`-th rejection in the same direction
        parks it), the run's counters move. Returns the confirmed count.

        A Replace wiped the list first: its confirmed rows are then the only members, no
        earlier hash is pending any more, and the list's members are known from now on."""
        confirmed = sent  # the usual case, no rejections: no join over a million hashes
        if rejected.height:
            unmatched = rejected.join(sent, on="email_sha256", how="anti").height
            if unmatched:  # then "sent minus rejected" would count rows Microsoft refused
                raise SyncError(
                    f"{unmatched} rejected row(s) in Microsoft's result file match no row "
                    "sent; nothing of this upload is recorded as confirmed (it is sent again "
                    "next run)"
                )
            confirmed = sent.join(rejected.select("email_sha256"), on="email_sha256", how="anti")
        now = utcnow()
        replace, action = action == "Replace", "Add" if action == "Replace" else action
        counter = "adds" if action == "Add" else "removes"
        with (
            self.wh.transaction(),
            self.wh.frame("_confirmed", confirmed),
            self.wh.frame("_rejected", rejected),
        ):
            if replace:  # Microsoft wiped the list: nothing from before is, or may be, on it
                for table in ("members", "pending"):
                    self.wh.execute(f"delete from {self.s}.{table} where list_id = ?", [list_id])
                self.wh.execute(
                    f"update {self.s}.lists set needs_replace = false, updated_at = ? "
                    "where list_id = ?",
                    [now, list_id],
                )
            self.delete_listed("members", list_id, "_confirmed")
            # confirmed: their fate is known; rejected rows stay uncertain
            self.delete_listed("pending", list_id, "_confirmed")
            if self.wh.scalar(
                f"select count(*) from {self.s}.row_errors "
                "where list_id = ? and resolved_at is null",
                [list_id],
            ):
                self.wh.execute(
                    f"update {self.s}.row_errors set resolved_at = ? where list_id = ? "
                    "and resolved_at is null and email_sha256 in (select email_sha256 from _confirmed)",
                    [now, list_id],
                )
            if action == "Add":
                self.wh.execute(
                    f"insert into {self.s}.members select ?, email_sha256, ?, ? from _confirmed",
                    [list_id, now, run_id],
                )
            if rejected.height:
                self._record_rejections(run_id, audience, list_id, action, now, max_row_attempts)
            if request_id:  # the upload's life ends here; its rejected rows stay uncertain
                self.wh.execute(
                    f"update {self.s}.pending set upload_id = null where upload_id in "
                    f"(select upload_id from {self.s}.uploads where request_id = ?)",
                    [request_id],
                )
                self.wh.execute(
                    f"update {self.s}.uploads set state = 'committed', finished_at = ? "
                    "where request_id = ?",
                    [now, request_id],
                )
            self.wh.execute(
                f"""update {self.s}.runs set
                    sent_{counter} = sent_{counter} + ?,
                    confirmed_{counter} = confirmed_{counter} + ?,
                    rejected = rejected + ?,
                    request_ids = concat_ws(',', request_ids, ?)
                where run_id = ? and audience = ?""",
                [sent.height, confirmed.height, rejected.height, request_id, run_id, audience.name],
            )
        return confirmed.height

    def _record_rejections(
        self,
        run_id: str,
        audience: Audience,
        list_id: int,
        action: str,
        now: datetime,
        max_row_attempts: int,
    ) -> None:
        """Upsert the registered `_rejected` rows into `row_errors`: a rejection in the same
        direction as the last one counts one more attempt (parked at `max_row_attempts`); in
        the other direction the hash starts over."""
        self.wh.execute(
            f"""insert into {self.s}.row_errors
            select
                ?, ?, ?, ?, r.email_sha256, r.error_code, r.error_message, ?,
                coalesce(e.attempts, 0) + 1,
                case when coalesce(e.attempts, 0) + 1 >= ? then ? end,
                null
            from _rejected as r
            left join {self.s}.row_errors as e
                on e.list_id = ? and e.email_sha256 = r.email_sha256 and e.action = ?
                and e.resolved_at is null""",
            [run_id, audience.name, list_id, action, now, max_row_attempts, now, list_id, action],
        )
        self.wh.execute(
            f"""delete from {self.s}.row_errors
            where list_id = ? and run_id <> ?
                and email_sha256 in (select email_sha256 from _rejected)""",
            [list_id, run_id],
        )

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, audience: Audience, delta: Delta | None) -> None:
        d = delta or Delta(0, 0, 0, 0, 0, 0, 0)
        self.wh.execute(
            f"""insert into {self.s}.runs (run_id, audience, list_name, role, list_id, status,
                started_at, audience_rows, members_before, planned_adds, planned_removes)
            values (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)""",
            [
                run_id, audience.name, audience.list_name, audience.role, None, utcnow(),
                d.audience_rows, d.members, d.adds + d.refresh, d.removes,
            ],
        )  # fmt: skip

    def finish_run(
        self,
        run_id: str,
        audience: Audience,
        *,
        status: str,
        list_id: int | None,
        guard: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        now = utcnow()
        self.wh.execute(
            f"""update {self.s}.runs set status = ?, list_id = ?, guard = ?, message = ?,
                finished_at = ?, seconds = date_diff('microsecond', started_at, ?) / 1e6
            where run_id = ? and audience = ?""",
            [status, list_id, guard, message, now, now, run_id, audience.name],
        )
        return self.wh.fetch(
            f"select * from {self.s}.runs where run_id = ? and audience = ?",
            [run_id, audience.name],
        ).row(0, named=True)

    def abandon_running(self) -> int:
        """Runs left 'running' by a killed process are marked so; their work is redone."""
        n = self.wh.scalar(f"select count(*) from {self.s}.runs where status = 'running'")
        self.wh.execute(f"update {self.s}.runs set status = 'interrupted' where status = 'running'")
        return int(n or 0)

    # ------------------------------------------------------------------ status
    def status(self, audiences: list[Audience], history: int) -> list[dict[str, Any]]:
        """Per audience: its list, confirmed members, recent runs, and row errors: pending
        (retried next run) and parked (rejected on too many runs, no longer sent)."""
        out = []
        for a in audiences:
            list_id = self.list_id(a)
            runs = self.wh.fetch(
                f"""select run_id, status, started_at, seconds, planned_adds, planned_removes,
                    confirmed_adds, confirmed_removes, rejected, guard, message
                from {self.s}.runs where audience = ? order by started_at desc limit ?""",
                [a.name, history],
            )
            errors = self.wh.fetch(  # rejected rows, by code: retried next run, or parked
                f"""select parked_at is not null as parked, error_code,
                    any_value(error_message) as error_message, count(*) as n,
                    max(attempts) as attempts
                from {self.s}.row_errors
                where audience = ? and list_id = ? and resolved_at is null
                group by all order by n desc, error_code""",
                [a.name, list_id],
            )
            out.append(
                {
                    "audience": a.name,
                    "list_name": a.list_name,
                    "role": a.role,
                    "list_id": list_id,
                    "members": self.member_count(list_id),
                    "runs": runs.to_dicts(),
                    "pending_row_errors": errors.filter(~pl.col("parked"))
                    .drop("parked")
                    .to_dicts(),
                    "parked_row_errors": errors.filter(pl.col("parked")).drop("parked").to_dicts(),
                }
            )
        return out

    def left_project(self, audiences: list[Audience]) -> list[dict[str, Any]]:
        """Lists the sync made or adopted whose audience is disabled (meta.audience.enabled:
        false) or no longer in the dbt project (its model deleted or renamed): no run
        touches them any more, so their last members stay at Microsoft. Said by `sync
        status` and `sync run`, never left silent."""
        enabled = [a.name for a in audiences if a.enabled] + list(self.renamed.values())
        disabled = [a.name for a in audiences if not a.enabled]
        lists = self.wh.fetch(
            f"select audience, list_name, role, list_id from {self.s}.lists order by list_name"
        ).filter(~pl.col("audience").is_in(enabled))
        # members are counted only for those lists (rarely any), not over the whole table
        return [
            {
                **item,
                "members": self.member_count(item["list_id"]),
                "reason": "disabled" if item["audience"] in disabled else "not_in_project",
            }
            for item in lists.to_dicts()
        ]

    def member_count(self, list_id: int | None) -> int:
        """Confirmed members of one list (0 for a list not created yet)."""
        return int(
            self.wh.scalar(f"select count(*) from {self.s}.members where list_id = ?", [list_id])
            or 0
        )
