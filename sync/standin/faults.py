"""Faults the stand-in injects on request (HTTP errors, resets, delays, throttling, failed or
slow uploads, rejected rows, terms not accepted): what each kind takes, and which one fires."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import bulkcsv

FAULT_KINDS = (
    "http_error",  # status: int = 500 -> plain HTTP error, no SOAP body
    "reset",  # close the socket without a reply
    "delay",  # seconds: float -> answer late
    "throttle",  # code: 117 (GetBulkUploadStatus) | 4204 (GetBulkUploadUrl) -> SOAP fault
    "upload_failed",  # the next upload's status comes back Failed; nothing is applied
    "reject_rows",  # hashes: [str], code: int = 8004 -> per-row errors in the result file
    "terms_not_accepted",  # list_ids: [int] | None -> 8003 on Customer List rows
    "pending",  # polls: int -> the next upload stays InProgress for that many status polls
    "global_delay",  # seconds: float -> delay every request from now on (not counted)
)

THROTTLE_DEFAULT_OPERATION = {117: "GetBulkUploadStatus", 4204: "GetBulkUploadUrl"}


@dataclass
class Fault:
    id: int
    kind: str
    count: int | None  # remaining firings; None = until cleared
    operation: str | None  # None = any operation
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "count": self.count,
            "operation": self.operation,
            **self.params,
        }


class Faults:
    """The armed faults of one stand-in (thread-safe): armed by :meth:`arm`, fired by
    :meth:`take`, each firing counted down."""

    def __init__(self, operations: Sequence[str]) -> None:
        self._operations = tuple(operations)
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def armed(self, operation: str) -> list[Fault]:
        """The faults armed for ``operation``, oldest first."""
        with self._lock:
            return [f for f in self._faults if f.operation in (None, operation)]

    def make(
        self, kind: str, count: int | None, operation: str | None, params: dict[str, Any]
    ) -> Fault:
        """A checked fault (not armed yet); ``global_delay`` is the stand-in's own business."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or None")
        if operation not in (None, "*") and operation not in self._operations:
            raise ValueError(f"unknown operation {operation!r}; expected one of {self._operations}")
        clean: dict[str, Any] = {}
        if kind == "http_error":
            status = int(params.pop("status", 500))
            if not 400 <= status <= 599:
                raise ValueError("status must be an HTTP error status (400-599)")
            clean["status"] = status
        elif kind in ("delay", "global_delay"):
            seconds = float(params.pop("seconds", params.pop("delay", 0)))
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
            clean["seconds"] = seconds
        elif kind == "throttle":
            code = int(params.pop("code", 117))
            if code not in THROTTLE_DEFAULT_OPERATION:
                raise ValueError("throttle code must be 117 or 4204")
            clean["code"] = code
            if operation is None:
                operation = THROTTLE_DEFAULT_OPERATION[code]
        elif kind == "reject_rows":
            hashes = params.pop("hashes", None)
            if isinstance(hashes, str) or not hashes:
                raise ValueError("reject_rows needs hashes=[...]")
            clean["hashes"] = sorted({str(h) for h in hashes})
            clean["code"] = int(params.pop("code", 8004))
            clean["error"] = str(params.pop("error", bulkcsv.error_name(clean["code"])))
        elif kind == "terms_not_accepted":
            list_ids = params.pop("list_ids", None)
            clean["list_ids"] = None if list_ids is None else sorted(int(i) for i in list_ids)
        elif kind == "pending":
            polls = int(params.pop("polls", 1))
            if polls < 1:
                raise ValueError("polls must be >= 1")
            clean["polls"] = polls
        if params:
            raise ValueError(f"unexpected parameters for {kind}: {sorted(params)}")
        if operation == "*":
            operation = None
        return Fault(next(self._ids), kind, count, operation, clean)

    def consume(self, fault: Fault) -> None:
        """One firing of ``fault``: it is disarmed after its last."""
        with self._lock:
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0 and fault in self._faults:
                    self._faults.remove(fault)

    def take(self, kind: str, operation: str) -> Fault | None:
        """The first armed fault of ``kind`` for ``operation``, counted down; or None."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.operation in (None, operation):
                    self.consume(fault)
                    return fault
        return None
