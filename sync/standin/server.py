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

This module is the :class:`StandIn` itself: its lifecycle and its Python API (the control
API maps onto it). Faults can be injected on request; see :meth:`StandIn.inject`. The parts
it is made of: the lists and their members, in memory and optionally mirrored to a JSON state
file (store.py); the life of upload and download requests (jobs.py); the answer to each
request (dispatch.py); the HTTP layer (web.py).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import bulkcsv, control, dispatch
from .faults import Faults
from .jobs import OPERATIONS, BulkJobs, Observer
from .store import ListStore
from .web import CONTROL_PREFIX, SERVICE_PATH, Handler, Server

__all__ = ["OPERATIONS", "SERVICE_PATH", "Observer", "StandIn"]

log = logging.getLogger("sync.standin")

_DEFAULT_ACCOUNT_ID = 180_000_001
_DEFAULT_CUSTOMER_ID = 250_000_001


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
        self._lock = threading.RLock()
        self._observers: list[Observer] = []
        self._idle = threading.Condition()
        self._serving = 0  # requests being served (a killed client's last one included)
        #: Share of a list's members Microsoft reports as matched (Audience Search Size in the
        #: bulk download); None: no size, as for a list Microsoft has not sized yet (~48 h).
        self.match_share = match_share
        #: The faults armed (see :meth:`inject`), taken as requests come.
        self.injected = Faults(OPERATIONS)
        self._calls: list[str] = []
        #: The customer lists and their members.
        self.store = ListStore(self._lock, Path(state_file) if state_file else None)
        #: The upload and download requests and the files they hand out.
        self.jobs = BulkJobs(self.store, self.injected, self._observers)
        self.set_processing(processing_seconds, processing_seconds_per_10k_rows, out_of_order)
        self.refresh_counter = itertools.count(1)  # refresh tokens handed out (control API)
        #: Form fields of requests to the test OAuth endpoint (see :meth:`refresh_url`).
        self.oauth_requests: list[dict[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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
        self.jobs.process_due()
        return self.store.copy()

    def add_list(
        self,
        name: str,
        membership_duration: int | None = -1,
        members: Iterable[str] = (),
        list_id: int | None = None,
        description: str = "",
    ) -> int:
        """Create a list directly (as if made in the Microsoft Advertising UI); returns its id."""
        return self.store.add(name, membership_duration, members, list_id, description)

    def edit_list(
        self, list_id: int, *, name: str | None = None, membership_duration: int | None = None
    ) -> None:
        """Rename a list or change its membership duration, as someone in the Microsoft
        Advertising UI would: out of band, the sync is not told."""
        self.store.edit(list_id, name, membership_duration)

    def finish_processing(self) -> None:
        """Let every upload still processing (processing time, ``pending`` fault) finish now."""
        self.jobs.finish_processing()

    def delete_list(self, list_id: int) -> None:
        """Delete a list and its members, as the Microsoft Advertising UI would."""
        self.store.delete(list_id)

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
            return self.injected.all()

    def clear_faults(self) -> None:
        with self._lock:
            self.injected.clear()

    def set_processing(
        self, seconds: float = 0.0, seconds_per_10k_rows: float = 0.0, out_of_order: bool = False
    ) -> None:
        """How long Microsoft takes to process an uploaded file: ``seconds`` plus
        ``seconds_per_10k_rows`` per 10,000 rows (Microsoft: about a minute per 10k). Until
        then the upload reports InProgress and the lists are unchanged; 0 and 0 (the default)
        process each file as it arrives. ``out_of_order``: a file that arrives while others
        are still processing is processed before them (Microsoft promises no order between
        uploads), counted in :attr:`reordered`."""
        self.jobs.set_processing(seconds, seconds_per_10k_rows, out_of_order)

    @property
    def reordered(self) -> int:
        """Files processed after a file that arrived later (see :meth:`set_processing`)."""
        return self.jobs.reordered

    def set_delay(self, seconds: float) -> None:
        """Delay every request by ``seconds`` (0 turns it off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delay = float(seconds)

    def reset(self) -> None:
        """Forget lists, members, faults, calls, pending requests and the global delay."""
        with self._lock:
            self.store.clear()
            self.injected.clear()
            self._calls.clear()
            self.jobs.clear()
            self._delay = 0.0

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
        fault = self.injected.make(kind, count, operation, params)
        if kind == "global_delay":
            self.set_delay(fault.params["seconds"])
            return {"kind": "global_delay", "seconds": self._delay}
        self.injected.arm(fault)
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

    def note_request(self, operation: str) -> float:
        """A request arrived: observers told, the call logged; returns the global delay."""
        for observer in self._observers:
            observer.on_request(operation)
        with self._lock:
            self._calls.append(operation)
            return self._delay

    def account_file(self, include_lists: bool) -> bytes:
        """The account's bulk download file as it is now: its Account record and, if asked
        for, every customer list with Microsoft's matched size (see ``match_share``)."""
        with self._lock:
            return bulkcsv.download_csv(
                self.account_id,
                self.customer_id,
                list(self.store.records.values()),
                include_lists=include_lists,
                match_share=self.match_share,
            )

    def handle_soap(self, handler: Handler, body: bytes) -> None:
        """A request to the Bulk service endpoint (sync/standin/dispatch.py)."""
        dispatch.handle_soap(self, handler, body)

    def handle_upload(self, handler: Handler, request_id: str, body: bytes) -> None:
        """An upload's file, POSTed to the URL GetBulkUploadUrl handed out."""
        dispatch.handle_upload(self, handler, request_id, body)

    def handle_file(self, handler: Handler, token: str) -> None:
        """A result or download file, by its token."""
        dispatch.handle_file(self, handler, token)
