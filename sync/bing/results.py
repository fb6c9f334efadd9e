"""Microsoft's files, read with the SDK's own BulkFileReader by header name: upload results
(list rows and their errors, rejected items) and the bulk download of the customer lists."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from bingads.v13.bulk import BulkFileReader
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem
from bingads.v13.bulk.enums import ResultFileType

from sync.bing.errors import ADVICE, LIST_LEVEL_CODES, PermanentBingError


@dataclass(frozen=True)
class RemoteList:
    list_id: int
    name: str
    membership_duration: int | None
    description: str = ""
    search_size: int | None = None  # Microsoft's matched sizes (~48 h after an upload)
    network_size: int | None = None


@dataclass(frozen=True, eq=False)
class UploadOutcome:
    """One finished upload file."""

    action: str  # "Add" | "Remove" | "Replace" (the first file of a Replace)
    sent: pl.DataFrame  # email_sha256: the hashes in this upload file
    rejected: pl.DataFrame  # email_sha256 (str), error_code (int), error_message (str)
    request_id: str | None
    tracking_id: str | None
    seconds: float


# ---------------------------------------------------------------------------------------------
# Result files


@dataclass(frozen=True)
class ResultList:
    """A ``Customer List`` record of a result file (with its errors, if any)."""

    list_id: int | None
    name: str | None
    client_id: str | None
    action: str | None
    membership_duration: int | None
    errors: tuple[tuple[int, str], ...] = ()


_REJECTED_SCHEMA = {
    "email_sha256": pl.String,
    "error_code": pl.Int64,
    "error_message": pl.String,
    "list_id": pl.Int64,
}


@dataclass(frozen=True, eq=False)
class UploadResult:
    """A parsed upload result file.

    ``rejected`` has one row per failed ``Customer List Item`` (first error only):
    email_sha256 (the Text as sent), error_code, error_message (Microsoft's symbolic error,
    e.g. ``EmailMustBeHashed``) and list_id (the item's Parent Id).
    """

    lists: tuple[ResultList, ...]
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_REJECTED_SCHEMA))

    @property
    def list_errors(self) -> list[tuple[int | None, int, str]]:
        return [(rl.list_id, code, name) for rl in self.lists for code, name in rl.errors]


def _errors_of(entity: Any) -> tuple[tuple[int, str], ...]:
    out = []
    for err in entity.errors or ():
        code = err.number if err.number is not None else -1
        out.append((int(code), err.error or f"Error{code}"))
    return tuple(out)


def parse_upload_result(path: str | os.PathLike[str], workdir: Path | None = None) -> UploadResult:
    """Read a bulk upload result file (CSV, or a zip of one) with the SDK's ``BulkFileReader``.

    Columns are read by header name, so Microsoft's ever-growing layouts (438, 474, ...
    columns) and the short layout all work. A zip is extracted into ``workdir`` (default: a
    private temporary directory) and the extracted copy is deleted afterwards.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with contextlib.ExitStack() as stack:
            target_dir = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            extracted = target_dir / f"result-{uuid.uuid4().hex}.csv"
            stack.callback(extracted.unlink, missing_ok=True)
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if not names:
                    raise ValueError("the result zip is empty")
                with zf.open(names[0]) as src, open(extracted, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            return _parse_result_csv(extracted)
    return _parse_result_csv(path)


def _parse_result_csv(path: Path) -> UploadResult:
    lists: list[ResultList] = []
    texts: list[str] = []
    codes: list[int] = []
    messages: list[str] = []
    parents: list[int | None] = []
    with BulkFileReader(str(path), result_file_type=ResultFileType.upload) as reader:
        for entity in reader:
            if isinstance(entity, BulkCustomerList):
                audience = entity.customer_list
                lists.append(
                    ResultList(
                        list_id=getattr(audience, "Id", None),
                        name=getattr(audience, "Name", None),
                        client_id=entity.client_id or None,
                        action=entity.action_type or None,
                        membership_duration=getattr(audience, "MembershipDuration", None),
                        errors=_errors_of(entity),
                    )
                )
            elif isinstance(entity, BulkCustomerListItem) and entity.has_errors:
                code, name = _errors_of(entity)[0]
                texts.append(entity.text or "")
                codes.append(code)
                messages.append(name)
                parents.append(entity.parent_id)
    rejected = pl.DataFrame(
        {"email_sha256": texts, "error_code": codes, "error_message": messages, "list_id": parents},
        schema=_REJECTED_SCHEMA,
    )
    return UploadResult(lists=tuple(lists), rejected=rejected)


def raise_list_errors(step: str, result: UploadResult) -> None:
    """List-level failures (the list row failed, or items failed because of the list)."""
    if result.list_errors:
        _, code, symbol = result.list_errors[0]
        advice = ADVICE.get(code, "Microsoft refused the list")
        raise PermanentBingError(step, advice, code, error_name=symbol)
    if result.rejected.height:
        codes = set(result.rejected.get_column("error_code").to_list()) & LIST_LEVEL_CODES
        if codes:
            code = min(codes)
            names = result.rejected.filter(pl.col("error_code") == code)["error_message"]
            raise PermanentBingError(
                step,
                ADVICE.get(code, "Microsoft refused the list"),
                code,
                error_name=names[0] if names.len() else None,
            )


def read_lists(path: Path) -> list[RemoteList]:
    out: list[RemoteList] = []
    with BulkFileReader(str(path), result_file_type=ResultFileType.full_download) as reader:
        for entity in reader:
            if not isinstance(entity, BulkCustomerList):
                continue
            if (entity.status or "Active") == "Deleted":
                continue
            audience = entity.customer_list
            list_id = getattr(audience, "Id", None)
            if list_id is None:
                continue
            out.append(
                RemoteList(
                    list_id=int(list_id),
                    name=getattr(audience, "Name", None) or "",
                    membership_duration=getattr(audience, "MembershipDuration", None),
                    description=getattr(audience, "Description", None) or "",
                    search_size=_size(getattr(audience, "SearchSize", None)),
                    network_size=_size(getattr(audience, "AudienceNetworkSize", None)),
                )
            )
    return out


def _size(value: Any) -> int | None:
    """A size field of the download (the SDK keeps the network size as text)."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None
