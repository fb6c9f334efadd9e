"""`sync run`: bring every selected Bing list to exactly its audience table, sending deltas.

Order matters: exclusion (suppression) lists first, removes included, so someone who just
bought is suppressed before they leave a recovery list. Within a list, results of uploads
left in flight by earlier runs are collected first (sync/uploads.py: each upload is recorded
with its request id before its file is sent), then removes go before adds, each as its own
uploads, each committed as its result comes; one still processing when the run's wait ends
stays in flight for a later run (never sent twice)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from sync.bing import (
    Bing,
    BingError,
    PermanentBingError,
    UploadFailed,
    UploadHooks,
    UploadInFlight,
)
from sync.errors import SyncError
from sync.outcome import ListResult, note_in_flight
from sync.plan import ListPlan
from sync.project import Audience
from sync.redact import scrub
from sync.remote_lists import AccountLists
from sync.state import DEFAULT_MAX_ROW_ATTEMPTS, State
from sync.uploads import InFlight, Uploads

log = logging.getLogger("sync.run")

#: Seconds after an upload was recorded by a run that is gone (the run lock proves it) within
#: which Microsoft may still show a file that run had sent: after that, no file is coming.
POST_GRACE = 15.0

# A progress callback: (audience, action, rows done, rows total).
Progress = Callable[[str, str, int, int], None]


@dataclass(eq=False)
class Runner:
    """Executes list plans against Microsoft through the `Bing` client, recording state."""

    state: State
    bing_factory: Callable[[], Bing]
    run_id: str
    replan: Callable[[Audience], ListPlan]
    progress: Progress | None = None
    max_row_attempts: int = DEFAULT_MAX_ROW_ATTEMPTS
    wait: float = 600.0
    max_upload_age: timedelta = timedelta(hours=24)
    post_grace: float = POST_GRACE
    _bing: Bing | None = field(default=None, init=False)
    _connect_error: BingError | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.uploads = Uploads(self.state)
        self.lists = AccountLists(self.state, lambda: self.bing, self.run_id, self._plan_again)

    @property
    def bing(self) -> Bing:
        """The Microsoft client, connected on first use. A connection refused for good
        (revoked token) fails every list without asking again. Every call to Microsoft goes
        through here, and the warehouse file is given back first: Microsoft may take minutes,
        and a `dbt build` must not wait for it."""
        self.state.wh.release()
        if self._connect_error is not None:
            raise self._connect_error
        if self._bing is None:
            self._bing = self.bing_factory()
        return self._bing

    def run(self, plans: list[ListPlan]) -> list[ListResult]:
        """Suppression first, enforced: exclusion lists run before any target list, and when
        one of them fails, is refused or still has an upload processing at Microsoft, the
        target lists send their removes but hold their adds, so nobody is retargeted while
        the suppression list may not hold them yet (Microsoft applies uploads in no
        promised order)."""
        exclusions = [self._run_one(p) for p in plans if p.audience.is_exclusion]
        unsafe = [
            r.plan.audience.list_name
            for r in exclusions
            if r.status in ("failed", "refused", "in_flight")
        ]
        targets = [self._run_one(p, unsafe) for p in plans if not p.audience.is_exclusion]
        return exclusions + targets

    # ------------------------------------------------------------------ one list
    def _run_one(self, plan: ListPlan, unsafe_exclusions: list[str] | None = None) -> ListResult:
        a = plan.audience
        started = datetime.now(UTC)
        self.state.start_run(self.run_id, a, plan.delta)
        result = ListResult(plan, status="in_sync", list_id=plan.list_id)
        try:
            if plan.error:
                raise SyncError(plan.error)
            busy: set[str] = set()
            if plan.list_id is not None:  # also for a refused list: it is only looked at
                busy = self._collect(plan, result)
                self.lists.check(plan, result)
            if not plan.refused:
                self._sync(plan, result, unsafe_exclusions or [], busy)
            if plan.refused:  # by the first plan, or one made again (collected, adopted)
                result.status = "refused"
                result.message = "; ".join(plan.refused)
                log.warning(
                    "%s: refused by a guard, list left untouched: %s", a.name, result.message
                )
        except (BingError, SyncError) as exc:
            if isinstance(exc, PermanentBingError) and exc.step == "authenticate":
                self._connect_error = exc  # the other lists fail the same way, unasked
            result.status = "failed"
            result.message = f"list {a.list_name} ({a.name}): {exc}"
            if isinstance(exc, BingError):
                result.microsoft_error = exc.microsoft_error()
            log.error("%s", result.message)
        except (
            Exception
        ) as exc:  # one list failing (disk, warehouse, a bug) must not stop the others
            result.status = "failed"
            result.message = (
                f"list {a.list_name} ({a.name}): {type(exc).__name__}: {scrub(str(exc))}"
            )
            log.error("%s", result.message)
        result.seconds = (datetime.now(UTC) - started).total_seconds()
        self.state.finish_run(
            self.run_id,
            a,
            status=result.status,
            list_id=result.list_id,
            guard="; ".join(plan.refused) or None,
            message=result.message,
        )
        return result

    def _sync(
        self,
        plan: ListPlan,
        result: ListResult,
        unsafe_exclusions: list[str],
        busy: set[str],
    ) -> None:
        a = plan.audience
        d = plan.delta
        assert d is not None
        if not (d.adds or d.removes or d.refresh or plan.replace or plan.list_id is None):
            if not result.in_flight:
                log.info("%s: in sync (%d members), nothing to send", a.name, d.members)
            return
        list_id = result.list_id = self.lists.resolve(plan)
        if plan.refused:  # adopted a list of unknown members: the Replace's guard
            return
        if plan.replace:
            self._replace(plan, result, unsafe_exclusions, busy)
            return
        removes, adds = self.state.outbox(a, plan.relation, list_id)
        log.info(
            "%s: list %s: %d to remove, %d to add", a.name, list_id, removes.height, adds.height
        )
        if unsafe_exclusions and adds.height:
            result.held_adds = adds.height
            adds = adds.clear()
        for action, frame in (("Remove", removes), ("Add", adds)):
            if frame.height and action in busy:  # one upload per list and action at a time
                log.info("%s: %d %s(s) wait for the upload in flight", a.name, frame.height,
                         action.lower())  # fmt: skip
            elif frame.height and not self._upload(a, list_id, action, frame, result):
                break  # still processing at Microsoft: later files and the other action wait
        if result.status == "in_flight":
            return
        if result.held_adds:
            self._say_held(result, unsafe_exclusions)
        elif result.rejected:
            self._say_rejected(result)

    def _say_held(self, result: ListResult, unsafe_exclusions: list[str]) -> None:
        result.status = "held"
        result.message = (
            f"{result.held_adds} add(s) held back: suppression list(s) "
            f"{', '.join(unsafe_exclusions)} failed, were refused or are still processing at "
            "Microsoft this run, so nobody is "
            "added to a target list they may not exclude; "
            + ("the Replace waits" if result.plan.replace else "removes were sent")
        )
        log.warning("%s: %s", result.plan.audience.name, result.message)

    def _say_rejected(self, result: ListResult) -> None:
        result.status = "partial"
        result.message = (
            f"Microsoft rejected {result.rejected} row(s) "
            + ", ".join(f"{n} x error {c}" for c, n in sorted(result.rejected_by_code.items()))
            + f"; recorded in row_errors and tried again next run, up to "
            f"{self.max_row_attempts} runs in all, then parked (sync status lists them)"
        )

    def _replace(
        self, plan: ListPlan, result: ListResult, unsafe_exclusions: list[str], busy: set[str]
    ) -> None:
        """A list whose members at Microsoft are unknown gets the whole audience as a
        Replace (its first file wipes the list; the others add), once nothing else of the
        list is in flight; the guards passed it (--allow-replace). Afterwards the list's
        members are known and later runs send deltas."""
        a = plan.audience
        assert plan.list_id is not None
        if busy:
            log.info("%s: the Replace waits for the upload in flight", a.name)
            return
        _, adds = self.state.outbox(a, plan.relation, plan.list_id)
        if unsafe_exclusions:  # a Replace adds people: held back like any add
            result.held_adds = adds.height
            self._say_held(result, unsafe_exclusions)
            return
        log.warning("%s: list %s: replacing its members with the audience's %d", a.name,
                    plan.list_id, adds.height)  # fmt: skip
        self._upload(a, plan.list_id, "Replace", adds, result)
        if result.status != "in_flight" and result.rejected:
            self._say_rejected(result)

    def _upload(
        self, a: Audience, list_id: int, action: str, frame: pl.DataFrame, result: ListResult
    ) -> bool:
        """Send `frame`'s hashes as uploads of `action`, each recorded before it is sent and
        committed as its result comes; False when one is still processing when the run's
        wait ends (then it is in flight, collected by a later run)."""
        done = 0
        self.bing.authenticate()  # refused credentials must not mark hashes uncertain

        def recorded(
            file_action: str, hashes: pl.Series, request_id: str, tracking_id: str | None
        ) -> None:
            self.uploads.record(
                run_id=self.run_id, audience=a, list_id=list_id, action=file_action,
                hashes=hashes, request_id=request_id, tracking_id=tracking_id,
            )  # fmt: skip
            self.state.wh.release()  # the file goes to Microsoft next

        def sent(request_id: str) -> None:
            self.uploads.sent(request_id)
            self.state.wh.release()

        outcomes = self.bing.upload(list_id, action, frame, UploadHooks(recorded, sent))
        while True:
            try:
                outcome = next(outcomes)
            except StopIteration:
                return True
            except UploadInFlight as slow:
                self._left_in_flight(a, result, action, slow.request_id)
                return False
            confirmed = self.state.commit_upload(
                run_id=self.run_id,
                audience=a,
                list_id=list_id,
                action=outcome.action,
                sent=outcome.sent,
                rejected=outcome.rejected,
                request_id=outcome.request_id,
                max_row_attempts=self.max_row_attempts,
            )
            done += outcome.sent.height
            if action != "Remove":
                result.sent_adds += outcome.sent.height
                result.confirmed_adds += confirmed
            else:
                result.sent_removes += outcome.sent.height
                result.confirmed_removes += confirmed
            result.rejected += outcome.rejected.height
            for code, n in outcome.rejected.group_by("error_code").len().iter_rows():
                result.rejected_by_code[code] = result.rejected_by_code.get(code, 0) + n
            log.info(
                "%s: %s upload of %d row(s) done in %.1f s: %d confirmed, %d rejected",
                a.name, action.lower(), outcome.sent.height, outcome.seconds, confirmed,
                outcome.rejected.height,
            )  # fmt: skip
            if self.progress:
                self.progress(a.name, action, done, frame.height)
            self.state.wh.release()  # the next file goes to Microsoft

    def _left_in_flight(
        self, a: Audience, result: ListResult, action: str, request_id: str
    ) -> None:
        """An upload still processing when the run's wait ended: a normal state (exit 0)."""
        rows = self.uploads.rows(request_id)
        note_in_flight(
            result, action, rows, request_id, 0.0,
            f"{action.lower()} of {rows} row(s) still processing at Microsoft (request "
            f"{request_id}); the next run collects its result and sends the rest",
        )  # fmt: skip
        log.info("%s: %s", a.name, result.message)

    def _collect(self, plan: ListPlan, result: ListResult) -> set[str]:
        """Results of the list's uploads that earlier runs left at Microsoft, committed
        before anything new is planned for it. Returns the actions still in flight (no new
        upload of those starts). The plan is made again when anything was settled."""
        a = plan.audience
        assert plan.list_id is not None
        busy: set[str] = set()
        settled = 0
        for upload in self.uploads.in_flight(plan.list_id):
            if self._collect_one(a, upload, result):
                settled += 1
            else:
                busy.add(upload.action)
        if settled:
            self._plan_again(plan)
        return busy

    def _plan_again(self, plan: ListPlan) -> None:
        """The plan made afresh (uploads settled, or the list is gone), through the guards."""
        fresh = self.replan(plan.audience)
        if fresh.error:
            raise SyncError(fresh.error)
        plan.delta, plan.refused, plan.replace = fresh.delta, fresh.refused, fresh.replace

    def _collect_one(self, a: Audience, upload: InFlight, result: ListResult) -> bool:
        """Settle one upload in flight; False when Microsoft is still processing it."""
        try:
            rejected = self.bing.collect_upload(
                upload.request_id, upload.tracking_id, wait=self.wait
            )
        except UploadInFlight:
            age = upload.age()
            if age > self.max_upload_age:
                raise SyncError(
                    f"the {upload.action.lower()} upload of {upload.rows} row(s) sent by run "
                    f"{upload.run_id} (Microsoft request {upload.request_id}) has been "
                    f"processing for {age.total_seconds() / 3600:.1f} h, over --max-upload-age "
                    f"({self.max_upload_age.total_seconds() / 3600:g} h): ask Microsoft about "
                    "that request id"
                ) from None
            note_in_flight(
                result, upload.action, upload.rows, upload.request_id, age.total_seconds(),
                f"{upload.action.lower()} of {upload.rows} row(s) still processing at Microsoft "
                f"after {age.total_seconds():.0f} s (request {upload.request_id}); collected by "
                "a later run",
            )  # fmt: skip
            return False
        except (UploadFailed, PermanentBingError) as exc:  # Microsoft says: nothing of it counts
            self.uploads.close(upload, "failed", exc.microsoft_error())
            log.warning("%s: an earlier upload did not go through (%s); its rows are sent again",
                        a.name, exc)  # fmt: skip
            return True
        if rejected is None:  # Microsoft has no file for it (yet)
            age = upload.age().total_seconds()
            if age < self.post_grace:
                # The run that sent it is gone (this run holds the run lock), but a POST it had
                # finished sending may still be on Microsoft's side: wait that out, never
                # send a file twice.
                if self.wait <= 0:
                    note_in_flight(
                        result, upload.action, upload.rows, upload.request_id, age,
                        f"an interrupted run's {upload.action.lower()} file (request "
                        f"{upload.request_id}) has not reached Microsoft yet; it is sent again "
                        f"if it has not {self.post_grace:.0f} s after it was recorded",
                    )  # fmt: skip
                    return False
                self.state.wh.release()
                time.sleep(self.post_grace - age)
                return self._collect_one(a, upload, result)
            self.uploads.close(upload, "abandoned")
            log.info("%s: an upload recorded by an interrupted run was never sent", a.name)
            return True
        sent = self.uploads.hashes(upload).to_frame("email_sha256")
        confirmed = self.state.commit_upload(
            run_id=self.run_id, audience=a, list_id=upload.list_id, action=upload.action,
            sent=sent, rejected=rejected, request_id=upload.request_id,
            max_row_attempts=self.max_row_attempts,
        )  # fmt: skip
        if upload.action != "Remove":
            result.confirmed_adds += confirmed
        else:
            result.confirmed_removes += confirmed
        result.rejected += rejected.height
        log.info("%s: collected an earlier %s upload: %d confirmed, %d rejected", a.name,
                 upload.action.lower(), confirmed, rejected.height)  # fmt: skip
        return True
