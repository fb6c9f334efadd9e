"""Customer Match on the Bulk service: find the account's lists (one bulk download), create
a list (never twice), add, remove or replace members file by file (each file recorded by
the caller before it is sent, so it survives the run), and collect an upload an earlier run
left at Microsoft."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from bingads.v13.bulk import SubmitDownloadParameters

from sync import bulkfile
from sync.bing.errors import (
    ADVICE,
    PermanentBingError,
    TransientBingError,
    UploadFailed,
    UploadInFlight,
    operation_errors,
)
from sync.bing.results import (
    RemoteList,
    UploadOutcome,
    UploadResult,
    parse_upload_result,
    raise_list_errors,
    read_lists,
)
from sync.bing.retry import Attempts
from sync.bing.sdk import DownloadOperation, UploadOperation
from sync.bing.transport import IN_PROGRESS, UPLOAD_DONE, Transport, unlink, zip_file

log = logging.getLogger("sync.bing")


@dataclass(frozen=True)
class UploadHooks:
    """What the caller records around each member file, so an upload survives the run:
    ``recorded(action, hashes, request_id, tracking_id)`` once Microsoft gave the file its
    request id and before the file is sent (it must be durable when it returns);
    ``sent(request_id)`` once Microsoft has the file."""

    recorded: Callable[[str, pl.Series, str, str | None], None]
    sent: Callable[[str], None]


class Bing(Transport):
    """Customer Match operations for one Microsoft Advertising account."""

    def find_lists(self) -> list[RemoteList]:
        """All customer lists of the account (bulk download of ``CustomerLists``)."""
        step = "find customer lists"
        attempts = Attempts(self.retry)
        while True:
            path: Path | None = None
            try:
                bulk = self._bulk()
                submitted = self._call(
                    step,
                    bulk.submit_download,
                    SubmitDownloadParameters(
                        data_scope=["EntityData"],
                        download_entities=["CustomerLists"],
                        file_type="Csv",
                    ),
                )
                op = self._operation(DownloadOperation, submitted.request_id, submitted.tracking_id)
                started = time.monotonic()
                deadline = started + self.retry.upload_timeout
                try:
                    status = self._wait(op, deadline, step, started)
                except UploadInFlight as slow:  # a download is not worth keeping: ask again
                    raise TransientBingError(step, slow.message, retry_in_run=False) from None
                if status.status != "Completed":
                    raise TransientBingError(
                        step, f"Microsoft reported the download as {status.status}"
                    )
                path = self._download_result(op, step)
                if path is None:
                    raise TransientBingError(step, "Microsoft returned no download file")
                lists = self._call(step, read_lists, path)
                log.info("found %d customer list(s)", len(lists))
                return lists
            except TransientBingError as err:
                attempts.failed(err)
            finally:
                unlink(path)

    def create_list(
        self, name: str, description: str, membership_duration: int, client_id: str
    ) -> int:
        """Create a customer list (bulk upload, ErrorsAndResults); return its new id.

        Never sends the create twice blindly: when an attempt fails after the file may have
        reached Microsoft, the lists are looked up by name before trying again.
        """
        step = "create customer list"
        stem = self.workdir / f"create-{uuid.uuid4().hex}"
        csv_path, zip_path = stem.with_suffix(".csv"), stem.with_suffix(".zip")
        result_path: Path | None = None
        try:
            bulkfile.write_create_list_file(
                csv_path,
                name=name,
                description=description,
                membership_duration=membership_duration,
                client_id=client_id,
            )
            zip_file(csv_path, zip_path)
            attempts = Attempts(self.retry)
            while True:
                try:
                    result_path, _, _ = self._run_upload(
                        zip_path, "ErrorsAndResults", step, resubmit=False
                    )
                    break
                except TransientBingError as err:
                    existing = self._list_named(name)
                    if existing is not None:
                        log.info("the list was created despite the error; using it")
                        return existing
                    attempts.failed(err)
            unlink(zip_path)
            if result_path is None:
                raise PermanentBingError(step, "Microsoft returned no result file")
            result = self._call(step, parse_upload_result, result_path, self.workdir)
        finally:
            unlink(csv_path, zip_path, result_path)
        rows = [r for r in result.lists if r.client_id == client_id] or list(result.lists)
        if not rows:
            raise PermanentBingError(step, "the result file has no Customer List record")
        row = rows[0]
        if row.errors:
            code, symbol = row.errors[0]
            advice = ADVICE.get(code, "Microsoft refused it")
            raise PermanentBingError(step, advice, code, error_name=symbol)
        if not row.list_id or row.list_id <= 0:
            raise PermanentBingError(step, "the result file carries no list id")
        log.info("created a customer list")
        return int(row.list_id)

    def _list_named(self, name: str) -> int | None:
        ids = [r.list_id for r in self.find_lists() if r.name == name]
        return max(ids) if ids else None

    def upload(
        self,
        list_id: int,
        action: str,
        hashes: pl.DataFrame,
        hooks: UploadHooks | None = None,
    ) -> Iterator[UploadOutcome]:
        """Add or remove ``hashes`` (column ``email_sha256``) on a list, or ``Replace`` the
        list's members with them.

        A Replace wipes the list before its own items, file by file, so only the first file
        is a Replace and the others are Adds (each file waits for the one before it); a
        Replace of no hashes is one file with no items, which empties the list. The hashes
        are split into files of at most ``max_rows_per_file`` item rows (and under
        Microsoft's 100 MB); each file is one upload (ErrorsOnly results), yielded as soon as
        it has finished so the caller can commit it. Rows Microsoft rejected are in
        ``UploadOutcome.rejected``; list-level failures (terms not accepted, unknown list)
        raise :class:`PermanentBingError`; a file still processing when the wait ends raises
        :class:`UploadInFlight` (``hooks`` let the caller record it before it is sent).
        """
        if action not in bulkfile.ACTIONS:
            raise ValueError(f"action must be one of {bulkfile.ACTIONS}")
        list_id = int(list_id)
        if list_id <= 0:
            raise ValueError("list_id must be a positive Microsoft list id")
        chunks = bulkfile.split_hashes(hashes, list_id, self.max_rows_per_file)
        if action == "Replace" and not chunks:
            chunks = [bulkfile.hash_series(hashes)]
        return self._upload_chunks(list_id, action, chunks, hooks)

    def _upload_chunks(
        self, list_id: int, first_action: str, chunks: list[pl.Series], hooks: UploadHooks | None
    ) -> Iterator[UploadOutcome]:
        total = len(chunks)
        for number, chunk in enumerate(chunks, start=1):
            action = first_action if number == 1 or first_action != "Replace" else "Add"
            step = f"{action.lower()} members (file {number} of {total})"
            started = time.monotonic()
            stem = self.workdir / f"upload-{uuid.uuid4().hex}"
            csv_path, zip_path = stem.with_suffix(".csv"), stem.with_suffix(".zip")
            result_path: Path | None = None
            log.info("%s: %d row(s)", step, chunk.len())
            try:
                bulkfile.write_member_file(csv_path, list_id, action, chunk)
                zip_file(csv_path, zip_path)
                unlink(csv_path)
                result_path, request_id, tracking_id = self._run_upload(
                    zip_path,
                    "ErrorsOnly",
                    step,
                    resubmit=True,
                    recorded=(
                        (lambda r, t, c=chunk, a=action: hooks.recorded(a, c, r, t))
                        if hooks
                        else None
                    ),
                    sent=hooks.sent if hooks else None,
                    wait=self.retry.wait,
                )
                unlink(zip_path)
                rejected = self._read_result(step, result_path)
            finally:
                unlink(csv_path, zip_path, result_path)
            seconds = time.monotonic() - started
            log.info("%s: done in %.1f s, %d row(s) rejected", step, seconds, rejected.height)
            yield UploadOutcome(
                action=action,
                sent=chunk.to_frame(bulkfile.HASH_COLUMN),
                rejected=rejected,
                request_id=request_id,
                tracking_id=tracking_id,
                seconds=seconds,
            )

    def _read_result(self, step: str, result_path: Path | None) -> pl.DataFrame:
        """A member upload's rejected rows (email_sha256, error_code, error_message);
        list-level failures raise."""
        if result_path is None:
            result = UploadResult(lists=())
        else:
            result = self._call(step, parse_upload_result, result_path, self.workdir)
        raise_list_errors(step, result)
        return result.rejected.select("email_sha256", "error_code", "error_message")

    def collect_upload(
        self, request_id: str, tracking_id: str | None, *, wait: float
    ) -> pl.DataFrame | None:
        """The outcome of a member upload an earlier run left at Microsoft: its rejected rows
        once processed; None when the file never reached Microsoft (status
        PendingFileUpload); :class:`UploadInFlight` while still processing after ``wait``
        seconds; a Failed upload raises with Microsoft's error (nothing of it applied)."""
        step = "collect an earlier upload"
        op = self._operation(UploadOperation, request_id, tracking_id)
        started = time.monotonic()
        status = self._retrying(step, op.get_status)
        if status.status == "PendingFileUpload":
            return None
        if status.status in IN_PROGRESS:
            status = self._wait(op, started + wait, step, started)
        if status.status not in UPLOAD_DONE:
            errors = operation_errors(status.errors)
            code, name, said = errors[0] if errors else (None, None, None)
            raise UploadFailed(
                step,
                f"Microsoft reported the upload as {status.status}; its rows are sent again",
                code,
                retry_in_run=False,
                error_name=name,
                microsoft_message=said,
            )
        result_path = self._download_result(op, f"{step}: fetch the result file")
        try:
            if result_path is None and status.status == "CompletedWithErrors":
                raise TransientBingError(
                    step, "Microsoft reported errors but served no result file", retry_in_run=False
                )
            return self._read_result(step, result_path)
        finally:
            unlink(result_path)
