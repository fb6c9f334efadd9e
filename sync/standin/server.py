"""A loopback stand-in for Microsoft Advertising's Bulk v13 service (Customer Match only).

The real ``bingads`` SDK talks to it unchanged: point ``BulkServiceManager(..., location=URL)``
(or ``BING_BULK_SERVICE_URL``) at :attr:`StandIn.url`. It serves

* SOAP 1.1: ``GetBulkUploadUrl``, ``GetBulkUploadStatus``, ``DownloadCampaignsByAccountIds``,
  ``GetBulkDownloadStatus`` and ``UploadEntityRecords``;
* the file upload (multipart/form-data POST, field ``file``, a zip of the CSV) and the result /
  download files (zip over HTTP GET) at URLs it hands out itself;
* a control API under ``/_standin/`` (lists, faults, reset, calls) for tests in other processes,
  including what people do in the Microsoft Advertising UI: ``POST lists/<id>`` (rename, change
  the membership duration) and ``DELETE lists/<id>``.

Customer lists and their members live in memory (optionally mirrored to a JSON state file).
Faults can be injected on request; see :meth:`StandIn.inject`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from . import bulkcsv, control, soap
from .bulkcsv import BulkFileError, ListRecord, Rules
from .faults import Faults
from .web import (
    CONTROL_PREFIX,
    FILE_PREFIX,
    SERVICE_PATH,
    UPLOAD_PREFIX,
    Handler,
    Server,
    multipart_file,
)

log = logging.getLogger("sync.standin")


#: Operation names used by ``.calls`` and by the ``operation`` filter of faults.
UPLOAD_FILE = "UploadFile"
DOWNLOAD_FILE = "DownloadFile"
OPERATIONS = (*soap.OPERATIONS, UPLOAD_FILE, DOWNLOAD_FILE)

_FIRST_LIST_ID = 810_000_001
_MAX_FILES = 500
_MAX_REQUESTS = 5_000
_DEFAULT_ACCOUNT_ID = 180_000_001
_DEFAULT_CUSTOMER_ID = 250_000_001


@dataclass
class _Upload:
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


@dataclass
class _Download:
    request_id: str
    token: str


#: One change Microsoft applied to a list: ("create" | "add" | "remove", list id, hashes).
Change = tuple[str, int, frozenset[str]]


class Observer(Protocol):
    """What a test may watch on Microsoft's side (see :meth:`StandIn.add_observer`)."""

    def on_request(self, operation: str) -> None:
        """A request arrived (before any delay or fault), named by its operation."""

    def on_applied(self, changes: list[Change]) -> None:
        """An upload was applied; called under the stand-in's lock, right after."""


class StandIn:
    """The stand-in server. Use as a context manager or call :meth:`start` / :meth:`stop`.

    >>> with StandIn() as bing:                      # doctest: +SKIP
    ...     os.environ["BING_BULK_SERVICE_URL"] = bing.url
    ...     bing.inject(kind="http_error", status=503, count=2)
    ...     ...                                      # run the sync
    ...     assert bing.lists()[list_id]["members"] == expected
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        delay: float = 0.0,
        state_file: str | os.PathLike[str] | None = None,
        account_id: int = _DEFAULT_ACCOUNT_ID,
        customer_id: int = _DEFAULT_CUSTOMER_ID,
        processing_seconds: float = 0.0,
        processing_seconds_per_10k_rows: float = 0.0,
        out_of_order: bool = False,
        match_share: float | None = None,
    ):
        self.host = host
        self.port = port
        self.token = token
        self.account_id = account_id
        self.customer_id = customer_id
        self._delay = float(delay)
        self._state_file = Path(state_file) if state_file else None
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._idle = threading.Condition()
        self._serving = 0  # requests being served (a killed client's last one included)
        self._received = itertools.count(1)
        self._last_applied = 0
        #: Files processed after a file that arrived later (see ``set_processing``).
        self.reordered = 0
        self.set_processing(processing_seconds, processing_seconds_per_10k_rows, out_of_order)
        #: Share of a list's members Microsoft reports as matched (Audience Search Size in the
        #: bulk download); None: no size, as for a list Microsoft has not sized yet (~48 h).
        self.match_share = match_share
        self._lists: dict[int, ListRecord] = {}
        self._next_id = _FIRST_LIST_ID
        self._faults = Faults(OPERATIONS)
        self._calls: list[str] = []
        self._uploads: dict[str, _Upload] = {}
        self._downloads: dict[str, _Download] = {}
        self._files: dict[str, bytes] = {}
        self.refresh_counter = itertools.count(1)  # refresh tokens handed out (control API)
        #: Form fields of requests to the test OAuth endpoint (see :meth:`refresh_url`).
        self.oauth_requests: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if self._state_file is not None and self._state_file.exists():
            self._load_state()

    # ---------------------------------------------------------------------------------------
    # Lifecycle

    def start(self) -> StandIn:
        if self._server is not None:
            return self
        server = Server((self.host, self.port), Handler)
        server.standin = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name="bing-standin", kwargs={"poll_interval": 0.1}
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("Bing stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("Bing stand-in stopped")

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The Bulk service endpoint: the value for ``BING_BULK_SERVICE_URL``."""
        return self.base_url + SERVICE_PATH

    # ---------------------------------------------------------------------------------------
    # Inspection and control (Python API; the HTTP control API maps onto these)

    def lists(self) -> dict[int, dict[str, Any]]:
        """``{list_id: {"name", "membership_duration", "description", "scope", "members"}}``.

        ``members`` is a ``set`` of hashes; everything is a copy.
        """
        self._process_due()
        with self._lock:
            return {
                list_id: {
                    "name": r.name,
                    "membership_duration": r.membership_duration,
                    "description": r.description,
                    "scope": r.scope,
                    "members": set(r.members),
                }
                for list_id, r in sorted(self._lists.items())
            }

    def add_list(
        self,
        name: str,
        membership_duration: int | None = -1,
        members: Iterable[str] = (),
        list_id: int | None = None,
        description: str = "",
    ) -> int:
        """Create a list directly (as if made in the Microsoft Advertising UI); returns its id."""
        with self._lock:
            if list_id is None:
                list_id = self._new_id()
            elif list_id in self._lists:
                raise ValueError("a list with this id already exists")
            else:
                self._next_id = max(self._next_id, list_id + 1)
            self._lists[list_id] = ListRecord(
                list_id=list_id,
                name=name,
                description=description,
                membership_duration=membership_duration,
                members=set(members),
                modified=bulkcsv.now_text(),
            )
            self._persist()
        return list_id

    def edit_list(
        self, list_id: int, *, name: str | None = None, membership_duration: int | None = None
    ) -> None:
        """Rename a list or change its membership duration, as someone in the Microsoft
        Advertising UI would: out of band, the sync is not told."""
        with self._lock:
            record = self._lists.get(list_id)
            if record is None:
                raise ValueError(f"no list {list_id}")
            if name is not None:
                record.name = name
            if membership_duration is not None:
                record.membership_duration = membership_duration
            record.modified = bulkcsv.now_text()
            self._persist()

    def finish_processing(self) -> None:
        """Let every upload still processing (processing time, ``pending`` fault) finish now."""
        with self._lock:
            for upload in self._uploads.values():
                upload.pending_polls = 0
                upload.ready_at = 0.0
        self._process_due()

    def delete_list(self, list_id: int) -> None:
        """Delete a list and its members, as the Microsoft Advertising UI would."""
        with self._lock:
            if self._lists.pop(list_id, None) is None:
                raise ValueError(f"no list {list_id}")
            self._persist()

    @property
    def calls(self) -> list[str]:
        """Operation names in the order received (SOAP operations, UploadFile, DownloadFile).

        Requests that hit an injected fault are logged too, so retries can be counted.
        """
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._faults.all()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_processing(
        self, seconds: float = 0.0, seconds_per_10k_rows: float = 0.0, out_of_order: bool = False
    ) -> None:
        """How long Microsoft takes to process an uploaded file: ``seconds`` plus
        ``seconds_per_10k_rows`` per 10,000 rows (Microsoft: about a minute per 10k). Until
        then the upload reports InProgress and the lists are unchanged; 0 and 0 (the default)
        process each file as it arrives. ``out_of_order``: a file that arrives while others
        are still processing is processed before them (Microsoft promises no order between
        uploads), counted in :attr:`reordered`."""
        if seconds < 0 or seconds_per_10k_rows < 0:
            raise ValueError("processing times must be >= 0")
        with self._lock:
            self._processing = (float(seconds), float(seconds_per_10k_rows))
            self._out_of_order = bool(out_of_order)

    def _process_due(self) -> None:
        """Apply the files whose processing time has passed, in the order they finish (so
        Microsoft's effects are visible to whoever looks next, as on the real service)."""
        with self._lock:
            now = time.monotonic()
            due = sorted(
                (u for u in self._uploads.values() if u.parsed is not None and u.ready_at <= now),
                key=lambda u: u.ready_at,
            )
            for upload in due:
                header, rows = upload.parsed or ([], [])
                upload.parsed = None
                if upload.received < self._last_applied:
                    self.reordered += 1
                self._last_applied = max(self._last_applied, upload.received)
                self._process(upload, header, rows)

    def _fail(self, upload: _Upload, message: str) -> None:
        """The upload ends Failed with Microsoft's InternalError: nothing of it is applied."""
        with self._lock:
            upload.status = "Failed"
            upload.errors = [soap.OperationError(0, "InternalError", message)]

    def _process(self, upload: _Upload, header: list[str], rows: list[list[str]]) -> None:
        """Apply one received file and record its outcome (result file, status)."""
        try:
            result = self._apply(header, rows, upload.response_mode, UPLOAD_FILE)
        except BulkFileError as exc:
            log.info("upload rejected: %s", exc)
            self._fail(upload, str(exc))
            return
        token = self._register_file(
            bulkcsv.zip_bytes(f"BulkUpload-{upload.request_id}-Results.csv", result.result_csv)
        )
        with self._lock:
            upload.result_token = token
            upload.status = "CompletedWithErrors" if result.has_errors else "Completed"
        log.info(
            "upload processed: %d rows, %s", result.rows, "errors" if result.has_errors else "ok"
        )

    def set_delay(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0 turns it off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delay = float(seconds)

    def reset(self) -> None:
        """Forget lists, members, faults, calls, pending requests and the global delay."""
        with self._lock:
            self._lists.clear()
            self._next_id = _FIRST_LIST_ID
            self._faults.clear()
            self._calls.clear()
            self._uploads.clear()
            self._downloads.clear()
            self._files.clear()
            self._delay = 0.0
            self._persist()

    def inject(
        self,
        kind: str,
        count: int | None = 1,
        operation: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Arm a fault; returns it as a dict (with its ``id``).

        ``count`` is how many times it fires (``None``: until :meth:`clear_faults`);
        ``operation`` limits it to one of :data:`OPERATIONS` (``None``: any; for ``throttle``
        ``None`` means the operation Microsoft throttles with that code, ``"*"`` any).
        ``upload_failed`` and ``pending`` act on file uploads (``UploadFile``);
        ``reject_rows`` and ``terms_not_accepted`` on ``UploadFile`` and
        ``UploadEntityRecords``.

        Kinds and their parameters:

        - ``http_error``: ``status`` (default 500) - a plain HTTP error without SOAP body.
        - ``reset``: the connection is closed without a reply.
        - ``delay``: ``seconds`` - the reply comes that much later.
        - ``throttle``: ``code`` 117 (CallRateExceeded, default on GetBulkUploadStatus) or
          4204 (BulkServiceNoMoreCallsPermittedForTheTimePeriod, default on GetBulkUploadUrl).
        - ``upload_failed``: the next uploaded file is not applied; its status is ``Failed``.
        - ``reject_rows``: ``hashes`` (list), ``code`` (default 8004) - those Customer List Item
          rows fail with that code; fires once per upload that contains any of them.
        - ``terms_not_accepted``: ``list_ids`` (optional) - Customer List rows (and their
          items) fail with 8003 CustomerListTermsAndConditionsNotAccepted; fires per upload.
        - ``pending``: ``polls`` - the next upload reports InProgress that many times.
        - ``global_delay``: ``seconds`` - same as :meth:`set_delay` (count is ignored).
        """
        fault = self._faults.make(kind, count, operation, params)
        if kind == "global_delay":
            self.set_delay(fault.params["seconds"])
            return {"kind": "global_delay", "seconds": self._delay}
        self._faults.arm(fault)
        log.info("fault armed: %s x%s", fault.kind, "inf" if fault.count is None else fault.count)
        return fault.to_json()

    # -- watching Microsoft's side (tests) ---------------------------------------------------

    def add_observer(self, observer: Observer) -> None:
        """Tell `observer` of every request and every applied upload."""
        self._observers.append(observer)

    @contextlib.contextmanager
    def serving(self) -> Any:
        """Count one request being served (the HTTP layer wraps each in it)."""
        with self._idle:
            self._serving += 1
        try:
            yield
        finally:
            with self._idle:
                self._serving -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until no request is being served (a killed client's last one included)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._serving == 0, timeout)

    def handle_control(self, handler: Handler, method: str, path: str, body: bytes) -> None:
        """A request to the control API (sync/standin/control.py)."""
        control.handle_control(self, handler, method, path, body)

    def refresh_url(self) -> str:
        """A token endpoint the SDK's OAuth refresh can be pointed at in tests."""
        return self.base_url + CONTROL_PREFIX + "oauth/token"

    # ---------------------------------------------------------------------------------------
    # Internals: faults

    def _preflight(self, handler: Handler, operation: str) -> bool:
        """Log the call and apply delay / reset / HTTP error faults. False: request handled."""
        for observer in self._observers:
            observer.on_request(operation)
        with self._lock:
            self._calls.append(operation)
            delay = self._delay
        fault = self._faults.take("delay", operation)
        if fault is not None:
            delay += fault.params["seconds"]
        if delay > 0:
            time.sleep(delay)
        if self._faults.take("reset", operation) is not None:
            log.info("%s: connection reset (injected)", operation)
            handler.reset_connection()
            return False
        fault = self._faults.take("http_error", operation)
        if fault is not None:
            status = fault.params["status"]
            log.info("%s: HTTP %d (injected)", operation, status)
            handler.send(status, b"Service Unavailable", "text/plain; charset=utf-8")
            return False
        return True

    # ---------------------------------------------------------------------------------------
    # Internals: state

    def _new_id(self) -> int:
        with self._lock:
            list_id = self._next_id
            self._next_id += 1
            return list_id

    def _persist(self) -> None:
        if self._state_file is None:
            return
        with self._lock:
            data = {
                "version": 1,
                "next_id": self._next_id,
                "lists": {str(i): r.to_json() for i, r in sorted(self._lists.items())},
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

    def _load_state(self) -> None:
        assert self._state_file is not None
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        self._lists = {
            int(i): ListRecord.from_json(int(i), rec) for i, rec in data.get("lists", {}).items()
        }
        self._next_id = max(
            int(data.get("next_id", _FIRST_LIST_ID)), max(self._lists, default=0) + 1
        )

    def _register_file(self, data: bytes) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self._files[token] = data
            # Microsoft's result URLs expire; keep memory bounded on long demo runs.
            while len(self._files) > _MAX_FILES:
                del self._files[next(iter(self._files))]
            while len(self._uploads) > _MAX_REQUESTS:
                del self._uploads[next(iter(self._uploads))]
            while len(self._downloads) > _MAX_REQUESTS:
                del self._downloads[next(iter(self._downloads))]
        return token

    def _file_url(self, handler: Handler, token: str) -> str:
        return handler.origin(self) + FILE_PREFIX + token

    # ---------------------------------------------------------------------------------------
    # Internals: SOAP operations

    def handle_soap(self, handler: Handler, body: bytes) -> None:
        try:
            request = soap.parse_request(body, handler.headers.get("SOAPAction"))
        except soap.SoapRequestError as exc:
            handler.send(400, str(exc).encode(), "text/plain; charset=utf-8")
            return
        operation = request.operation
        if not self._preflight(handler, operation):
            return
        tracking_id = str(uuid.uuid4())
        if self.token is not None and request.headers.get("AuthenticationToken") != self.token:
            log.info("%s: invalid credentials (105)", operation)
            handler.send_xml(
                500,
                soap.adapi_fault(105, "InvalidCredentials", soap.MESSAGES[105], tracking_id),
            )
            return
        fault = self._faults.take("throttle", operation)
        if fault is not None:
            code = fault.params["code"]
            log.info("%s: throttled (%d, injected)", operation, code)
            make = soap.adapi_fault if code == 117 else soap.api_fault
            handler.send_xml(
                500, make(code, bulkcsv.error_name(code), soap.MESSAGES[code], tracking_id)
            )
            return
        method = getattr(self, "_op_" + operation, None)
        if method is None:
            handler.send_xml(
                500,
                soap.api_fault(0, "InternalError", "Operation not supported", tracking_id),
            )
            return
        handler.send_xml(200, method(handler, request, tracking_id))

    def _op_GetBulkUploadUrl(self, handler, request, tracking_id) -> bytes:
        request_id = uuid.uuid4().hex
        mode = request.value("ResponseMode") or "ErrorsOnly"
        with self._lock:
            self._uploads[request_id] = _Upload(request_id, mode)
        url = handler.origin(self) + UPLOAD_PREFIX + request_id
        return soap.response(
            "GetBulkUploadUrl", tracking_id, [("RequestId", request_id), ("UploadUrl", url)]
        )

    def _op_GetBulkUploadStatus(self, handler, request, tracking_id) -> bytes:
        request_id = request.value("RequestId") or ""
        self._process_due()
        with self._lock:
            upload = self._uploads.get(request_id)
            if upload is None:
                return soap.api_fault(
                    0, "BulkServiceInvalidRequestId", "The request id is not valid.", tracking_id
                )
            status, token, errors = upload.status, upload.result_token, upload.errors
            if status in ("Completed", "CompletedWithErrors") and upload.pending_polls > 0:
                upload.pending_polls -= 1
                status, token = "InProgress", None
        percent = 100 if status in ("Completed", "CompletedWithErrors") else 0
        if status == "InProgress":
            percent = 50
        url = self._file_url(handler, token) if token else None
        return soap.status_response(
            "GetBulkUploadStatus", tracking_id, status, percent, url, errors
        )

    def _op_DownloadCampaignsByAccountIds(self, handler, request, tracking_id) -> bytes:
        entities = set(request.values.get("DownloadEntity", []))
        self._process_due()
        with self._lock:
            data = bulkcsv.download_csv(
                self.account_id,
                self.customer_id,
                list(self._lists.values()),
                include_lists="CustomerLists" in entities,
                match_share=self.match_share,
            )
            request_id = uuid.uuid4().hex
            token = self._register_file(bulkcsv.zip_bytes(f"Download-{request_id}.csv", data))
            self._downloads[request_id] = _Download(request_id, token)
        return soap.response(
            "DownloadCampaignsByAccountIds", tracking_id, [("DownloadRequestId", request_id)]
        )

    def _op_GetBulkDownloadStatus(self, handler, request, tracking_id) -> bytes:
        request_id = request.value("RequestId") or ""
        with self._lock:
            download = self._downloads.get(request_id)
        if download is None:
            return soap.api_fault(
                0, "BulkServiceInvalidRequestId", "The request id is not valid.", tracking_id
            )
        return soap.status_response(
            "GetBulkDownloadStatus",
            tracking_id,
            "Completed",
            100,
            self._file_url(handler, download.token),
        )

    def _op_UploadEntityRecords(self, handler, request, tracking_id) -> bytes:
        records = request.values.get("string", [])
        mode = request.value("ResponseMode") or "ErrorsOnly"
        try:
            header, rows = bulkcsv.parse_rows(records)
            result = self._apply(header, rows, mode, "UploadEntityRecords")
        except BulkFileError as exc:
            return soap.api_fault(0, "InternalError", str(exc), tracking_id)
        return soap.upload_entity_records_response(
            tracking_id, bulkcsv.result_lines(result.result_csv), uuid.uuid4().hex, "Completed"
        )

    # ---------------------------------------------------------------------------------------
    # Internals: upload / download of files

    def _apply(
        self, header: list[str], rows: list[list[str]], mode: str, operation: str
    ) -> bulkcsv.UploadResult:
        with self._lock:
            before = {i: set(r.members) for i, r in self._lists.items()} if self._observers else {}
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
                self._lists,
                self._new_id,
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
                self._persist()
            if self._observers:
                changes = _changes(before, self._lists)
                for observer in self._observers:
                    observer.on_applied(changes)
        return result

    def handle_upload(self, handler: Handler, request_id: str, body: bytes) -> None:
        if not self._preflight(handler, UPLOAD_FILE):
            return
        if self.token is not None and handler.headers.get("AuthenticationToken") != self.token:
            handler.send_json(401, {"Code": 105, "ErrorCode": "InvalidCredentials"})
            return
        with self._lock:
            upload = self._uploads.get(request_id)
            if upload is None:
                handler.send_json(404, {"Message": "Unknown upload URL."})
                return
            if upload.status != "PendingFileUpload":
                handler.send_json(
                    400,
                    {
                        "RequestId": request_id,
                        "Code": 3224,
                        "ErrorCode": "BulkServiceUrlAlreadyUsedForUpload",
                        "Message": "The URL has already been used for file upload.",
                    },
                )
                return
            upload.status = "FileUploaded"
        payload = multipart_file(handler.headers.get("Content-Type", ""), body)
        if payload is None:
            with self._lock:
                upload.status = "PendingFileUpload"
            handler.send_json(400, {"Message": "multipart/form-data with a 'file' part expected"})
            return
        if self._faults.take("upload_failed", UPLOAD_FILE) is not None:
            log.info("upload will report Failed (injected)")
            self._fail(upload, soap.MESSAGES[0])
            handler.send(200, b"", "text/plain")
            return
        pending = self._faults.take("pending", UPLOAD_FILE)
        try:
            header, rows = bulkcsv.parse_csv_bytes(bulkcsv.unzip_upload(payload))
        except BulkFileError as exc:
            log.info("upload rejected: %s", exc)
            self._fail(upload, str(exc))
            handler.send(200, b"", "text/plain")
            return
        with self._lock:
            upload.pending_polls = pending.params["polls"] if pending else 0
            base, per_10k = self._processing
        seconds = base + per_10k * len(rows) / 10_000
        if seconds > 0:  # Microsoft's pace: InProgress, lists unchanged, until it is done
            with self._lock:
                now = time.monotonic()
                ready_at = now + seconds
                waiting = [u.ready_at for u in self._uploads.values() if u.parsed is not None]
                if self._out_of_order and waiting:  # overtakes every file still processing
                    ready_at = max(now, min(ready_at, min(waiting) - 0.001))
                upload.status = "InProgress"
                upload.parsed = (header, rows)
                upload.ready_at = ready_at
                upload.received = next(self._received)
            log.info("upload received: %d rows, processed in %.1f s", len(rows), seconds)
        else:
            self._process(upload, header, rows)
        handler.send(200, b"", "text/plain")

    def handle_file(self, handler: Handler, token: str) -> None:
        if not self._preflight(handler, DOWNLOAD_FILE):
            return
        with self._lock:
            data = self._files.get(token)
        if data is None:
            handler.send(404, b"Not found", "text/plain")
            return
        handler.send(200, data, "application/zip")


def _changes(before: dict[int, set[str]], lists: dict[int, ListRecord]) -> list[Change]:
    """What an upload changed: lists created, hashes added and removed per list."""
    out: list[Change] = []
    for list_id, record in lists.items():
        old = before.get(list_id)
        if old is None:
            out.append(("create", list_id, frozenset()))
            continue
        if added := record.members - old:
            out.append(("add", list_id, frozenset(added)))
        if removed := old - record.members:
            out.append(("remove", list_id, frozenset(removed)))
    return out
