"""What a run did to each list (`ListResult`), and the exit code a scheduler reads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync.plan import ListPlan


@dataclass
class ListResult:
    """What happened to one list in one run."""

    plan: ListPlan
    status: str  # in_sync | in_flight | partial | held | refused | failed
    list_id: int | None = None
    sent_adds: int = 0
    sent_removes: int = 0
    confirmed_adds: int = 0
    confirmed_removes: int = 0
    rejected: int = 0
    rejected_by_code: dict[int, int] = field(default_factory=dict)
    message: str | None = None
    microsoft_error: dict[str, Any] | None = None  # Microsoft's {code, name, message}
    held_adds: int = 0  # adds not sent because a suppression list failed or was refused
    in_flight: list[dict[str, Any]] = field(default_factory=list)  # uploads Microsoft still has
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = self.plan.as_dict()
        out.update(
            status=self.status,
            list_id=self.list_id if self.list_id is not None else out["list_id"],
            sent_adds=self.sent_adds,
            sent_removes=self.sent_removes,
            confirmed_adds=self.confirmed_adds,
            confirmed_removes=self.confirmed_removes,
            rejected=self.rejected,
            rejected_by_code={str(k): v for k, v in sorted(self.rejected_by_code.items())},
            message=self.message,
            microsoft_error=self.microsoft_error,
            held_adds=self.held_adds,
            in_flight=self.in_flight,
            seconds=round(self.seconds, 3),
        )
        return out


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)


def note_in_flight(
    result: ListResult, action: str, rows: int, request_id: str, age: float, message: str
) -> None:
    """An upload Microsoft still has: listed in the result, status in_flight (exit 0)."""
    result.in_flight.append(
        {"action": action, "rows": rows, "request_id": request_id, "age_seconds": round(age, 1)}
    )
    if result.status == "in_sync":
        result.status = "in_flight"
    result.message = message


def exit_code(results: list[ListResult]) -> int:
    """0 all in sync; 1 a failure; 3 a guard refused; 2 rows rejected. First of 1, 3, 2 wins.
    A list whose adds were held has the exit code of the suppression list that caused it."""
    statuses = {r.status for r in results}
    for status, code in (("failed", 1), ("refused", 3), ("partial", 2)):
        if status in statuses:
            return code
    return 0
