"""What the stand-in answers each request to the Bulk service: the faults that act before
anything is served (delay, reset, HTTP error, throttle), the credentials check, the SOAP
operations, the file upload and the file download, as Microsoft would answer them."""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from . import bulkcsv, soap
from .bulkcsv import BulkFileError
from .jobs import DONE, DOWNLOAD_FILE, UPLOAD_FILE
from .web import FILE_PREFIX, UPLOAD_PREFIX, Handler, multipart_file

if TYPE_CHECKING:
    from .server import StandIn

log = logging.getLogger("sync.standin")

_INVALID_REQUEST_ID = (0, "BulkServiceInvalidRequestId", "The request id is not valid.")


def preflight(standin: StandIn, handler: Handler, operation: str) -> bool:
    """Log the call and apply delay / reset / HTTP error faults. False: request handled."""
    delay = standin.note_request(operation)
    fault = standin.injected.take("delay", operation)
    if fault is not None:
        delay += fault.params["seconds"]
    if delay > 0:
        time.sleep(delay)
    if standin.injected.take("reset", operation) is not None:
        log.info("%s: connection reset (injected)", operation)
        handler.reset_connection()
        return False
    fault = standin.injected.take("http_error", operation)
    if fault is not None:
        status = fault.params["status"]
        log.info("%s: HTTP %d (injected)", operation, status)
        handler.send(status, b"Service Unavailable", "text/plain; charset=utf-8")
        return False
    return True


# -- SOAP ----------------------------------------------------------------------------------


def handle_soap(standin: StandIn, handler: Handler, body: bytes) -> None:
    """One SOAP request: parsed, checked (faults, credentials, throttling), answered."""
    try:
        request = soap.parse_request(body, handler.headers.get("SOAPAction"))
    except soap.SoapRequestError as exc:
        handler.send(400, str(exc).encode(), "text/plain; charset=utf-8")
        return
    operation = request.operation
    if not preflight(standin, handler, operation):
        return
    tracking_id = str(uuid.uuid4())
    if standin.token is not None and request.headers.get("AuthenticationToken") != standin.token:
        log.info("%s: invalid credentials (105)", operation)
        handler.send_xml(
            500,
            soap.adapi_fault(105, "InvalidCredentials", soap.MESSAGES[105], tracking_id),
        )
        return
    fault = standin.injected.take("throttle", operation)
    if fault is not None:
        code = fault.params["code"]
        log.info("%s: throttled (%d, injected)", operation, code)
        make = soap.adapi_fault if code == 117 else soap.api_fault
        handler.send_xml(
            500, make(code, bulkcsv.error_name(code), soap.MESSAGES[code], tracking_id)
        )
        return
    call = _Call(standin, handler, request, tracking_id)
    answer = getattr(call, "_op_" + operation, None)
    if answer is None:
        handler.send_xml(
            500,
            soap.api_fault(0, "InternalError", "Operation not supported", tracking_id),
        )
        return
    handler.send_xml(200, answer())


class _Call:
    """One SOAP call being answered: a method per operation, named after it."""

    def __init__(
        self, standin: StandIn, handler: Handler, request: soap.SoapRequest, tracking_id: str
    ) -> None:
        self.standin = standin
        self.handler = handler
        self.request = request
        self.tracking_id = tracking_id

    def _file_url(self, token: str) -> str:
        return self.handler.origin(self.standin) + FILE_PREFIX + token

    def _op_GetBulkUploadUrl(self) -> bytes:
        request_id = self.standin.jobs.new_upload(
            self.request.value("ResponseMode") or "ErrorsOnly"
        )
        url = self.handler.origin(self.standin) + UPLOAD_PREFIX + request_id
        return soap.response(
            "GetBulkUploadUrl", self.tracking_id, [("RequestId", request_id), ("UploadUrl", url)]
        )

    def _op_GetBulkUploadStatus(self) -> bytes:
        found = self.standin.jobs.upload_status(self.request.value("RequestId") or "")
        if found is None:
            return soap.api_fault(*_INVALID_REQUEST_ID, self.tracking_id)
        status, token, errors = found
        percent = 100 if status in DONE else 0
        if status == "InProgress":
            percent = 50
        url = self._file_url(token) if token else None
        return soap.status_response(
            "GetBulkUploadStatus", self.tracking_id, status, percent, url, errors
        )

    def _op_DownloadCampaignsByAccountIds(self) -> bytes:
        entities = set(self.request.values.get("DownloadEntity", []))
        self.standin.jobs.process_due()
        data = self.standin.account_file(include_lists="CustomerLists" in entities)
        request_id = self.standin.jobs.new_download(data)
        return soap.response(
            "DownloadCampaignsByAccountIds", self.tracking_id, [("DownloadRequestId", request_id)]
        )

    def _op_GetBulkDownloadStatus(self) -> bytes:
        token = self.standin.jobs.download_token(self.request.value("RequestId") or "")
        if token is None:
            return soap.api_fault(*_INVALID_REQUEST_ID, self.tracking_id)
        return soap.status_response(
            "GetBulkDownloadStatus", self.tracking_id, "Completed", 100, self._file_url(token)
        )

    def _op_UploadEntityRecords(self) -> bytes:
        records = self.request.values.get("string", [])
        mode = self.request.value("ResponseMode") or "ErrorsOnly"
        try:
            header, rows = bulkcsv.parse_rows(records)
            result = self.standin.jobs.apply(header, rows, mode, "UploadEntityRecords")
        except BulkFileError as exc:
            return soap.api_fault(0, "InternalError", str(exc), self.tracking_id)
        return soap.upload_entity_records_response(
            self.tracking_id, bulkcsv.result_lines(result.result_csv), uuid.uuid4().hex, "Completed"
        )


# -- files over HTTP -----------------------------------------------------------------------


def handle_upload(standin: StandIn, handler: Handler, request_id: str, body: bytes) -> None:
    """The file of an upload, POSTed to the URL GetBulkUploadUrl handed out (once only)."""
    if not preflight(standin, handler, UPLOAD_FILE):
        return
    if standin.token is not None and handler.headers.get("AuthenticationToken") != standin.token:
        handler.send_json(401, {"Code": 105, "ErrorCode": "InvalidCredentials"})
        return
    jobs = standin.jobs
    with jobs.lock:
        upload = jobs.uploads.get(request_id)
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
        with jobs.lock:
            upload.status = "PendingFileUpload"
        handler.send_json(400, {"Message": "multipart/form-data with a 'file' part expected"})
        return
    if standin.injected.take("upload_failed", UPLOAD_FILE) is not None:
        log.info("upload will report Failed (injected)")
        jobs.fail(upload, soap.MESSAGES[0])
        handler.send(200, b"", "text/plain")
        return
    pending = standin.injected.take("pending", UPLOAD_FILE)
    try:
        header, rows = bulkcsv.parse_csv_bytes(bulkcsv.unzip_upload(payload))
    except BulkFileError as exc:
        log.info("upload rejected: %s", exc)
        jobs.fail(upload, str(exc))
        handler.send(200, b"", "text/plain")
        return
    jobs.receive(upload, header, rows, pending.params["polls"] if pending else 0)
    handler.send(200, b"", "text/plain")


def handle_file(standin: StandIn, handler: Handler, token: str) -> None:
    """A result or download file, by the token in the URL the stand-in handed out."""
    if not preflight(standin, handler, DOWNLOAD_FILE):
        return
    data = standin.jobs.file(token)
    if data is None:
        handler.send(404, b"Not found", "text/plain")
        return
    handler.send(200, data, "application/zip")
