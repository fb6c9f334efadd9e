"""Bulk file handling for the stand-in: read uploads by header name, write result files.

Everything here is pure (no I/O besides bytes in, bytes out) so it can be tested alone.
The state it mutates is passed in as a plain mapping of list records.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

FORMAT_VERSION = "6.0"

TYPE_FORMAT_VERSION = "Format Version"
TYPE_ACCOUNT = "Account"
TYPE_LIST = "Customer List"
TYPE_ITEM = "Customer List Item"

#: Columns of the CustomerLists download file (the SDK reads them by name).
DOWNLOAD_HEADER = [
    "Type",
    "Status",
    "Id",
    "Parent Id",
    "Sync Time",
    "Client Id",
    "Modified Time",
    "Name",
    "Description",
    "Scope",
    "Audience",
    "Action Type",
    "Membership Duration",
    "Audience Search Size",
    "Audience Network Size",
    "Supported Campaign Types",
    "Sub Type",
    "Text",
    "Error",
    "Error Number",
]

#: Symbolic names of the operation error codes the stand-in produces.
ERROR_NAMES: dict[int, str] = {
    0: "InternalError",
    105: "InvalidCredentials",
    117: "CallRateExceeded",
    1001: "UnknownError",
    4204: "BulkServiceNoMoreCallsPermittedForTheTimePeriod",
    4835: "InvalidAudienceId",
    8000: "InvalidCustomerListId",
    8002: "CustomerListItemSubTypeNotSupported",
    8003: "CustomerListTermsAndConditionsNotAccepted",
    8004: "EmailMustBeHashed",
}

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"Error{code}")


class BulkFileError(ValueError):
    """The uploaded file is not a readable bulk file."""


@dataclass
class ListRecord:
    """One customer list held by the stand-in."""

    list_id: int
    name: str
    description: str = ""
    membership_duration: int | None = None
    scope: str = "Customer"
    client_id: str = ""
    members: set[str] = field(default_factory=set)
    modified: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "membership_duration": self.membership_duration,
            "scope": self.scope,
            "members": sorted(self.members),
        }

    @classmethod
    def from_json(cls, list_id: int, data: Mapping) -> ListRecord:
        return cls(
            list_id=list_id,
            name=data.get("name", ""),
            description=data.get("description", "") or "",
            membership_duration=data.get("membership_duration"),
            scope=data.get("scope", "Customer") or "Customer",
            members=set(data.get("members", ())),
        )


@dataclass
class Rules:
    """Per-upload behaviour chosen by fault injection."""

    #: hash -> (code, symbolic error) to reject with.
    reject: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: customer list ids (or None = every list) whose rows fail with 8003.
    terms_not_accepted: set[int] | None = None
    terms_everywhere: bool = False


@dataclass
class UploadResult:
    """What processing an uploaded file produced."""

    result_csv: bytes
    has_errors: bool
    changed: bool
    rows: int
    #: Texts rejected because of ``Rules.reject``.
    rejected: set[str] = field(default_factory=set)
    #: Whether ``Rules`` made some Customer List row fail with 8003.
    terms_hit: bool = False


def now_text() -> str:
    return datetime.now(timezone.utc).strftime("%m/%d/%Y %H:%M:%S")


# --------------------------------------------------------------------------------------------
# Reading


def unzip_upload(payload: bytes) -> bytes:
    """The CSV inside an uploaded zip (or the payload itself if it is not a zip)."""
    if not payload.startswith(b"PK"):
        return payload
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if not names:
                raise BulkFileError("the zip file is empty")
            csv_names = [n for n in names if n.lower().endswith((".csv", ".tsv"))]
            return zf.read((csv_names or names)[0])
    except zipfile.BadZipFile as exc:
        raise BulkFileError("the upload is not a valid zip file") from exc


def parse_rows(lines: Iterable[str]) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration as exc:
        raise BulkFileError("the bulk file is empty") from exc
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    header = [h.strip() for h in header]
    if "Type" not in header:
        raise BulkFileError("the bulk file has no Type column")
    return header, [row for row in reader if any(row)]


def parse_csv_bytes(data: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BulkFileError("the bulk file is not UTF-8") from exc
    return parse_rows(io.StringIO(text, newline=""))


# --------------------------------------------------------------------------------------------
# Applying an upload


class _Cols:
    """Column positions by header name; missing columns read as empty."""

    def __init__(self, header: list[str]):
        self.header = list(header)
        # Result files need these even when the upload did not have them (by-name readers).
        for needed in ("Id", "Name", "Error", "Error Number"):
            if needed not in self.header:
                self.header.append(needed)
        self.index = {name: i for i, name in enumerate(self.header)}
        self.width = len(self.header)

    def get(self, row: list[str], name: str) -> str:
        i = self.index.get(name)
        if i is None or i >= len(row):
            return ""
        return row[i].strip()

    def widen(self, row: list[str]) -> list[str]:
        if len(row) < self.width:
            return row + [""] * (self.width - len(row))
        return row

    def with_values(self, row: list[str], **values: str) -> list[str]:
        out = list(self.widen(row))
        for key, value in values.items():
            i = self.index.get(key.replace("_", " "))
            if i is not None:  # a column the uploaded file does not have stays absent
                out[i] = value
        return out


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass
class _FileList:
    real_id: int | None
    action: str
    error: int | None


def apply_upload(
    header: list[str],
    rows: list[list[str]],
    lists: dict[int, ListRecord],
    new_id: Callable[[], int],
    rules: Rules,
    errors_only: bool,
) -> UploadResult:
    """Apply Customer List / Customer List Item rows to ``lists``; build the result file.

    Mirrors what Microsoft does: a ``Customer List`` row with a negative (or empty) Id creates a
    list, a positive Id addresses an existing one; items take the Action Type of their parent
    row in the same file. Unknown lists fail with 4835 (list row) and 8000 (items); a Text that
    is not a lowercase 64-character hex SHA-256 fails with 8004.
    """
    cols = _Cols(header)
    out: list[list[str]] = []
    by_ref: dict[int, _FileList] = {}
    changed = False
    has_errors = False
    rejected: set[str] = set()
    terms_hit = False
    stamp = now_text()
    # Membership changes are collected and applied in order at the end.
    ops: list[tuple[int, str, str]] = []
    replaced: set[int] = set()

    def emit(row: list[str], error: int | None, name: str | None = None) -> None:
        nonlocal has_errors
        if error is None:
            if not errors_only:
                out.append(row)
            return
        has_errors = True
        out.append(row)
        row_type = cols.get(row, "Type")
        out.append(
            cols.with_values(
                row,
                Type=f"{row_type} Error",
                Error=name or error_name(error),
                Error_Number=str(error),
            )
        )

    for raw in rows:
        row_type = cols.get(raw, "Type")
        if row_type == TYPE_FORMAT_VERSION:
            continue
        row = cols.widen(list(raw))
        if row_type == TYPE_LIST:
            ref = _int(cols.get(row, "Id") or "-1")
            action = cols.get(row, "Action Type") or "Add"
            status = cols.get(row, "Status")
            error: int | None = None
            real_id: int | None = None
            if ref is None:
                error = 4835
            elif ref < 0:
                name = cols.get(row, "Audience")
                if rules.terms_everywhere:
                    error = 8003
                    terms_hit = True
                elif not name:
                    error = 1001
                else:
                    real_id = new_id()
                    record = ListRecord(
                        list_id=real_id,
                        name=name,
                        description=cols.get(row, "Description"),
                        membership_duration=_int(cols.get(row, "Membership Duration")),
                        scope=cols.get(row, "Scope") or "Customer",
                        client_id=cols.get(row, "Client Id"),
                        modified=stamp,
                    )
                    lists[real_id] = record
                    changed = True
                    action = "Add"
            else:
                record = lists.get(ref)
                if record is None:
                    error = 4835
                elif rules.terms_everywhere or (
                    rules.terms_not_accepted is not None and ref in rules.terms_not_accepted
                ):
                    error = 8003
                    terms_hit = True
                elif action not in ("Add", "Remove", "Replace"):
                    error = 1001
                else:
                    real_id = ref
                    if status == "Deleted":
                        del lists[ref]
                        changed = True
                    else:
                        name = cols.get(row, "Audience")
                        if name:
                            record.name = name
                        description = cols.get(row, "Description")
                        if description:
                            record.description = description
                        duration = _int(cols.get(row, "Membership Duration"))
                        if duration is not None:
                            record.membership_duration = duration
                        record.modified = stamp
                        if action == "Replace":
                            replaced.add(ref)
                            ops.append((ref, "Clear", ""))
                        changed = True
            if ref is not None:
                by_ref[ref] = _FileList(real_id, action, error)
            if real_id is not None:
                row = cols.with_values(row, Id=str(real_id), Modified_Time=stamp)
                if "Action Type" in cols.index and not cols.get(row, "Action Type"):
                    row = cols.with_values(row, Action_Type=action)
            emit(row, error)
        elif row_type == TYPE_ITEM:
            parent_ref = _int(cols.get(row, "Parent Id"))
            parent = by_ref.get(parent_ref) if parent_ref is not None else None
            text = cols.get(row, "Text")
            error = None
            name: str | None = None
            if parent is None:
                error = 8000
            elif parent.error is not None:
                error = 8003 if parent.error == 8003 else 8000
            elif parent.real_id is None or parent.real_id not in lists:
                error = 8000
            elif cols.get(row, "Sub Type") != "Email":
                error = 8002
            elif not _HASH_RE.fullmatch(text):
                error = 8004
            elif text in rules.reject:
                error, name = rules.reject[text]
                rejected.add(text)
            if error is None and parent is not None and parent.real_id is not None:
                op = "Remove" if parent.action == "Remove" else "Add"
                ops.append((parent.real_id, op, text))
                if parent_ref != parent.real_id:  # a reference key: echo the real id
                    row = cols.with_values(row, Parent_Id=str(parent.real_id))
            emit(row, error, name)
        else:
            # Other record types are not served by the stand-in: echo them with an error.
            emit(row, 1001)

    for list_id, op, text in ops:
        record = lists.get(list_id)
        if record is None:
            continue
        if op == "Clear":
            record.members.clear()
        elif op == "Add":
            record.members.add(text)
        else:
            record.members.discard(text)
        changed = True

    result = write_csv(cols.header, out)
    return UploadResult(
        result_csv=result,
        has_errors=has_errors,
        changed=changed,
        rows=len(rows),
        rejected=rejected,
        terms_hit=terms_hit,
    )


def write_csv(header: list[str], rows: list[list[str]]) -> bytes:
    """Header + Format Version row + rows, UTF-8 with BOM, CRLF line ends."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    version = [""] * len(header)
    version[header.index("Type")] = TYPE_FORMAT_VERSION
    if "Name" in header:
        version[header.index("Name")] = FORMAT_VERSION
    writer.writerow(version)
    width = len(header)
    for row in rows:
        if len(row) < width:
            row = row + [""] * (width - len(row))
        writer.writerow(row)
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def result_lines(result_csv: bytes) -> list[str]:
    """The result file as a list of CSV lines (for UploadEntityRecords)."""
    text = result_csv.decode("utf-8-sig")
    return [line for line in text.split("\r\n") if line]


def zip_bytes(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Download file


def download_csv(
    account_id: int,
    customer_id: int,
    lists: Iterable[ListRecord],
    include_lists: bool,
    match_share: float | None = None,
) -> bytes:
    """A bulk download file with the Account record and (optionally) every Customer List,
    with Microsoft's matched sizes (``match_share`` of the members) when one is set."""
    header = DOWNLOAD_HEADER
    idx = {name: i for i, name in enumerate(header)}

    def row(**values: object) -> list[str]:
        out = [""] * len(header)
        for key, value in values.items():
            if value is not None:
                out[idx[key.replace("_", " ")]] = str(value)
        return out

    rows = [
        row(
            Type=TYPE_ACCOUNT,
            Id=account_id,
            Parent_Id=customer_id,
            Sync_Time=now_text(),
        )
    ]
    if include_lists:
        for record in sorted(lists, key=lambda r: r.list_id):
            matched = None if match_share is None else round(len(record.members) * match_share)
            rows.append(
                row(
                    Type=TYPE_LIST,
                    Status="Active",
                    Id=record.list_id,
                    Parent_Id=customer_id,
                    Modified_Time=record.modified or None,
                    Description=record.description or None,
                    Scope=record.scope or "Customer",
                    Audience=record.name,
                    Membership_Duration=record.membership_duration,
                    Supported_Campaign_Types="Search;Shopping;DynamicSearchAds;Audience",
                    Audience_Search_Size=matched,
                    Audience_Network_Size=matched,
                )
            )
    return write_csv(header, rows)
