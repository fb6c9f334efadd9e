"""The life of a bulk request at the stand-in's Microsoft: an upload from the URL handed out,
through its file (processing time, out-of-order finishing, Failed) to its result file applied
to the lists; a download's file; and the files handed out, bounded as Microsoft's URLs
expire."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from . import bulkcsv, soap
from .bulkcsv import BulkFileError, Rules
from .faults import Faults
from .store import Change, ListStore

log = logging.getLogger("sync.standin")

#: Operation names used by ``.calls`` and by the ``operation`` filter of faults.
UPLOAD_FILE = "UploadFile"
DOWNLOAD_FILE = "DownloadFile"
OPERATIONS = (*soap.OPERATIONS, UPLOAD_FILE, DOWNLOAD_FILE)

_MAX_FILES = 500
_MAX_REQUESTS = 5_000

DONE = ("Completed", "CompletedWithErrors")


@dataclass
class Upload:
    request_id: str
    response_mode: str
    status: str = "PendingFileUpload"
    result_token: str | None = None
    errors: list[soap.OperationError] | None = None
    pending_polls: int = 0
    # a file received but not processed yet (processing delay): applied when ready_at passes
    parsed: tuple[list[str], list[list[str]]] | None = None
    ready_at: float = 0.0
    received: int = 0  # order of arrival of the file, for out-of-order processing


class Observer(Protocol):
    """What a test may watch on Microsoft's side (see :meth:`StandIn.add_observer`)."""

    def on_request(self, operation: str) -> None:
        """A request arrived (before any delay or fault), named by its operation."""

    def on_applied(self, changes: list[Change]) -> None:
        """An upload was applied; called under the stand-in's lock, right after."""


class BulkJobs:
    """Upload and download requests by id, and the files they hand out. Shares the lists'
    lock: an upload's effect on the lists and its status change together."""

    def __init__(self, store: ListStore, faults: Faults, observers: list[Observer]) -> None:
        self.store = store
        self.lock = store.lock
        self._faults = faults
        self._observers = observers
        self.uploads: dict[str, Upload] = {}
        self._downloads: dict[str, str] = {}  # download request id -> its file's token
        self._files: dict[str, bytes] = {}
        self._received = itertools.count(1)
        self._last_applied = 0
        self._processing = (0.0, 0.0)
        self._out_of_order = False
        #: Files processed after a file that arrived later (see ``set_processing``).
        self.reordered = 0

    def clear(self) -> None:
        """Every request and file forgotten (the stand-in's reset)."""
        with self.lock:
            self.uploads.clear()
            self._downloads.clear()
            self._files.clear()

    def set_processing(
        self, seconds: float, seconds_per_10k_rows: float, out_of_order: bool
    ) -> None:
        """See :meth:`StandIn.set_processing`."""
        if seconds < 0 or seconds_per_10k_rows < 0:
            raise ValueError("processing times must be >= 0")
        with self.lock:
            self._processing = (float(seconds), float(seconds_per_10k_rows))
            self._out_of_order = bool(out_of_order)

    # -- uploads -----------------------------------------------------------------------------

    def new_upload(self, response_mode: str) -> str:
        """An upload request waiting for its file; returns its request id."""
        request_id = uuid.uuid4().hex
        with self.lock:
            self.uploads[request_id] = Upload(request_id, response_mode)
        return request_id

    def upload_status(
        self, request_id: str
    ) -> tuple[str, str | None, list[soap.OperationError] | None] | None:
        """(status, result file token, errors) of an upload, None for an unknown id. A
        ``pending`` fault makes a finished upload say InProgress that many more polls."""
        self.process_due()
        with self.lock:
            upload = self.uploads.get(request_id)
            if upload is None:
                return None
            status, token, errors = upload.status, upload.result_token, upload.errors
            if status in DONE and upload.pending_polls > 0:
                upload.pending_polls -= 1
                status, token = "InProgress", None
        return status, token, errors

    def receive(
        self, upload: Upload, header: list[str], rows: list[list[str]], pending_polls: int
    ) -> None:
        """An upload's file arrived, parsed: processed now, or InProgress until Microsoft's
        processing time (see ``set_processing``) has passed."""
        with self.lock:
            upload.pending_polls = pending_polls
            base, per_10k = self._processing
        seconds = base + per_10k * len(rows) / 10_000
        if seconds <= 0:
            self._process(upload, header, rows)
            return
        with self.lock:  # Microsoft's pace: InProgress, lists unchanged, until it is done
            now = time.monotonic()
            ready_at = now + seconds
            waiting = [u.ready_at for u in self.uploads.values() if u.parsed is not None]
            if self._out_of_order and waiting:  # overtakes every file still processing
                ready_at = max(now, min(ready_at, min(waiting) - 0.001))
            upload.status = "InProgress"
            upload.parsed = (header, rows)
            upload.ready_at = ready_at
            upload.received = next(self._received)
        log.info("upload received: %d rows, processed in %.1f s", len(rows), seconds)

    def fail(self, upload: Upload, message: str) -> None:
        """The upload ends Failed with Microsoft's InternalError: nothing of it is applied."""
        with self.lock:
            upload.status = "Failed"
            upload.errors = [soap.OperationError(0, "InternalError", message)]

    def finish_processing(self) -> None:
        """Let every upload still processing (processing time, ``pending`` fault) finish now."""
        with self.lock:
            for upload in self.uploads.values():
                upload.pending_polls = 0
                upload.ready_at = 0.0
        self.process_due()

    def process_due(self) -> None:
        """Apply the files whose processing time has passed, in the order they finish (so
        Microsoft's effects are visible to whoever looks next, as on the real service)."""
        with self.lock:
            now = time.monotonic()
            due = sorted(
                (u for u in self.uploads.values() if u.parsed is not None and u.ready_at <= now),
                key=lambda u: u.ready_at,
            )
            for upload in due:
                header, rows = upload.parsed or ([], [])
                upload.parsed = None
                if upload.received < self._last_applied:
                    self.reordered += 1
                self._last_applied = max(self._last_applied, upload.received)
                self._process(upload, header, rows)

    def _process(self, upload: Upload, header: list[str], rows: list[list[str]]) -> None:
        """Apply one received file and record its outcome (result file, status)."""
        try:
            result = self.apply(header, rows, upload.response_mode, UPLOAD_FILE)
        except BulkFileError as exc:
            log.info("upload rejected: %s", exc)
            self.fail(upload, str(exc))
            return
        token = self._register_file(
            bulkcsv.zip_bytes(f"BulkUpload-{upload.request_id}-Results.csv", result.result_csv)
        )
        with self.lock:
            upload.result_token = token
            upload.status = "CompletedWithErrors" if result.has_errors else "Completed"
        log.info(
            "upload processed: %d rows, %s", result.rows, "errors" if result.has_errors else "ok"
        )

    def apply(
        self, header: list[str], rows: list[list[str]], mode: str, operation: str
    ) -> bulkcsv.UploadResult:
        """Apply a bulk file's rows to the lists, with the row faults armed for `operation`
        (``reject_rows``, ``terms_not_accepted``), and tell the observers what changed."""
        with self.lock:
            before = self.store.members() if self._observers else {}
            rules = Rules()
            armed = self._faults.armed(operation)
            reject_faults = [f for f in armed if f.kind == "reject_rows"]
            for fault in reversed(reject_faults):  # earlier faults win
                for h in fault.params["hashes"]:
                    rules.reject[h] = (fault.params["code"], fault.params["error"])
            terms_faults = [f for f in armed if f.kind == "terms_not_accepted"]
            for fault in terms_faults:
                if fault.params["list_ids"] is None:
                    rules.terms_everywhere = True
                else:
                    rules.terms_not_accepted = (rules.terms_not_accepted or set()) | set(
                        fault.params["list_ids"]
                    )
            result = bulkcsv.apply_upload(
                header,
                rows,
                self.store.records,
                self.store.new_id,
                rules,
                errors_only=(mode != "ErrorsAndResults"),
            )
            for fault in reject_faults:
                if result.rejected.intersection(fault.params["hashes"]):
                    self._faults.consume(fault)
            if result.terms_hit:
                for fault in terms_faults:
                    self._faults.consume(fault)
            if result.changed:
                self.store.persist()
            if self._observers:
                changes = self.store.changes(before)
                for observer in self._observers:
                    observer.on_applied(changes)
        return result

    # -- downloads and files -----------------------------------------------------------------

    def new_download(self, data: bytes) -> str:
        """A bulk download whose file (`data`, the CSV) is ready at once; returns its id."""
        request_id = uuid.uuid4().hex
        with self.lock:
            token = self._register_file(bulkcsv.zip_bytes(f"Download-{request_id}.csv", data))
            self._downloads[request_id] = token
        return request_id

    def download_token(self, request_id: str) -> str | None:
        """The token of a download's file, None for an unknown request id."""
        with self.lock:
            return self._downloads.get(request_id)

    def file(self, token: str) -> bytes | None:
        """A file handed out (result or download), None once unknown or expired."""
        with self.lock:
            return self._files.get(token)

    def _register_file(self, data: bytes) -> str:
        token = uuid.uuid4().hex
        with self.lock:
            self._files[token] = data
            # Microsoft's result URLs expire; keep memory bounded on long demo runs.
            while len(self._files) > _MAX_FILES:
                del self._files[next(iter(self._files))]
            while len(self.uploads) > _MAX_REQUESTS:
                del self.uploads[next(iter(self.uploads))]
            while len(self._downloads) > _MAX_REQUESTS:
                del self._downloads[next(iter(self._downloads))]
        return token
